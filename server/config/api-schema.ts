import { z } from 'zod';
import { int, json } from './types.js';
import { parseScope } from '../api/scopes.js';

const serviceSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and -'),
    scopes: z.array(z.string().refine((s) => parseScope(s) !== null, { message: 'not a scope oerhub knows (see README, "REST API")' })),
  })
  .strict();

export type ApiService = z.infer<typeof serviceSchema>;

/** The REST API's tokens and services (issue 13). Merged into the one config schema in schema.ts. */
export const apiShape = {
  apiServices: json(z.array(serviceSchema))
    .default([])
    .describe('Services (JupyterHub\'s term) that act through the REST API, each `{ "name": "idle-culler", "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"] }`. An admin makes their tokens at /hub/token; a token never has more than its service\'s scopes.'),
  apiTokenCacheMs: int(0, 60000)
    .default(5000)
    .describe('How long the proxy trusts a checked API token on /user/ requests before asking the store again. Revoking takes effect at once on the hub process that revoked it.'),
  apiTokenMaxAgeS: int(0, 10 * 365 * 24 * 3600)
    .default(0)
    .describe('Longest lifetime of a new API token, in seconds; 0: no limit (a token without expires_in then never expires).'),
} as const;
