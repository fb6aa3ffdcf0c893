import session from 'express-session';
import type { Store } from '../store/store.js';

/** What we keep in a session beyond express-session's own fields. */
export interface HubSessionData {
  cookie: { originalMaxAge: number | null; expires?: string | Date | null };
  passport?: { user?: string };
  csrfToken?: string;
}

const sessionKey = (sid: string): string => `sess:${sid}`;
// Which sessions a user signed in on, so an admin can end them all at once (disable, delete).
const userSessionsKey = (name: string): string => `sessions-of:${name}`;

/**
 * express-session's store on our Store seam, so sessions live wherever the rest of the hub
 * state lives (memory or Redis) and every hub process sees the same sign-ins.
 */
export class HubSessionStore extends session.Store {
  constructor(
    private readonly store: Store,
    private readonly defaultTtlMs: number,
  ) {
    super();
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.store.get(sessionKey(sid)).then(
      (text) => callback(null, text ? (JSON.parse(text) as session.SessionData) : null),
      (err: unknown) => callback(err),
    );
  }

  override set(sid: string, sess: session.SessionData, callback?: (err?: unknown) => void): void {
    this.write(sid, sess).then(() => callback?.(), (err: unknown) => callback?.(err));
  }

  override touch(sid: string, sess: session.SessionData, callback?: (err?: unknown) => void): void {
    const ttl = this.ttlOf(sess);
    const user = (sess as HubSessionData).passport?.user;
    // A touched session lives on: so must the index an admin ends it through.
    const index = typeof user === 'string' ? this.store.expire(userSessionsKey(user), ttl) : Promise.resolve(true);
    Promise.all([this.store.expire(sessionKey(sid), ttl), index]).then(() => callback?.(), (err: unknown) => callback?.(err));
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.store.delete(sessionKey(sid)).then(() => callback?.(), (err: unknown) => callback?.(err));
  }

  /** The signed-in username of a session, or null when it is gone or anonymous. */
  async userOf(sid: string): Promise<string | null> {
    const text = await this.store.get(sessionKey(sid));
    if (!text) return null;
    try {
      const data = JSON.parse(text) as HubSessionData;
      return typeof data.passport?.user === 'string' ? data.passport.user : null;
    } catch {
      return null;
    }
  }

  /** The ids of this user's live sessions (the index may hold ended ones: they are skipped). */
  async sessionsOf(name: string): Promise<string[]> {
    const live: string[] = [];
    for (const sid of await this.store.setMembers(userSessionsKey(name))) if ((await this.userOf(sid)) === name) live.push(sid);
    return live;
  }

  /**
   * End every session of this user, in every hub process (the store is shared). Returns the
   * ids ended, for closing their WebSockets and cached checks. Safe to repeat.
   */
  async destroyAllOf(name: string): Promise<string[]> {
    const ended: string[] = [];
    for (const sid of await this.store.setMembers(userSessionsKey(name))) {
      // The index may name a session that has since been reused by nobody or expired: check.
      if ((await this.userOf(sid)) === name) ended.push(sid);
      await this.store.delete(sessionKey(sid));
    }
    await this.store.delete(userSessionsKey(name));
    return ended;
  }

  private async write(sid: string, sess: session.SessionData): Promise<void> {
    const ttl = this.ttlOf(sess);
    await this.store.set(sessionKey(sid), JSON.stringify(sess), ttl);
    const user = (sess as HubSessionData).passport?.user;
    if (typeof user === 'string') {
      await this.store.setAdd(userSessionsKey(user), sid);
      // The index lives as long as the newest session in it; expired sids in it are skipped.
      await this.store.expire(userSessionsKey(user), ttl);
    }
  }

  private ttlOf(sess: session.SessionData): number {
    const maxAge = sess.cookie?.maxAge;
    return typeof maxAge === 'number' && maxAge > 0 ? maxAge : this.defaultTtlMs;
  }
}
