import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { AuditLog } from '../audit/index.js';
import type { UserService } from '../auth/users.js';
import type { IdentityService } from '../auth/identities.js';
import type { ServerManager, ServerSummary } from '../servers/server-manager.js';
import type { TryIt } from '../pool/index.js';
import type { Role, UserRecord } from '../store/repos.js';
import { BadRequest, Conflict, NotFound } from '../errors.js';
import { isAnonymousName } from '../names.js';
import type { AccountRepo, DisabledAccount } from './account-repo.js';

/** Who does an admin action, and from where (for the audit log). */
export interface Actor {
  name: string;
  address: string;
}

export interface UserRow {
  user: UserRecord;
  granted: Role[];
  idp: Role[];
  disabled: DisabledAccount | null;
  server: ServerSummary | null;
}

export interface ServerRow extends ServerSummary {
  ageMs: number;
  /** ms since the epoch; undefined when no traffic was seen. */
  lastActivity?: number;
  idle: boolean;
}

export interface PoolRow {
  name: string;
  state: 'ready' | 'claimed';
  startedAt?: number;
  claimedAt?: number;
  ip?: string;
  /** Claimed: ms until the visitor's session ends (idle timeout or maximum age, whichever is first). */
  remainingMs?: number;
}

export interface AdminServiceOptions {
  config: HubConfig;
  users: UserService;
  identities: IdentityService;
  manager: ServerManager;
  tryIt: TryIt;
  accounts: AccountRepo;
  audit: AuditLog;
  /** End every session of a user in every hub process; returns the ids ended. */
  endSessionsOf(name: string): Promise<string[]>;
  /** A session was ended: forget it in the proxies' caches and close its WebSockets (every process). */
  sessionEnded(sid: string, name: string): Promise<void>;
  /**
   * The account's API tokens: `recheck` makes every process read them afresh (a disabled account's
   * are dead, an enabled one's live again; kept either way); `revoke` deletes them. Both close
   * the tokens' WebSockets.
   */
  tokensOf: { recheck(name: string): Promise<number>; revoke(name: string): Promise<void> };
  /** Remove a user's home (Spawner.removeHome); undefined when the spawner can't. */
  removeHome?: (escapedName: string) => Promise<boolean>;
  /**
   * A user is being deleted, their server stopped: they leave their research projects and lose
   * every project ACL entry (before removeHome removes their Unix account). Returns the projects left.
   */
  leaveProjects?: (user: UserRecord) => Promise<string[]>;
  lastActivity(): Promise<Map<string, number>>;
  /** After an account is deleted: other parts forget what it left (read-only shares revoked, snapshots deleted). */
  onDeleted?: (name: string) => Promise<void>;
  log: Logger;
  now?: () => number;
}

const GRANTABLE: readonly Role[] = ['admin', 'instructor', 'student'];

/**
 * What admins do to accounts, servers and the pool, each action recorded in the audit log.
 * The admin pages call it; the REST API and the CLI may too. Anonymous "Try it" users are
 * never users here: they appear only as pool sessions.
 */
export class AdminService {
  private readonly now: () => number;

