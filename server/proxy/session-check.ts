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

interface CacheEntry extends SessionCheck {
  escapedName: string;
  checkedAt: number;
}

const MAX_ENTRIES = 20000;

/**
 * Answers "which signed-in user does this /user/ cookie belong to" on every proxied request
 * and WebSocket upgrade. A verified answer is cached for `ttlMs` so the hot path costs a
 * Map lookup; sign-out removes entries at once (revoke), in every process via the store's
 * pub/sub.
 */
export class SessionChecker {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly secret: string,
    private readonly sessions: SessionLookup,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Fast path: a fresh cached answer, or undefined when the store must be asked. */
  cached(cookieValue: string, escapedName: string): SessionCheck | undefined {
    const hit = this.cache.get(cookieValue);
    if (!hit || hit.escapedName !== escapedName) return undefined;
    if (this.now() - hit.checkedAt > this.ttlMs) {
      this.cache.delete(cookieValue);
      return undefined;
    }
    return hit;
  }

  /** Verify the cookie's signature and ask the store who the session belongs to. */
  async check(cookieValue: string, escapedName: string): Promise<SessionCheck | null> {
    const fresh = this.cached(cookieValue, escapedName);
    if (fresh) return fresh;
    const sid = verifyServerCookie(this.secret, cookieValue, escapedName);
    if (!sid) return null;
    const user = await this.sessions.userOf(sid);
    // The cookie is bound to this path; the session must also belong to its owner.
    if (!user || escapeName(user) !== escapedName) return null;
    if (this.cache.size >= MAX_ENTRIES) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    const entry: CacheEntry = { sid, user, escapedName, checkedAt: this.now() };
    this.cache.set(cookieValue, entry);
    return entry;
  }

  /** Forget every cached answer for a session (it was signed out). */
  revoke(sid: string): void {
    for (const [key, entry] of this.cache) if (entry.sid === sid) this.cache.delete(key);
  }
}
