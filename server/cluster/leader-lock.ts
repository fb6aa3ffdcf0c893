import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface LeaderLockOptions {
  store: Store;
  log: Logger;
  /** The lock's key in the store; every hub process sharing the store must use the same one. */
  key?: string;
  /** How long a leader that stops renewing (crashed, cut off from the store) blocks the others. */
  ttlMs: number;
  /** How often the leader renews and the others try to take over; defaults to a third of ttlMs. */
  renewMs?: number;
  /**
   * Whether other processes share the store. Defaults to true for Redis only: SQLite and memory
   * serve one process, which then is the leader at once, with no key (a SIGKILLed hub's key
   * would otherwise keep its own restart waiting for the TTL).
   */
  shared?: boolean;
}

export type LeadershipListener = (leader: boolean) => void;

/**
 * One leader among the hub processes sharing a store: a key with a TTL taken with
 * `setIfAbsent` and renewed (only while it still holds our id, checked in one `atomic` step)
 * every `renewMs`. Leadership is lost when a renewal finds another owner or fails (the store
 * can't be reached: we can't know whether the key expired, so we stop acting as leader rather
 * than risk two). The others take over once the key expires, within ttlMs of the last renewal.
 * Owns one timer; `close` releases the key.
 */
export class LeaderLock {
  readonly owner = randomUUID();
  private readonly key: string;
  private readonly renewMs: number;
  private readonly shared: boolean;
  private readonly listeners = new Set<LeadershipListener>();
  private leader = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: LeaderLockOptions) {
    this.key = o.key ?? 'leader';
    this.renewMs = o.renewMs ?? Math.max(50, Math.floor(o.ttlMs / 3));
    if (this.renewMs >= o.ttlMs) throw new Error(`leader lock: renewMs (${this.renewMs}) must be below ttlMs (${o.ttlMs})`);
    this.shared = o.shared ?? o.store.kind === 'redis';
  }

  /** Whether this process leads now. Cheap: no store call. */
  isLeader(): boolean {
    return this.leader;
  }

  /**
   * Call `listener(true)` on gaining and `listener(false)` on losing leadership (and on close
   * while leading). Listeners run synchronously and must not throw. Returns the unsubscribe.
   */
  onChange(listener: LeadershipListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Make the first attempt (resolves once it is known whether this process leads), then keep
   * renewing or trying on the timer. A store outage during the first attempt is not an error:
   * the timer tries again. Safe to call twice.
   */
  async start(): Promise<void> {
    if (this.closed || this.timer) return;
    if (!this.shared) {
      this.set(true);
      return;
    }
    this.timer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => {
        this.ticking = undefined;
      });
    }, this.renewMs);
    this.timer.unref();
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
    });
    await this.ticking;
  }

  /** Stop the timer, step down (listeners hear `false`) and release the key if it is still ours. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    const was = this.leader;
    this.set(false);
    if (was && this.shared) {
      // Best effort: if the store is down the key simply expires.
      await this.o.store.deleteIfEquals(this.key, this.owner).catch((err: Error) => this.o.log.warn({ err: err.message }, 'could not release the leader lock; it expires by itself'));
    }
  }

  private async tick(): Promise<void> {
    try {
      if (this.leader) {
        const renewed = await this.o.store.atomic({
          if: [{ type: 'equals', key: this.key, value: this.owner }],
          then: [{ type: 'set', key: this.key, value: this.owner, ttlMs: this.o.ttlMs }],
        });
        if (this.closed) return;
        if (!renewed) {
          this.o.log.warn({ owner: this.owner }, 'another hub process took the leader lock; no longer leading');
          this.set(false);
        }
        return;
      }
      const taken = await this.o.store.setIfAbsent(this.key, this.owner, this.o.ttlMs);
      if (this.closed) {
        if (taken) await this.o.store.deleteIfEquals(this.key, this.owner);
        return;
      }
      if (taken) {
        this.o.log.info({ owner: this.owner }, 'this hub process leads: it runs the pool refill and the cullers');
        this.set(true);
      }
    } catch (err) {
      if (this.leader && !this.closed) {
        this.o.log.warn({ err: (err as Error).message }, 'could not renew the leader lock; no longer leading until the store answers');
        this.set(false);
      }
    }
  }

  private set(leader: boolean): void {
    if (this.leader === leader) return;
    this.leader = leader;
    for (const listener of [...this.listeners]) {
      try {
        listener(leader);
      } catch (err) {
        this.o.log.error({ err: (err as Error).message }, 'a leadership listener threw');
      }
    }
  }
}
