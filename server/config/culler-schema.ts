import { z } from 'zod';
import { int, json } from './types.js';

const DAY_S = 24 * 3600;

/** Idle timeout and maximum age of one Docker profile; a key left out keeps the hub-wide value. */
export const cullerLimitsSchema = z
  .object({
    idleTimeoutS: int(0, 365 * DAY_S).optional(),
    maxAgeS: int(0, 365 * DAY_S).optional(),
  })
  .strict();

export type CullerLimits = z.infer<typeof cullerLimitsSchema>;

/**
 * Options of the culler of persistent (students') servers, and the outage behaviour of the
 * proxy's session check (issue 10). Merged into the one config schema in schema.ts.
 */
export const cullerShape = {
  cullerIdleTimeoutS: int(0, 365 * DAY_S)
    .default(3600)
    .describe(
      'A student\'s (persistent) server with no traffic for this many seconds is stopped; its files stay. A kernel that is still computing counts as traffic, even with every tab closed. 0: never stopped for idling.',
    ),
  cullerMaxAgeS: int(0, 365 * DAY_S)
    .default(0)
    .describe('A student\'s server is stopped this many seconds after it started, active or not; its files stay. 0: no maximum age.'),
  cullerProfileLimits: json(z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'a profile name'), cullerLimitsSchema))
    .default({})
    .describe(
      'Per Docker profile overrides of cullerIdleTimeoutS and cullerMaxAgeS (JSON object {profileName: {idleTimeoutS, maxAgeS}}), e.g. {"r": {"idleTimeoutS": 7200}}.',
    ),
  cullerMaxFailedChecks: int(1, 1000)
    .default(10)
    .describe(
      'A server that looks idle but whose kernels cannot be asked whether they compute is kept; only after this many failed checks in a row (one per cullerIntervalMs) is it culled as idle. Applies to students\' and "Try it" servers.',
    ),
  sessionStaleWhileErrorS: int(0, 7 * DAY_S)
    .default(600)
    .describe(
      'While the state store is unreachable, the proxy keeps accepting a session it checked successfully within this many seconds, so running notebooks keep working through a store outage. A sign-out seen by this hub still takes effect at once. 0: refuse as soon as sessionCacheMs runs out.',
    ),
} satisfies Record<string, z.ZodTypeAny>;
