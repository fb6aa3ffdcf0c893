import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { Role, UserRecord } from '../store/repos.js';
import { HubError, NotFound } from '../errors.js';
import type { UserService } from './users.js';

/** How an external identity signed in. Local passwords and anonymous visitors have no issuer. */
export type ExternalMethod = 'saml' | 'header';

/** Who someone is at an identity provider: never merged into another account by name alone. */
export interface ExternalIdentity {
  method: ExternalMethod;
  /** The IdP's entity ID (SAML), or the proxy's header name (trusted header). */
  issuer: string;
  /** The person's stable identifier at that issuer (persistent NameID, or the username attribute). */
  subject: string;
}

/** An external sign-in whose name belongs to another account here; an admin may link them. */
export interface PendingConflict extends ExternalIdentity {
  /** The account of that name. */
  name: string;
  at: number;
}

/**
 * An external identity asked for a name that an unrelated account (a local one, say) already has.
 * Shown as a page (409); the account is untouched.
 */
export class IdentityConflict extends HubError {
  constructor(
    readonly account: string,
    readonly identity: ExternalIdentity,
  ) {
    super(
      'IDENTITY_CONFLICT',
      409,
      `An account named "${account}" already exists here, and it is not linked to the sign-in you used. Nothing was changed. Ask an administrator to link the two if they are both yours.`,
      `${identity.method} identity ${identity.subject} of ${identity.issuer} asked for the name of an account it is not linked to`,
    );
  }
}

const ROLES: readonly Role[] = ['admin', 'instructor', 'student'];
const CONFLICTS = 'identity-conflicts';

function identityKey(i: ExternalIdentity): string {
  return `identity:${i.method}:${createHash('sha256').update(`${i.issuer}\n${i.subject}`, 'utf8').digest('hex')}`;
}

function parseRoles(text: string | null | undefined): Role[] | null {
  if (!text) return null;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((r): r is Role => ROLES.includes(r as Role)) : null;
  } catch {
    return null;
  }
}

/** Effective roles: what the hub granted plus what the IdP says; an instructor is no student. */
export function mergeRoles(granted: readonly Role[], fromIdp: readonly Role[]): Role[] {
  const set = new Set<Role>([...granted, ...fromIdp]);
  if (set.has('instructor')) set.delete('student');
  if (set.size === 0) set.add('student');
  return ROLES.filter((r) => set.has(r));
}

/**
 * External identities and the two kinds of roles. An identity is keyed by (method, issuer,
 * subject) and points at exactly one account; the first sign-in creates the account when its
 * name is free, and is refused with IdentityConflict when it is not (until an admin links them).
 * Roles are kept in two lists per user, `granted` (by the hub: admins, the API, local account
 * creation) and `idp` (from the latest external sign-in), so a sign-in never removes a grant.
 */
export class IdentityService {
  constructor(
    private readonly store: Store,
    private readonly users: UserService,
    private readonly log: Logger,
  ) {}

  /**
   * Sign in an external identity: the account it is linked to (profile and IdP roles refreshed),
   * or a new account named `rawName`. Throws IdentityConflict when that name is taken by an
   * account not linked to this identity, InvalidUsername for an unusable name. Safe to repeat.
   */
  async signIn(identity: ExternalIdentity, rawName: string, idpRoles: Role[], profile: { displayName?: string; email?: string } = {}): Promise<UserRecord> {
    const key = identityKey(identity);
    let name = await this.store.get(key);
    let user = name === null ? null : await this.users.get(name);
    if (!user) {
      const created = await this.users.createExternal(rawName, identity.method, mergeRoles([], idpRoles), profile);
      name = created?.name ?? this.users.normalize(rawName);
      if (created) {
        user = created;
      } else {
        const existing = await this.users.get(name);
        // An account made by this method before identities were recorded (or by a sign-in that
        // raced us) and linked to nothing else is this identity's own.
        const linked = await this.store.setMembers(`identities-of:${name}`);
        if (existing && existing.source === identity.method && linked.length === 0) {
          user = existing;
          this.log.info({ part: 'identities', user: name, method: identity.method, issuer: identity.issuer }, 'linked an existing account made by the same sign-in method');
        } else {
          await this.recordConflict(identity, name);
          throw new IdentityConflict(name, identity);
        }
      }
      await this.link(identity, user.name);
    }
    await this.store.hashSet(`roles:${user.name}`, { idp: JSON.stringify(idpRoles) });
    return this.users.update(user.name, { roles: mergeRoles(await this.grantedRoles(user), idpRoles), ...profile });
  }

