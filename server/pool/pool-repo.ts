import type { AtomicWrite, Store } from '../store/store.js';
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

  /**
   * Take the oldest ready name; of two concurrent callers only one gets each name. Prefer
   * claimReady, which also records the session in the same step.
   */
  shiftReady(): Promise<string | null> {
    return this.store.listShift('pool:ready');
  }

  /**
   * Hand the oldest ready server to a visitor: take its name off the ready list and record
   * the visitor's session (`sessionFor(name)`) in one atomic step, so a store failure can't
   * leave a running server that is neither ready nor in use (and that nothing would ever
   * stop). Of concurrent callers only one gets each name; the others move on to the next.
   * Null when no server is ready.
   */
  async claimReady(sessionFor: (name: string) => Promise<TrySession>): Promise<TrySession | null> {
    for (;;) {
      const [name] = await this.store.listRange('pool:ready');
      if (name === undefined) return null;
      const session = await sessionFor(name);
      const claimed = await this.store.atomic({
        // If another claimer (or a release) took the name first, this writes nothing: try the next.
        if: [{ type: 'listIncludes', key: 'pool:ready', value: name }],
        then: [{ type: 'listRemove', key: 'pool:ready', value: name }, ...this.sessionWrites(session)],
      });
      if (claimed) return session;
    }
  }

  /** A warm-up finished: list the name as ready and no longer starting, in one atomic step. */
  async markReady(name: string): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'listPush', key: 'pool:ready', values: [name] },
        { type: 'setRemove', key: 'pool:starting', members: [name] },
      ],
    });
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

  /** Record a visitor's session and count it as in use, in one atomic step. */
  async putSession(session: TrySession): Promise<void> {
    await this.store.atomic({ then: this.sessionWrites(session) });
  }

  private sessionWrites(session: TrySession): AtomicWrite[] {
    return [
      { type: 'set', key: `pool:session:${session.name}`, value: JSON.stringify(session) },
      { type: 'setAdd', key: 'pool:in-use', members: [session.name] },
    ];
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

  /** Remove a name from every list (ready, starting, in use) and its session, in one atomic step. Safe to repeat. */
  async forget(name: string): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'listRemove', key: 'pool:ready', value: name },
        { type: 'setRemove', key: 'pool:starting', members: [name] },
        { type: 'setRemove', key: 'pool:in-use', members: [name] },
        { type: 'delete', key: `pool:session:${name}` },
      ],
    });
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
    await this.store.atomic({
      then: [
        { type: 'hashSet', key: 'pool:queue-seen', fields: { [ticket]: String(now) } },
        { type: 'hashSet', key: 'pool:queue-ip', fields: { [ticket]: ip } },
        { type: 'listPush', key: 'pool:queue', values: [ticket] },
      ],
    });
  }

  async seen(ticket: string, now: number): Promise<void> {
    await this.store.hashSet('pool:queue-seen', { [ticket]: String(now) });
  }

  async dequeue(...tickets: string[]): Promise<void> {
    if (tickets.length === 0) return;
    await this.store.atomic({
      then: [
        ...tickets.map((t): AtomicWrite => ({ type: 'listRemove', key: 'pool:queue', value: t })),
        { type: 'hashDelete', key: 'pool:queue-seen', fields: tickets },
        { type: 'hashDelete', key: 'pool:queue-ip', fields: tickets },
      ],
    });
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
