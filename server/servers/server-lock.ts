import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

/** A lock lives this long unless its holder renews it: a hub that crashed holding one blocks that server only this long. */
export const LOCK_TTL_MS = 30_000;
const RENEW_EVERY_MS = 10_000;
const KEY_PREFIX = 'lock:server:';

/**
 * The one lifecycle lock per server, in the store, so starts and stops of one user are
 * serialised across every hub process sharing it. Held locks are renewed while their
 * operation runs (a start may take minutes) and expire soon after a crash.
 */
export class ServerLocks {
  /** escapedName -> owner token of the locks this process holds. */
  private readonly held = new Map<string, string>();
  private readonly renewTimer: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    this.renewTimer = setInterval(() => void this.renew(), RENEW_EVERY_MS);
    this.renewTimer.unref();
  }

  /** Take the lock if nobody holds it. Returns the owner token to release it with, or null. Throws StoreUnavailable. */
  async tryAcquire(escapedName: string): Promise<string | null> {
    const owner = randomUUID();
    if (!(await this.store.setIfAbsent(KEY_PREFIX + escapedName, owner, LOCK_TTL_MS))) return null;
    this.held.set(escapedName, owner);
    return owner;
  }

  /** Release a lock this process holds; a lock that expired and went to someone else is left alone. Never throws. */
  async release(escapedName: string, owner: string): Promise<void> {
    if (this.held.get(escapedName) === owner) this.held.delete(escapedName);
    await this.store.deleteIfEquals(KEY_PREFIX + escapedName, owner).catch((err: Error) => {
      // It expires by itself within LOCK_TTL_MS.
      this.log.warn({ server: escapedName, err: err.message }, 'could not release a server lock');
    });
  }

  /** Whether any process holds the lock now. Throws StoreUnavailable. */
  async isHeld(escapedName: string): Promise<boolean> {
    return (await this.store.get(KEY_PREFIX + escapedName)) !== null;
  }

  /** Stop renewing. Locks still held expire by themselves. Safe to call twice. */
  close(): void {
    clearInterval(this.renewTimer);
  }

  private async renew(): Promise<void> {
    for (const [name, owner] of [...this.held]) {
      try {
        // Only our own lock: a value check first, so an expired lock someone else took stays theirs.
        if ((await this.store.get(KEY_PREFIX + name)) === owner) await this.store.expire(KEY_PREFIX + name, LOCK_TTL_MS);
        else if (this.held.get(name) === owner) this.log.error({ server: name }, 'lost a server lock while holding it (store outage longer than its TTL?)');
      } catch (err) {
        this.log.warn({ server: name, err: (err as Error).message }, 'could not renew a server lock');
      }
    }
  }
}