  constructor(private readonly o: AdminServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Whether deleting a user can remove their files (the spawner has removeHome). */
  get canRemoveData(): boolean {
    return this.o.removeHome !== undefined;
  }

  /** Whether this account may not sign in. */
  async isDisabled(name: string): Promise<boolean> {
    return (await this.o.accounts.disabled(name)) !== null;
  }

  /** Accounts (never "Try it" visitors) matching `query` in name, display name, email or role, by name. */
  async listUsers(query = '', role = ''): Promise<UserRow[]> {
    const q = query.trim().toLowerCase();
    const [names, disabled, servers] = await Promise.all([this.o.users.list(), this.o.accounts.allDisabled(), this.o.manager.list()]);
    const byName = new Map(servers.map((s) => [s.user, s]));
    const rows: UserRow[] = [];
    for (const name of names) {
      if (isAnonymousName(name)) continue;
      const user = await this.o.users.get(name);
      if (!user || user.source === 'anonymous') continue;
      if (role && !user.roles.includes(role as Role)) continue;
      const haystack = [user.name, user.displayName ?? '', user.email ?? '', ...user.roles].join('\n').toLowerCase();
      if (q && !haystack.includes(q)) continue;
      const { granted, idp } = await this.o.identities.rolesOf(user);
      rows.push({ user, granted, idp, disabled: disabled.get(name) ?? null, server: byName.get(name) ?? null });
    }
    return rows;
  }

  /** The row of one account (its page). */
  async userRow(user: UserRecord): Promise<UserRow> {
    const [{ granted, idp }, disabled, servers] = await Promise.all([this.o.identities.rolesOf(user), this.o.accounts.disabled(user.name), this.o.manager.list()]);
    return { user, granted, idp, disabled, server: servers.find((s) => s.user === user.name) ?? null };
  }

  /** One account by escaped name; NotFound for visitors and unknown names. */
  async account(escapedName: string): Promise<UserRecord> {
    const user = await this.o.users.getByEscaped(escapedName);
    if (!user || user.source === 'anonymous' || isAnonymousName(user.name)) throw new NotFound('There is no such user.');
    return user;
  }

  /** Where an account's roles come from: the hub's grants and the IdP's (latest sign-in). */
  rolesOf(user: UserRecord): Promise<{ granted: Role[]; idp: Role[] }> {
    return this.o.identities.rolesOf(user);
  }

  /** Set the roles the hub grants (the IdP's stay). An admin can't take their own admin role away. */
  async setRoles(actor: Actor, user: UserRecord, roles: readonly string[]): Promise<UserRecord> {
    const granted = GRANTABLE.filter((r) => roles.includes(r));
    const before = await this.o.identities.rolesOf(user);
    if (user.name === actor.name && before.granted.includes('admin') && !granted.includes('admin')) throw new BadRequest('You can\'t take away your own admin role: ask another admin.');
    const updated = await this.o.identities.grant(user.name, granted);
    await this.record(actor, 'user.roles', user.name, { before: before.granted.join(' '), after: granted.join(' '), effective: updated.roles.join(' ') });
    return updated;
  }

  /**
   * Disable an account at once: no new sign-in (any method), every session ended in every hub
   * process, its server stopped (files kept). Safe to repeat. Refuses the admin's own account.
   */
  async disable(actor: Actor, user: UserRecord): Promise<void> {
    if (user.name === actor.name) throw new BadRequest('You can\'t disable your own account.');
    // First, so no sign-in can slip in between ending the sessions and the flag.
    await this.o.accounts.disable(user.name, { at: this.now(), by: actor.name });
    const ended = await this.endSessions(user.name);
    const tokensStopped = await this.o.tokensOf.recheck(user.name);
    const stopped = await this.stopIfRunning(user);
    await this.record(actor, 'user.disable', user.name, { sessionsEnded: ended, tokensStopped, serverStopped: stopped });
  }

  async enable(actor: Actor, user: UserRecord): Promise<void> {
    await this.o.accounts.enable(user.name);
    await this.o.tokensOf.recheck(user.name);
    await this.record(actor, 'user.enable', user.name);
  }

  /**
   * Delete an account: sessions ended, server stopped, identities and roles forgotten, and its
   * home removed unless `keepData` (then a new account of the same name gets it back).
   */
  async deleteUser(actor: Actor, user: UserRecord, keepData: boolean): Promise<{ homeRemoved: boolean }> {
    if (user.name === actor.name) throw new BadRequest('You can\'t delete your own account.');
    if (!keepData && !this.o.removeHome) throw new Conflict('This hub\'s spawner can\'t remove a user\'s files; delete the account keeping them.');
    // Disabled first: a sign-in racing the delete can't make a new session for it.
    await this.o.accounts.disable(user.name, { at: this.now(), by: actor.name });
    const ended = await this.endSessions(user.name);
    await this.o.tokensOf.revoke(user.name);
    await this.stopIfRunning(user);
    const projectsLeft = (await this.o.leaveProjects?.(user)) ?? [];
    const homeRemoved = keepData ? false : await this.o.removeHome!(user.escapedName);
    await this.o.identities.forget(user.name);
    await this.o.users.deleteAccount(user);
    await this.o.onDeleted?.(user.name);
    await this.o.accounts.enable(user.name);
    await this.record(actor, 'user.delete', user.name, { data: keepData ? 'kept' : 'removed', homeRemoved, sessionsEnded: ended, ...(projectsLeft.length ? { projectsLeft: projectsLeft.join(',') } : {}) });
    return { homeRemoved };
  }

  /** Every server, newest first, with age, last activity and whether it counts as idle (adminIdleStopS). */
  async servers(): Promise<ServerRow[]> {
    const [list, activity] = await Promise.all([this.o.manager.list(), this.o.lastActivity()]);
    const now = this.now();
    return list
      .map((s) => {
        const last = activity.get(s.escapedName);
        const since = last ?? s.startedAt;
        return { ...s, ageMs: now - s.startedAt, ...(last !== undefined ? { lastActivity: last } : {}), idle: s.phase === 'running' && now - since >= this.o.config.adminIdleStopS * 1000 };
      })
      .sort((a, b) => b.startedAt - a.startedAt);
  }

  /** Stop servers by user name ("Try it" ones are destroyed, as their visitors' sessions end). Returns who was stopped. */
  async stopServers(actor: Actor, names: readonly string[], action = 'server.stop'): Promise<string[]> {
    const stopped: string[] = [];
    for (const name of new Set(names)) {
      if (isAnonymousName(name)) {
        await this.endVisitor(name);
        stopped.push(name);
        await this.record(actor, action, name, { ephemeral: true });
        continue;
      }
      const user = await this.o.users.get(name);
      if (!user) continue;
      await this.o.manager.stop(user);
      stopped.push(name);
      await this.record(actor, action, name);
    }
    return stopped;
  }

  /** Stop every server idle for at least adminIdleStopS. */
  async stopIdle(actor: Actor): Promise<string[]> {
    const idle = (await this.servers()).filter((s) => s.idle).map((s) => s.user);
    const stopped = await this.stopServers(actor, idle, 'server.stop-idle');
    await this.record(actor, 'servers.stop-idle', '', { idleForS: this.o.config.adminIdleStopS, stopped: stopped.length });
    return stopped;
  }

  /** The server's last log lines (secrets blanked); null when the spawner has none to show. */
  async logs(actor: Actor, user: UserRecord, lines: number): Promise<string[] | null> {
    const got = await this.o.manager.logs(user, lines);
    await this.record(actor, 'server.logs', user.name, { lines });
    return got;
  }

  /** The warm pool: ready servers and visitors' sessions with their remaining time. */
  async pool(): Promise<PoolRow[]> {
    const { pool } = this.o.tryIt;
    const [ready, sessions, servers] = await Promise.all([pool.readyNames(), pool.sessions(), this.o.manager.list()]);
    const started = new Map(servers.map((s) => [s.user, s.startedAt]));
    const now = this.now();
    const rows: PoolRow[] = ready.map((name) => ({ name, state: 'ready', ...(started.has(name) ? { startedAt: started.get(name) } : {}) }));
    for (const s of sessions) {
      const { expiresAt, idleAt } = await this.o.tryIt.deadlines(s);
      rows.push({ name: s.name, state: 'claimed', claimedAt: s.claimedAt, ip: s.ip, remainingMs: Math.max(0, Math.min(expiresAt, idleAt) - now), ...(started.has(s.name) ? { startedAt: started.get(s.name) } : {}) });
    }
    return rows;
  }

  /** End visitors' sessions: signed out everywhere, server and files destroyed. */
  async endPoolSessions(actor: Actor, names: readonly string[]): Promise<number> {
    let n = 0;
    for (const name of new Set(names)) {
      if (!isAnonymousName(name)) continue;
      await this.endVisitor(name);
      await this.record(actor, 'pool.end-session', name);
      n++;
    }
    return n;
  }

  async refillPool(actor: Actor): Promise<void> {
    this.o.tryIt.pool.fill();
    await this.record(actor, 'pool.refill', '', { target: this.o.config.poolSize });
  }

  private async endVisitor(name: string): Promise<void> {
    await this.endSessions(name);
    await this.o.tryIt.pool.release(name, 'admin');
  }

  private async endSessions(name: string): Promise<number> {
    const sids = await this.o.endSessionsOf(name);
    for (const sid of sids) await this.o.sessionEnded(sid, name);
    return sids.length;
  }

  private async stopIfRunning(user: UserRecord): Promise<boolean> {
    const had = (await this.o.manager.list()).some((s) => s.user === user.name);
    if (had) await this.o.manager.stop(user);
    return had;
  }

  private async record(actor: Actor, action: string, target: string, details: Record<string, string | number | boolean> = {}): Promise<void> {
    await this.o.audit.record({ actor: actor.name, action, target, details, address: actor.address });
  }
}
