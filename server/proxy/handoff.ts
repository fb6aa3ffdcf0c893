import { randomBytes } from 'node:crypto';

/** The two store primitives the handoff needs (Store implements them). */
export interface HandoffStore {
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  take(key: string): Promise<string | null>;
}

const PREFIX = 'handoff:';
/** Long enough for a slow redirect on a busy network; a code is useless once taken anyway. */
export const HANDOFF_TTL_MS = 60_000;
/** The path on a user origin that swaps a code for that origin's cookie. */
export const HANDOFF_PATH = 'oerhub-login';

interface Ticket {
  sid: string;
  escapedName: string;
}

/**
 * Sign-in handoff from the hub's origin to a user origin. The hub (session checked) issues a
 * short-lived, single-use code bound to the session and the server; the proxy on the user
 * origin redeems it and sets that origin's own cookie. The hub's session cookie never leaves
 * the hub's origin, and a code seen in a log or a Referer is worthless once used.
 */
export class SignInHandoff {
  constructor(private readonly store: HandoffStore, private readonly ttlMs: number = HANDOFF_TTL_MS) {}

  /** A new code for this session and server. Rejects with StoreUnavailable when the store is down. */
  async issue(sid: string, escapedName: string): Promise<string> {
    const code = randomBytes(32).toString('base64url');
    const ticket: Ticket = { sid, escapedName };
    await this.store.set(PREFIX + code, JSON.stringify(ticket), this.ttlMs);
    return code;
  }

  /**
   * The session id the code was issued for, if it was issued for this server and not used
   * or expired; null otherwise. The code is gone after this call whatever the answer, so
   * repeating it returns null.
   */
  async redeem(code: string, escapedName: string): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(code)) return null;
    const raw = await this.store.take(PREFIX + code);
    if (!raw) return null;
    try {
      const ticket = JSON.parse(raw) as Partial<Ticket>;
      return ticket.escapedName === escapedName && typeof ticket.sid === 'string' ? ticket.sid : null;
    } catch {
      return null;
    }
  }
}
