import { verifyServerCookie } from '../auth/server-cookie.js';
import { escapeName } from '../names.js';

export interface SessionLookup {
  /** Username signed in on this session, or null. Rejects when the store is unreachable. */
  userOf(sid: string): Promise<string | null>;
}

export interface SessionCheck {
  sid: string;
  user: string;
}

export interface SessionCheckerOptions {
  /**
   * While the store is unreachable, a session the store confirmed at most this long ago is still
   * accepted (stale-while-error), so running notebooks keep working through a store outage.
   * 0 (the default): refuse as soon as `ttlMs` has run out.
   */
  staleWhileErrorMs?: number;
  now?: () => number;
}

interface CacheEntry extends SessionCheck {
  escapedName: string;
  /** When the store last confirmed this session (never moved by a stale answer). */
  checkedAt: number;
}

const MAX_ENTRIES = 20000;
// After a failed lookup, stale answers are served without asking the store again for this long:
// each lookup during an outage waits up to the store's own timeout, which every request would feel.
const STORE_RETRY_MS = 2000;

/**
 * Answers "which signed-in user does this /user/ cookie belong to" on every proxied request
 * and WebSocket upgrade. A verified answer is cached for `ttlMs` so the hot path costs a
 * Map lookup; sign-out removes entries at once (revoke), in every process via the store's
 * pub/sub. When the store can't be reached, an entry confirmed within `staleWhileErrorMs` is
 * still accepted; a revoked or never-checked session is not.
 */
export class SessionChecker {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly staleWhileErrorMs: number;
  private readonly now: () => number;
  private storeFailedAt: number | undefined;

  constructor(
    private readonly secret: string,
    private readonly sessions: SessionLookup,
    private readonly ttlMs: number,
    options: SessionCheckerOptions = {},
  ) {
    this.staleWhileErrorMs = options.staleWhileErrorMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  /** Fast path: a fresh cached answer, or undefined when the store must be asked. */
  cached(cookieValue: string, escapedName: string): SessionCheck | undefined {
    const hit = this.cache.get(cookieValue);
    if (!hit || hit.escapedName !== escapedName) return undefined;
    const age = this.now() - hit.checkedAt;
    if (age <= this.ttlMs) return hit;
    // Kept past its ttl only as long as it may still stand in for the store during an outage.
    if (age > this.staleWhileErrorMs) this.cache.delete(cookieValue);
    return undefined;
  }

  /**
   * Verify the cookie's signature and ask the store who the session belongs to. Resolves null
   * for a bad cookie or a session that is gone; rejects when the store is unreachable and no
   * answer within `staleWhileErrorMs` can stand in.
   */
  async check(cookieValue: string, escapedName: string): Promise<SessionCheck | null> {
    const fresh = this.cached(cookieValue, escapedName);
    if (fresh) return fresh;
    const sid = verifyServerCookie(this.secret, cookieValue, escapedName);
    if (!sid) return null;
    if (this.storeFailedAt !== undefined && this.now() - this.storeFailedAt < STORE_RETRY_MS) {
      const stale = this.stale(cookieValue, escapedName, sid);
      if (stale) return stale;
    }
    let user: string | null;
    try {
      user = await this.sessions.userOf(sid);
      this.storeFailedAt = undefined;
    } catch (err) {
      this.storeFailedAt = this.now();
      const stale = this.stale(cookieValue, escapedName, sid);
      if (stale) return stale;
      throw err;
    }
    // The cookie is bound to this path; the session must also belong to its owner.
    if (!user || escapeName(user) !== escapedName) {
      // A stale entry of a session that is gone must never stand in during a later outage.
      this.cache.delete(cookieValue);
      return null;
    }
    if (this.cache.size >= MAX_ENTRIES && !this.cache.has(cookieValue)) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    const entry: CacheEntry = { sid, user, escapedName, checkedAt: this.now() };
    this.cache.delete(cookieValue);
    this.cache.set(cookieValue, entry);
    return entry;
  }

  /** Forget every cached answer for a session (it was signed out). */
  revoke(sid: string): void {
    for (const [key, entry] of this.cache) if (entry.sid === sid) this.cache.delete(key);
  }

  /** A cached answer that may stand in for the store while it is unreachable. */
  private stale(cookieValue: string, escapedName: string, sid: string): SessionCheck | undefined {
    const hit = this.cache.get(cookieValue);
    if (!hit || hit.escapedName !== escapedName || hit.sid !== sid) return undefined;
    return this.now() - hit.checkedAt <= this.staleWhileErrorMs ? hit : undefined;
  }
}
