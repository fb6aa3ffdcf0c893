import { z } from 'zod';
import { int } from './types.js';

/** Logs and shutdown (issue 13, "Metrics and logs", "Graceful shutdown"). Merged into schema.ts. */
export const opsShape = {
  logFormat: z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe('Log format: json (one JSON object a line, for log collectors), pretty (one readable line each), or auto: pretty when standard output is a terminal, json otherwise.'),
  shutdownGraceS: int(0, 3600)
    .default(25)
    .describe('On SIGTERM or SIGINT, how long the hub waits for requests in flight and server starts to finish before it closes (new requests get 503 meanwhile). A second signal exits at once. Keep it below your service manager\'s stop timeout (systemd: 90 s).'),
};
