import type { Logger } from '../log.js';
import { randomBytes } from 'node:crypto';
import { Conflict, NotFound } from '../errors.js';
import { ANONYMOUS_PREFIX, escapeName, isAnonymousName, normalizeUsername } from '../names.js';
import type { Role, UserRecord, UserRepo, UserSource } from '../store/repos.js';
import { generatePassword, hashForMissingUser, hashPassword, verifyPassword } from './passwords.js';

/**
 * Users, for every authenticator: the one place a raw name from a form, an IdP or a header
 * becomes a normalised user record.
 */
export class UserService {
  private missingUserHash: Promise<string> | undefined;

  constructor(
    private readonly repo: UserRepo,
    private readonly adminUsers: readonly string[],
    private readonly log: Logger,
  ) {}

  get(name: string): Promise<UserRecord | null> {
    return this.repo.get(name);
  }

  getByEscaped(escapedName: string): Promise<UserRecord | null> {
    return this.repo.getByEscaped(escapedName);
  }

  list(): Promise<string[]> {
    return this.repo.list();
  }

  /** Create a local (password) account. Throws InvalidUsername or Conflict. */
  async createLocal(rawName: string, password: string, roles: Role[] = ['student']): Promise<UserRecord> {
    const name = normalizeUsername(rawName);
    const user = this.build(name, 'local', roles);
    user.passwordHash = await hashPassword(password);
    if (!(await this.repo.create(user))) throw new Conflict(`A user named ${name} already exists.`);
    this.log.info({ user: name, roles: user.roles }, 'local user created');
    return user;
  }

  /** The normalised form of a name (throws InvalidUsername). */
  normalize(rawName: string): string {
    return normalizeUsername(rawName);
  }

  /**
   * Create an account for an external identity (IdentityService decides when). Returns null,
   * changing nothing, when an account of that name exists. Throws InvalidUsername.
   */
  async createExternal(rawName: string, source: UserSource, roles: Role[], extra: { displayName?: string; email?: string } = {}): Promise<UserRecord | null> {
    const name = normalizeUsername(rawName);
    const user: UserRecord = { ...this.build(name, source, roles), ...extra };
    if (!(await this.repo.create(user))) return null;
    this.log.info({ user: name, source, roles: user.roles }, 'user created from an external sign-in');
    return user;
  }

  /** Change an account's roles or profile (adminUsers always keep admin). Throws NotFound. */
  async update(name: string, patch: { roles?: Role[]; displayName?: string; email?: string }): Promise<UserRecord> {
    const user = await this.repo.get(name);
    if (!user) throw new NotFound(`There is no user named ${name}.`);
    const next: UserRecord = { ...user, ...patch, roles: this.withAdmin(name, patch.roles ?? user.roles) };
    await this.repo.put(next);
    return next;
  }

  /** Replace a local account's password (AccountService checks the policy and the old one). Throws NotFound. */
  async setPassword(name: string, password: string): Promise<void> {
    const user = await this.repo.get(name);
    if (user?.source !== 'local') throw new NotFound(`There is no local account named ${name}.`);
    await this.repo.put({ ...user, passwordHash: await hashPassword(password) });
  }

  /**
   * A new anonymous ("Try it") user: source and role 'anonymous', a random name starting with
   * ANONYMOUS_PREFIX, which normalizeUsername refuses for everyone else, so no sign-in can reach
   * it. Never reuses a name. Throws StoreUnavailable.
   */
  async createAnonymous(): Promise<UserRecord> {
    for (;;) {
      // 80 random bits in [a-z2-7]: short enough for readable /user/ paths, never guessed.
      const name = ANONYMOUS_PREFIX + base32(randomBytes(10));
      const user: UserRecord = { name, escapedName: escapeName(name), roles: ['anonymous'], source: 'anonymous', createdAt: Date.now() };
      if (await this.repo.create(user)) return user;
    }
  }

  /** Forget an anonymous user (its server is gone). Refuses anyone else; safe to repeat. */
  async deleteAnonymous(user: UserRecord): Promise<void> {
    if (!isAnonymousName(user.name) || user.source !== 'anonymous') throw new Conflict('Only anonymous users are deleted this way.', `refused to delete ${user.name}`);
    await this.repo.delete(user);
  }

  /** Forget an account (an admin deleting it; its server is stopped first). Anonymous users go through deleteAnonymous. Safe to repeat. */
  async deleteAccount(user: UserRecord): Promise<void> {
    if (user.source === 'anonymous') throw new Conflict('Visitors\' accounts go with their "Try it" session.', `refused to delete ${user.name}`);
    await this.repo.delete(user);
    this.log.info({ user: user.name }, 'user deleted');
  }

  /**
   * The user if name and password match a local account, else null. Takes the same time for
   * unknown users, so the answer doesn't reveal which names exist.
   */
  async verifyLocal(rawName: string, password: string): Promise<UserRecord | null> {
    let name: string;
    try {
      name = normalizeUsername(rawName);
    } catch {
      name = '';
    }
    const user = name ? await this.repo.get(name) : null;
    if (!user?.passwordHash) {
      this.missingUserHash ??= hashForMissingUser();
      await verifyPassword(password, await this.missingUserHash);
      return null;
    }
    return (await verifyPassword(password, user.passwordHash)) ? user : null;
  }

  /**
   * Make sure the first admin account exists. Returns the generated password when one was
   * made (to be printed once), undefined otherwise.
   */
  async bootstrapAdmin(configuredPassword: string | undefined): Promise<string | undefined> {
    const first = this.adminUsers[0];
    if (!first) return undefined;
    const name = normalizeUsername(first);
    if (await this.repo.get(name)) return undefined;
    const password = configuredPassword ?? generatePassword();
    await this.createLocal(name, password, ['admin']);
    return configuredPassword ? undefined : password;
  }

  private build(name: string, source: UserSource, roles: Role[]): UserRecord {
    return { name, escapedName: escapeName(name), roles: this.withAdmin(name, roles), source, createdAt: Date.now() };
  }

  private withAdmin(name: string, roles: Role[]): Role[] {
    const set = new Set(roles);
    if (this.adminUsers.some((a) => a.trim().toLowerCase() === name)) set.add('admin');
    return [...set];
  }
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}
