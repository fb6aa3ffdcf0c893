import { z } from 'zod';
import { int } from './types.js';

/**
 * Options of the warm pool of ephemeral "Try it" servers and the culler (issue 5). Merged into
 * the one config schema in schema.ts; every key has a description.
 */
export const poolShape = {
  poolSize: int(0, 1000)
    .default(2)
    .describe('Ephemeral "Try it" servers kept started and ready, each with a fresh copy of the samples (0: none; each visitor then waits for a start).'),
  poolMaxStarting: int(1, 100).default(2).describe('How many pool servers may be starting at once while the pool refills in the background.'),
  tryMaxServers: int(0, 10000)
    .default(20)
    .describe('Global cap on ephemeral servers: ready in the pool, starting and in use together. Visitors beyond it get a waiting page (HTTP 503). 0 turns "Try it" off.'),
  tryMaxPerAddress: int(1, 10000).default(3).describe('Ephemeral servers one client address may hold at the same time.'),
  tryQueueMax: int(0, 100000)
    .default(200)
    .describe('Most visitors in the "Try it" waiting line; beyond it a visitor is told to come back later, without a place in line. One address waits with at most tryMaxPerAddress places.'),
  tryStartsPerAddress: int(1, 100000).default(10).describe('Ephemeral servers one client address may take per tryStartsWindowS.'),
  tryStartsWindowS: int(1, 7 * 24 * 3600).default(3600).describe('The window of tryStartsPerAddress, in seconds.'),
  tryIdleTimeoutS: int(1, 7 * 24 * 3600)
    .default(900)
    .describe('An ephemeral server with no traffic for this many seconds is destroyed with its files. A kernel that is still computing counts as traffic.'),
  tryMaxAgeS: int(1, 7 * 24 * 3600).default(3600).describe('An ephemeral server is destroyed with its files this many seconds after the visitor got it, active or not.'),
  tryWarningS: int(0, 24 * 3600).default(300).describe('The visitor is warned this many seconds before their workspace is destroyed.'),
  tryRetryAfterS: int(1, 3600).default(5).describe('Retry-After of the waiting page (seconds): how often a waiting visitor\'s page asks again.'),
  trySamplesDir: z
    .string()
    .optional()
    .describe('Folder copied into every ephemeral server as samples/ (through the Jupyter contents API). If unset, the sample notebooks shipped with oerhub (course-notebooks/samples).'),
  trySamplesCacheDir: z
    .string()
    .optional()
    .describe('Where the executed "Try it" samples are kept (one folder per version of the samples), so visitors see them rendered at once and a restart needs no new run. Default: samples-cache in dataDir.'),
  poolRefillDelayMs: int(0, 600_000)
    .default(5000)
    .describe('After a visitor takes a warm server, the pool waits until their workspace has loaded (or this many milliseconds) before it starts the next one, so the start does not slow the visitor down. 0: refill at once.'),
  cullerIntervalMs: int(100, 3600 * 1000).default(30000).describe('How often the cullers check servers (ephemeral and persistent) for idleness and age, in milliseconds.'),
} satisfies Record<string, z.ZodTypeAny>;
