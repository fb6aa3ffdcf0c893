import { int } from './types.js';

/** Options of the admin pages and the audit log (issue 13). Merged into the one config schema in schema.ts. */
export const adminShape = {
  auditMaxEntries: int(10, 1_000_000)
    .default(10000)
    .describe('How many audit log entries (admin actions: who, what, when, from where) the hub keeps; older ones are dropped, oldest first. Export them as CSV from /hub/admin/audit before they go.'),
  adminIdleStopS: int(60, 365 * 24 * 3600)
    .default(1800)
    .describe('"Stop all idle servers" on the admin servers page stops every server with no traffic for at least this many seconds.'),
};
