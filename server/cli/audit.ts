import os from 'node:os';
import pino from 'pino';
import { AuditLog } from '../audit/index.js';
import type { HubConfig } from '../config/index.js';
import type { Store } from '../store/index.js';

/** Records one admin action the CLI took. */
export type CliAudit = (action: string, target: string, details?: Readonly<Record<string, string | number | boolean>>) => Promise<void>;

/**
 * The hub's audit log as the CLI writes to it: the same entries as the admin pages and the API
 * make (`user.create`, `user.roles`, ...), with the actor `cli:UNIXUSER` (whoever ran the
 * command on the machine) and no address, so an operator's grant from a shell is on record too.
 */
export function cliAudit(store: Store, config: Pick<HubConfig, 'auditMaxEntries'>): CliAudit {
  const audit = new AuditLog({ store, maxEntries: config.auditMaxEntries, log: pino({ level: 'silent' }) });
  let who = 'unknown';
  try {
    who = os.userInfo().username;
  } catch {
    // No passwd entry for this uid (a container): the uid says enough.
    who = String(process.getuid?.() ?? 'unknown');
  }
  return async (action, target, details = {}) => {
    await audit.record({ actor: `cli:${who}`, action, target, details: { via: 'cli', ...details } });
  };
}