  /** Link an external identity to an existing account (an admin's decision). Throws NotFound. Idempotent. */
  async linkAccount(identity: ExternalIdentity, name: string): Promise<void> {
    const user = await this.users.get(name);
    if (!user) throw new NotFound(`There is no user named ${name}.`);
    const current = await this.store.get(identityKey(identity));
    if (current !== null && current !== name) throw new HubError('IDENTITY_LINKED', 409, `That identity is already linked to ${current}.`);
    await this.link(identity, name);
    await this.store.hashDelete(CONFLICTS, identityKey(identity));
    this.log.info({ part: 'identities', user: name, method: identity.method, issuer: identity.issuer, subject: identity.subject }, 'identity linked to an account by an admin');
  }

  /** External sign-ins refused because their name was taken, oldest first (for admins). */
  async conflicts(): Promise<PendingConflict[]> {
    const all = await this.store.hashGetAll(CONFLICTS);
    const out: PendingConflict[] = [];
    for (const v of Object.values(all)) {
      try {
        out.push(JSON.parse(v) as PendingConflict);
      } catch {
        // A corrupt entry is skipped; the next refused sign-in writes it again.
      }
    }
    return out.sort((a, b) => a.at - b.at);
  }

  /** Set the roles the hub grants (admins). The effective roles add the IdP's. Throws NotFound. */
  async grant(name: string, roles: Role[]): Promise<UserRecord> {
    const user = await this.users.get(name);
    if (!user) throw new NotFound(`There is no user named ${name}.`);
    const granted = ROLES.filter((r) => roles.includes(r));
    const stored = await this.store.hashGetAll(`roles:${name}`);
    await this.store.hashSet(`roles:${name}`, { granted: JSON.stringify(granted) });
    const updated = await this.users.update(name, { roles: mergeRoles(granted, parseRoles(stored.idp) ?? []) });
    this.log.info({ part: 'identities', user: name, granted, roles: updated.roles }, 'roles granted');
    return updated;
  }

  /** The roles the hub granted to this account (not the IdP's); [] for an unknown name. */
  async granted(name: string): Promise<Role[]> {
    const user = await this.users.get(name);
    return user ? this.grantedRoles(user) : [];
  }

  /** A user's two kinds of roles, as kept: what the hub granted and what the IdP said at the latest sign-in. */
  async rolesOf(user: UserRecord): Promise<{ granted: Role[]; idp: Role[] }> {
    const stored = await this.store.hashGetAll(`roles:${user.name}`);
    return { granted: await this.grantedRoles(user), idp: parseRoles(stored.idp) ?? [] };
  }

  /**
   * Forget a user's linked identities and roles (the account is being deleted), so the same
   * person signing in again gets a fresh account, not a link to a name that is gone. Safe to repeat.
   */
  async forget(name: string): Promise<void> {
    const keys = await this.store.setMembers(`identities-of:${name}`);
    await this.store.atomic({
      then: [...keys.map((key) => ({ type: 'delete' as const, key })), { type: 'delete', key: `identities-of:${name}` }, { type: 'delete', key: `roles:${name}` }],
    });
  }

  /** The roles the hub granted: stored ones, or for an account that predates them, its local roles. */
  private async grantedRoles(user: UserRecord): Promise<Role[]> {
    const stored = parseRoles(await this.store.hashGet(`roles:${user.name}`, 'granted'));
    if (stored) return stored;
    // A local account's roles were all given by the hub (createLocal, bootstrapAdmin).
    return user.source === 'local' ? user.roles.filter((r) => r !== 'anonymous') : [];
  }

  private async link(identity: ExternalIdentity, name: string): Promise<void> {
    const key = identityKey(identity);
    await this.store.set(key, name);
    await this.store.setAdd(`identities-of:${name}`, key);
  }

  private async recordConflict(identity: ExternalIdentity, name: string): Promise<void> {
    const entry: PendingConflict = { ...identity, name, at: Date.now() };
    await this.store.hashSet(CONFLICTS, { [identityKey(identity)]: JSON.stringify(entry) });
    this.log.warn({ part: 'identities', user: name, method: identity.method, issuer: identity.issuer, subject: identity.subject }, 'external sign-in refused: the name belongs to an account not linked to this identity');
  }
}
