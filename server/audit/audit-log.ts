import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { toCsv } from './csv.js';

/** One admin action: who did what to whom, when and from where. */
export interface AuditEntry {
  id: string;
  /** ms since the epoch. */
  at: number;
  /** Who acted: a username, or e.g. `cli` or `token:NOTE` for scripts. */
  actor: string;
  /** What, as `thing.verb`: `user.disable`, `server.stop`, `pool.refill`. */
  action: string;
  /** On whom or what (a username, a server), '' when there is none. */
  target: string;
  details: Record<string, string>;
  /** The client address the request came from, '' when not over HTTP. */
  address: string;
}

/** What a caller records; `at` and `id` are added. */
export interface AuditInput {
  actor: string;
  action: string;
  target?: string;
  details?: Readonly<Record<string, string | number | boolean>>;
  address?: string;
}

/** Filters of the audit page and export; each is optional, text matches ignore case. */
export interface AuditFilter {
  actor?: string;
  /** Matches the action's start: `user` finds `user.disable` and `user.delete`. */
  action?: string;
  target?: string;
  /** ms since the epoch, inclusive. */
  from?: number;
  to?: number;
  limit?: number;
}

const KEY = 'audit:log';
const CSV_HEADER = ['time', 'actor', 'action', 'target', 'address', 'details'] as const;
// A detail value is what a user or admin typed: kept short so one entry can't fill the log.
const MAX_FIELD = 500;

export interface AuditLogOptions {
  store: Store;
  /** Keep at most this many entries, dropping the oldest (auditMaxEntries). */
  maxEntries: number;
  log: Logger;
  now?: () => number;
}

/**
 * The audit log of admin actions, kept through the Store as one append-only list: entries go
 * on its end in the order they happen (in every hub process sharing the store) and only the
 * oldest are ever taken off, once there are more than `maxEntries`. Owns the `audit:` keys.
 * The API and the CLI record their admin actions here too (AuditLog.record).
 */
export class AuditLog {
  private readonly now: () => number;

  constructor(private readonly o: AuditLogOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Append an entry and return it. Throws StoreUnavailable: an admin action whose record can't
   * be kept should say so (callers record before they answer). Every entry also goes to the log.
   */
  async record(input: AuditInput): Promise<AuditEntry> {
    const details: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(input.details ?? {})) details[clip(k)] = clip(String(v));
    const entry: AuditEntry = { id: randomUUID(), at: this.now(), actor: clip(input.actor), action: clip(input.action), target: clip(input.target ?? ''), details, address: clip(input.address ?? '') };
    const length = await this.o.store.listPush(KEY, JSON.stringify(entry));
    // Each writer takes off one entry per entry it added, so writers in several processes never
    // drop more than they add; after maxEntries was lowered, the first writer drops the surplus.
    const surplus = length - this.o.maxEntries;
    for (let i = 0; i < (surplus > 1 ? surplus : Math.max(0, surplus)); i++) await this.o.store.listShift(KEY);
    this.o.log.info({ audit: true, actor: entry.actor, action: entry.action, target: entry.target, address: entry.address, details: entry.details }, 'admin action');
    return entry;
  }

  /** Entries matching the filter, newest first. Corrupt entries are skipped. */
  async list(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    const texts = await this.o.store.listRange(KEY);
    const out: AuditEntry[] = [];
    const has = (field: string, want: string | undefined): boolean => !want || field.toLowerCase().includes(want.toLowerCase());
    for (let i = texts.length - 1; i >= 0; i--) {
      const e = parse(texts[i]!);
      if (!e) continue;
      if (!has(e.actor, filter.actor) || !has(e.target, filter.target)) continue;
      if (filter.action && !e.action.toLowerCase().startsWith(filter.action.toLowerCase())) continue;
      if (filter.from !== undefined && e.at < filter.from) continue;
      if (filter.to !== undefined && e.at > filter.to) continue;
      out.push(e);
      if (filter.limit !== undefined && out.length >= filter.limit) break;
    }
    return out;
  }

  /** The matching entries as CSV (oldest first, as a spreadsheet reads a log), safe against formula injection. */
  async csv(filter: AuditFilter = {}): Promise<string> {
    const entries = (await this.list(filter)).reverse();
    return toCsv(
      CSV_HEADER,
      entries.map((e) => [new Date(e.at).toISOString(), e.actor, e.action, e.target, e.address, JSON.stringify(e.details)]),
    );
  }
}

function clip(s: string): string {
  return s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}…` : s;
}

function parse(text: string): AuditEntry | null {
  try {
    const v = JSON.parse(text) as AuditEntry;
    return typeof v.at === 'number' && typeof v.action === 'string' ? v : null;
  } catch {
    return null;
  }
}
