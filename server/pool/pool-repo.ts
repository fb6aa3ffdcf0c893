import type { Store } from '../store/store.js';
import { parseRecord } from '../store/repos.js';

/** What the hub remembers about one visitor's ephemeral server. */
export interface TrySession {
  /** The anonymous user's name (UserService.createAnonymous). */
  name: string;
  escapedName: string;
  /** The client address that took it (per-address limits). */
  ip: string;
  /** When the visitor got it: the max-age clock starts here. */
  claimedAt: number;
  /** Whether it came warm from the pool (false: started on demand). */
  warm: boolean;
}

// The culled counter lives as long as a hub's state usually does; it is a statistic, not a limit.
const COUNTER_TTL_MS = 365 * 24 * 3600 * 1000;

/**
 * The warm pool's records in the store, so a restarted hub (or another hub process) finds them:
 * the ready list (FIFO of anonymous user names whose servers run and hold the samples), the
 * names being warmed up, the sessions in use, the waiting queue and the culled counter. Owns
 * every `pool:` key.
 */
export class PoolRepo {
  constructor(private readonly store: Store) {}

  readyNames(): Promise<string[]> {
    return this.store.listRange('pool:ready');
  }

  async pushReady(name: string): Promise<void> {
    await this.store.listPush('pool:ready', name);
  }

  /** Take this name off the ready list. True if this call removed it (no one else took it first). */
  async removeReady(name: string): Promise<boolean> {
    return (await this.store.listRemove('pool:ready', name)) > 0;
  }

  /** Take the oldest ready name; of two concurrent callers only one gets each name. */
  shiftReady(): Promise<string | null> {
    return this.store.listShift('pool:ready');
  }

  startingNames(): Promise<string[]> {
    return this.store.setMembers('pool:starting');
  }

  async addStarting(name: string): Promise<void> {
    await this.store.setAdd('pool:starting', name);
  }

  async removeStarting(name: string): Promise<void> {
    await this.store.setRemove('pool:starting', name);
  }

  async putSession(session: TrySession): Promise<void> {
    await this.store.set(`pool:session:${session.name}`, JSON.stringify(session));
    await this.store.setAdd('pool:in-use', session.name);
  }

  async getSession(name: string): Promise<TrySession | null> {
    return parseRecord<TrySession>(await this.store.get(`pool:session:${name}`));
  }

  async sessions(): Promise<TrySession[]> {
    const names = await this.store.setMembers('pool:in-use');
    const texts = await this.store.getMany(names.map((n) => `pool:session:${n}`));
    return texts.map((t) => parseRecord<TrySession>(t)).filter((s): s is TrySession => s !== null);
  }

  inUseNames(): Promise<string[]> {
    return this.store.setMembers('pool:in-use');
  }

  /** Remove a name from every list: ready, starting, in use. Safe to repeat. */
  async forget(name: string): Promise<void> {
    await this.store.listRemove('pool:ready', name);
    await this.store.setRemove('pool:starting', name);
    await this.store.setRemove('pool:in-use', name);
    await this.store.delete(`pool:session:${name}`);
  }

  async countCulled(): Promise<void> {
    await this.store.increment('pool:culled', COUNTER_TTL_MS);
  }

  async culled(): Promise<number> {
    return Number((await this.store.get('pool:culled')) ?? 0) || 0;
  }

  // The waiting queue: tickets in arrival order, each with the time its page last asked and the
  // address that holds it (per-address limits, counted here so every hub process sees them).

  async queue(): Promise<{ ticket: string; seenAt: number; ip: string }[]> {
    const tickets = await this.store.listRange('pool:queue');
    const [seen, ips] = await Promise.all([this.store.hashGetAll('pool:queue-seen'), this.store.hashGetAll('pool:queue-ip')]);
    return tickets.map((ticket) => ({ ticket, seenAt: Number(seen[ticket] ?? 0), ip: ips[ticket] ?? '' }));
  }

  async enqueue(ticket: string, now: number, ip: string): Promise<void> {
    await this.store.hashSet('pool:queue-seen', { [ticket]: String(now) });
    await this.store.hashSet('pool:queue-ip', { [ticket]: ip });
    await this.store.listPush('pool:queue', ticket);
  }

  async seen(ticket: string, now: number): Promise<void> {
    await this.store.hashSet('pool:queue-seen', { [ticket]: String(now) });
  }

  async dequeue(...tickets: string[]): Promise<void> {
    for (const t of tickets) await this.store.listRemove('pool:queue', t);
    if (tickets.length) {
      await this.store.hashDelete('pool:queue-seen', ...tickets);
      await this.store.hashDelete('pool:queue-ip', ...tickets);
    }
  }

  /** Servers this address took in the current window (tryStartsPerAddress). */
  async recentStarts(ip: string): Promise<number> {
    return Number((await this.store.get(`pool:starts:${ip}`)) ?? 0) || 0;
  }

  /** Count a server handed to this address; the first one opens a window of windowMs. */
  async countStart(ip: string, windowMs: number): Promise<void> {
    await this.store.increment(`pool:starts:${ip}`, windowMs);
  }
}
