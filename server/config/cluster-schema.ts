import { z } from 'zod';
import { int } from './types.js';

/**
 * Options for several hub processes sharing one Redis (issue 10). Merged into the one config
 * schema in schema.ts; every key has a description.
 */
export const clusterShape = {
  leaderLockTtlMs: int(1000, 3600 * 1000)
    .default(15000)
    .describe('With store=redis, one hub process leads and runs the pool refill and the cullers. If it dies, another takes over at most this many milliseconds later. Renewed every third of it.'),
  routeResyncMs: int(0, 3600 * 1000)
    .default(10000)
    .describe('How often each hub process re-reads the whole route table from the store, in milliseconds, in case it missed a change (e.g. during a store outage). 0: never.'),
} satisfies Record<string, z.ZodTypeAny>;
