import session from 'express-session';
import type { Store } from '../store/store.js';

/** What we keep in a session beyond express-session's own fields. */
export interface HubSessionData {
  cookie: { originalMaxAge: number | null; expires?: string | Date | null };
  passport?: { user?: string };
  csrfToken?: string;
}

const sessionKey = (sid: string): string => `sess:${sid}`;

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
    this.store.expire(sessionKey(sid), this.ttlOf(sess)).then(() => callback?.(), (err: unknown) => callback?.(err));
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

  private async write(sid: string, sess: session.SessionData): Promise<void> {
    await this.store.set(sessionKey(sid), JSON.stringify(sess), this.ttlOf(sess));
  }

  private ttlOf(sess: session.SessionData): number {
    const maxAge = sess.cookie?.maxAge;
    return typeof maxAge === 'number' && maxAge > 0 ? maxAge : this.defaultTtlMs;
  }
}
