import { z } from 'zod';

/**
 * Options of the Docker spawner (issue 3). Merged into the one config schema in schema.ts;
 * same rules: every key has a description, env var OERHUB_ + SCREAMING_SNAKE_CASE.
 */
export const dockerShape = {} satisfies Record<string, z.ZodTypeAny>;
