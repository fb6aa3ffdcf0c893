import type { z } from 'zod';
import { int } from './types.js';

/**
 * Options of the server lifecycle (servers/): polling and how long a start waits for a stop.
 * Merged into the one config schema in schema.ts; every key has a description.
 */
export const serversShape = {
  serverPollIntervalS: int(0, 24 * 3600)
    .default(30)
    .describe('How often the hub checks that every running server is still alive, in seconds (0: never). A dead one loses its route and the user gets the "not running" page with a Start button.'),
  serverStopWaitS: int(0, 3600)
    .default(30)
    .describe('How long a start waits for a stop of the same server (or another start\'s lock) to finish before it is refused with "your server is still stopping", in seconds.'),
} satisfies Record<string, z.ZodTypeAny>;
