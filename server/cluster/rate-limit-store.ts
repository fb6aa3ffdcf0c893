import type { ClientRateLimitInfo, Options, Store as RateLimitStore } from 'express-rate-limit';
import type { Store } from '../store/store.js';

/**
 * express-rate-limit's store over the hub's Store, so a limit counts every hub process's
 * requests. Like express-rate-limit's own memory store, each client's window starts at its
 * first hit (the counter's TTL). The window's start is kept next to the counter, so every
 * process can tell the reset time, and `decrement` (skipFailedRequests) counts refunds under
 * that start: a refund never leaks into the client's next window. The Store has no decrement.
 */
export class StoreRateLimit implements RateLimitStore {
  /** Keys are shared across processes: express-rate-limit must not assume it sees every hit. */
  readonly localKeys = false;
  readonly prefix: string;
  private windowMs = 60_000;
  private refunds = false;

  /**
   * @param store the hub's store
   * @param name names this limit's keys; two limiters must not share one
   */
  constructor(
    private readonly store: Store,
    name: string,
    private readonly now: () => number = Date.now,
  ) {
    this.prefix = `ratelimit:${name}:`;
  }

  /** Called by express-rate-limit with the limiter's options. */
  init(options: Options): void {
    this.windowMs = options.windowMs;
    this.refunds = options.skipFailedRequests || options.skipSuccessfulRequests;
  }

  /** Count one hit for `key`. Rejects with StoreUnavailable during an outage (the limiter then fails the request). */
  async increment(key: string): Promise<ClientRateLimitInfo> {
    const hits = await this.store.increment(this.countKey(key), this.windowMs);
    const now = this.now();
    // The first hit of a window records its start; its TTL runs alongside the counter's.
    if (hits === 1) await this.store.set(this.startKey(key), String(now), this.windowMs);
    return this.info(key, hits, now);
  }

  /** Take one hit back (a request the limiter skips after the fact). */
  async decrement(key: string): Promise<void> {
    const start = await this.store.get(this.startKey(key));
    if (start !== null) await this.store.increment(this.refundKey(key, start), this.windowMs);
  }

  /** Forget `key`'s hits. */
  async resetKey(key: string): Promise<void> {
    await this.store.delete(this.countKey(key), this.startKey(key));
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const hits = await this.store.get(this.countKey(key));
    return hits === null ? undefined : this.info(key, Number(hits), this.now());
  }

  private async info(key: string, hits: number, now: number): Promise<ClientRateLimitInfo> {
    const start = await this.store.get(this.startKey(key));
    const startedAt = start === null ? now : Number(start);
    const refunded = this.refunds && start !== null ? Number((await this.store.get(this.refundKey(key, start))) ?? 0) : 0;
    return { totalHits: Math.max(0, hits - refunded), resetTime: new Date(startedAt + this.windowMs) };
  }

  private countKey(key: string): string {
    return `${this.prefix}count:${key}`;
  }

  private startKey(key: string): string {
    return `${this.prefix}start:${key}`;
  }

  private refundKey(key: string, start: string): string {
    return `${this.prefix}refund:${start}:${key}`;
  }
}
