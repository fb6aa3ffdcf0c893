import { z } from 'zod';

/**
 * Options of SAML and trusted-header sign-on (issue 4). Merged into the one config schema in
 * schema.ts; same rules: every key has a description, env var OERHUB_ + SCREAMING_SNAKE_CASE.
 */
export const ssoShape = {} satisfies Record<string, z.ZodTypeAny>;
