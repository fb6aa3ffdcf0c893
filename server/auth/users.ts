import type { Logger } from '../log.js';
import { Conflict } from '../errors.js';
import { escapeName, normalizeUsername } from '../names.js';
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

  /** Find or create a user signed in by an external authenticator; roles follow the latest sign-in. */
  async upsertExternal(rawName: string, source: UserSource, roles: Role[], extra: { displayName?: string; email?: string } = {}): Promise<UserRecord> {
    const name = normalizeUsername(rawName);
    const existing = await this.repo.get(name);
    const user: UserRecord = { ...(existing ?? this.build(name, source, roles)), ...extra, roles: this.withAdmin(name, roles) };
    await this.repo.put(user);
    return user;
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
