import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { UserRecord } from '../store/repos.js';
import { BadRequest, Forbidden } from '../errors.js';
import type { UserService } from './users.js';
import type { PasswordPolicy } from './account-password-policy.js';

export interface AccountServiceOptions {
  store: Store;
  users: UserService;
  policy: PasswordPolicy;
  log: Logger;
  /** End a session everywhere (destroy it in the store, close its sockets in every hub process). */
  endSession(sid: string, user: UserRecord): Promise<void>;
  /** The ids of the user's live sessions (HubSessionStore.sessionsOf: its per-user index). */
  sessionsOf(name: string): Promise<string[]>;
}

const emailKey = (email: string): string => `account-email:${email.trim().toLowerCase()}`;

/**
 * Local accounts' own changes: their password (with the policy); a change ends every other
 * sign-in of the account at once (through the session store's per-user index).
 */
export class AccountService {
  constructor(private readonly o: AccountServiceOptions) {}

  /** Record the email address of a local account (from its invitation), for reset links. */
  async recordEmail(name: string, email: string): Promise<void> {
    await this.o.store.set(emailKey(email), name);
  }

  /** The local account with this recorded address, or null. */
  async accountWithEmail(email: string): Promise<UserRecord | null> {
    const name = await this.o.store.get(emailKey(email));
    const user = name ? await this.o.users.get(name) : null;
    return user && user.email?.toLowerCase() === email.trim().toLowerCase() ? user : null;
  }

  /** A new password from a reset link: policy checked, every session of the account ends. */
  async resetPassword(user: UserRecord, next: string, confirm: string): Promise<void> {
    if (next !== confirm) throw new BadRequest('The two passwords are not the same. Nothing was changed.');
    this.checkNew(next, user);
    await this.o.users.setPassword(user.name, next);
    const ended = await this.endOtherSessions(user, null);
    this.o.log.info({ user: user.name, endedSessions: ended }, 'password reset by an emailed link');
  }

  /** Throws WeakPassword when the policy refuses it. */
  checkNew(password: string, user: { name: string; email?: string }): void {
    this.o.policy.check(password, [user.name, ...(user.email ? [user.email] : [])]);
  }

  /**
   * Change a local account's password: the current one must match; the new one must pass the
   * policy and differ. The old password stops working at once, and every other session of the
   * user ends (the one making the change stays signed in).
   */
  async changePassword(user: UserRecord, current: string, next: string, confirm: string, keepSid: string): Promise<void> {
    if (user.source !== 'local') throw new Forbidden('This account signs in through your institution; its password is changed there.');
    if (!(await this.o.users.verifyLocal(user.name, current))) throw new BadRequest('The current password is not right. Nothing was changed.');
    if (next !== confirm) throw new BadRequest('The two new passwords are not the same. Nothing was changed.');
    if (next === current) throw new BadRequest('The new password must differ from the current one.');
    this.checkNew(next, user);
    await this.o.users.setPassword(user.name, next);
    const ended = await this.endOtherSessions(user, keepSid);
    this.o.log.info({ user: user.name, endedSessions: ended }, 'password changed');
  }

  /** End every session of the user but `keepSid` (none: all). Returns how many ended. */
  async endOtherSessions(user: UserRecord, keepSid: string | null): Promise<number> {
    let ended = 0;
    for (const sid of await this.o.sessionsOf(user.name)) {
      if (sid === keepSid) continue;
      await this.o.endSession(sid, user);
      ended++;
    }
    return ended;
  }
}
