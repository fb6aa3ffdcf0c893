import { int } from './types.js';

/**
 * Options of read-only sharing (issue 11, server/sharing). Merged into the one config schema
 * in schema.ts; every key has a description.
 */
export const sharingShape = {
  shareMaxPerUser: int(1, 10_000)
    .default(50)
    .describe('Most read-only share links one user may have at a time (revoked ones don\'t count); each keeps a snapshot of up to shareMaxMb in dataDir/shares.'),
  shareMaxMb: int(1, 1024)
    .default(20)
    .describe('Largest notebook that can be shared read-only, in MiB: the hub reads it from the server, renders and sanitises it in its own process, and keeps the snapshot and its page on disk.'),
  shareViewUrlTtlS: int(10, 3600)
    .default(300)
    .describe('Seconds a signed view URL on the share origin works after /hub/share/ID handed it out; a leaked one (browser history, a screenshot) soon stops working, and opening the share link again gives a fresh one.'),
} as const;
