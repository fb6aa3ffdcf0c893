import { createHash, randomBytes } from 'node:crypto';
import { BadRequest, Conflict, Forbidden, NotFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { ApiService } from '../config/api-schema.js';
import { expandScopes, formatGrants, intersect, parseScope, roleScopes, type Grant } from './scopes.js';
import type { TokenOwner, TokenRecord, TokenRepo } from './token-repo.js';

/** A request's verified token: who it acts for and what it may do now. */
export interface TokenAuth {
  readonly tokenId: string;
  readonly owner: TokenOwner;
  /** The owning account (user tokens only), as it is now. */
  readonly user: UserRecord | null;
  /** The token's scopes cut to its owner's current ones. */
  readonly grants: readonly Grant[];
  /** ms since the epoch, or null: never expires. */
  readonly expiresAt: number | null;
}

export interface IssueOptions {
  /** JupyterHub scope strings; default `['inherit']`: whatever the owner may do, at each use. */
  scopes?: readonly string[];
  note?: string;
  /** Seconds until it expires; undefined or 0: never (unless apiTokenMaxAgeS is set). */
  expiresInS?: number;
}

export interface TokenServiceOptions {
  repo: TokenRepo;
  users: { get(name: string): Promise<UserRecord | null> };
  /** Whether an admin has disabled the account: its tokens are dead while it is. */
  isDisabled: (name: string) => Promise<boolean>;
  services: readonly ApiService[];
  log: Logger;
  /** How long a verified token is trusted without reading the store (proxy hot path). */
  cacheMs: number;
  maxAgeS: number;
  /** Told after tokens were revoked here (the hub closes their WebSockets, in every process). */
  onRevoked?: (ids: readonly string[]) => Promise<void>;
  now?: () => number;
}

/** JupyterHub's token model (GET /hub/api/users/NAME/tokens); never the token itself. */
export interface TokenModel {
  kind: 'api_token';
  id: string;
  user: string | null;
  service: string | null;
  roles: string[];
  scopes: string[];
  note: string;
  created: string;
  expires_at: string | null;
  last_activity: string | null;
  session_id: null;
}

const PREFIX = 'oh_';
// Writes of a token's last use are at most this often: the proxy may see it on every request.
const ACTIVITY_WRITE_MS = 60_000;
const MAX_CACHE = 5000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Read `Authorization: token X` or `Bearer X`; undefined for anything else. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

/**
 * API tokens: made random (256 bits), stored as their SHA-256 only (a high-entropy secret needs
 * no slow hash, as in JupyterHub), with owner, scopes, note, expiry. A token's power is read at
 * every use as its scopes cut to its owner's current ones.
 */
export class TokenService {
  // By hash; `id` is kept for refusals too, so a re-enabled owner's token isn't refused from the cache.
  private readonly cache = new Map<string, { auth: TokenAuth | null; id: string | null; at: number; expiresAt: number | null }>();
  private readonly activityWritten = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: TokenServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The scopes an owner has now; null when the owner is gone or disabled (its tokens are then dead). */
  async ownerGrants(owner: TokenOwner): Promise<{ grants: Grant[]; user: UserRecord | null } | null> {
    if (owner.kind === 'service') {
      const service = this.o.services.find((s) => s.name === owner.name);
      return service ? { grants: expandScopes(service.scopes, owner.name), user: null } : null;
    }
    const [user, disabled] = await Promise.all([this.o.users.get(owner.name), this.o.isDisabled(owner.name)]);
    return user && !disabled ? { grants: expandScopes(roleScopes(user.roles), user.name), user } : null;
  }

  /** Whether a service of this name is configured. */
  hasService(name: string): boolean {
    return this.o.services.some((s) => s.name === name);
  }

  serviceNames(): string[] {
    return this.o.services.map((s) => s.name);
  }

  /**
   * Make a token. Returns it (shown once) with its record. Throws BadRequest for an unknown
   * scope or bad expiry, Forbidden when it asks for more than the owner has, NotFound for a
   * gone owner.
   */
  async issue(owner: TokenOwner, opts: IssueOptions = {}): Promise<{ token: string; record: TokenRecord }> {
    const scopes = [...new Set(opts.scopes?.length ? opts.scopes : ['inherit'])];
    const current = await this.ownerGrants(owner);
    if (!current && owner.kind === 'user' && (await this.o.isDisabled(owner.name))) throw new Conflict(`The account ${owner.name} is disabled: it can't have new tokens.`);
    if (!current) throw new NotFound(`There is no ${owner.kind} named ${owner.name}.`);
    const unknown = scopes.filter((s) => s !== 'inherit' && s !== 'self' && parseScope(s) === null);
    if (unknown.length) throw new BadRequest(`Unknown scopes: ${unknown.join(', ')}.`);
    const asked = scopes.includes('inherit') ? [] : expandScopes(scopes, owner.name);
    const beyond = asked.filter((g) => !covers(current.grants, g));
    if (beyond.length) throw new Forbidden(`Not assigning requested scopes ${formatGrants(beyond).join(', ')}: the owner does not have them.`);
    const expiresInS = opts.expiresInS ?? 0;
    if (!Number.isFinite(expiresInS) || expiresInS < 0) throw new BadRequest('expires_in must be a number of seconds, 0 or more.');
    const max = this.o.maxAgeS;
    if (max > 0 && (expiresInS === 0 || expiresInS > max)) throw new BadRequest(`Tokens on this hub expire within ${max} seconds: set expires_in.`);
    const note = (opts.note ?? '').slice(0, 500);
    for (;;) {
      const token = PREFIX + randomBytes(32).toString('base64url');
      const record: TokenRecord = {
        id: 'a' + randomBytes(8).toString('hex'),
        hash: hashToken(token),
        owner,
        scopes,
        note,
        createdAt: this.now(),
        expiresAt: expiresInS > 0 ? this.now() + expiresInS * 1000 : null,
      };
      if (await this.o.repo.create(record, this.now())) {
        this.o.log.info({ tokenId: record.id, owner: `${owner.kind}:${owner.name}`, scopes, expiresAt: record.expiresAt }, 'API token made');
        return { token, record };
      }
    }
  }

  /** Fast path for the proxy: a cached answer, or undefined when the store must be asked. */
  cached(token: string): TokenAuth | null | undefined {
    const hit = this.cache.get(hashToken(token));
    if (!hit) return undefined;
    if (this.now() - hit.at > this.o.cacheMs || (hit.expiresAt !== null && hit.expiresAt <= this.now())) return undefined;
    return hit.auth;
  }

  /**
   * Who a token acts for, or null when it is unknown, revoked, expired or its owner is gone.
   * Rejects with StoreUnavailable. `fresh` skips the cache (the API does; the proxy doesn't).
   */
  async authenticate(token: string, { fresh = false }: { fresh?: boolean } = {}): Promise<TokenAuth | null> {
    const hash = hashToken(token);
    if (!fresh) {
      const hit = this.cached(token);
      if (hit !== undefined) return hit;
    }
    const record = await this.o.repo.byHash(hash);
    let auth: TokenAuth | null = null;
    if (record && (record.expiresAt === null || record.expiresAt > this.now())) {
      const current = await this.ownerGrants(record.owner);
      if (current) {
        const own = record.scopes.includes('inherit') ? current.grants : expandScopes(record.scopes, record.owner.name);
        auth = { tokenId: record.id, owner: record.owner, user: current.user, grants: intersect(own, current.grants), expiresAt: record.expiresAt };
        this.noteActivity(record.id);
      }
    }
    if (this.cache.size >= MAX_CACHE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(hash, { auth, id: record?.id ?? null, at: this.now(), expiresAt: record?.expiresAt ?? null });
    return auth;
  }

  /** The owner's tokens that have not expired (by this service's clock; the store drops them later). */
  async list(owner: TokenOwner): Promise<TokenRecord[]> {
    const now = this.now();
    return (await this.o.repo.list(owner)).filter((t) => t.expiresAt === null || t.expiresAt > now);
  }

  /** One of the owner's tokens, or NotFound (also for someone else's). */
  async get(owner: TokenOwner, id: string): Promise<TokenRecord> {
    const t = await this.o.repo.byId(id);
    if (!t || t.owner.kind !== owner.kind || t.owner.name !== owner.name) throw new NotFound('There is no such token.');
    return t;
  }

  /** Revoke one of the owner's tokens; this process forgets it at once. Throws NotFound. */
  async revoke(owner: TokenOwner, id: string): Promise<void> {
    const t = await this.get(owner, id);
    await this.o.repo.delete(t);
    this.cache.delete(t.hash);
    this.o.log.info({ tokenId: id, owner: `${owner.kind}:${owner.name}` }, 'API token revoked');
    await this.o.onRevoked?.([id]);
  }

  /** Revoke every token of an owner (the account was deleted). */
  async revokeAll(owner: TokenOwner): Promise<void> {
    const ids: string[] = [];
    for (const t of await this.o.repo.list(owner)) {
      await this.o.repo.delete(t);
      this.cache.delete(t.hash);
      ids.push(t.id);
    }
    if (ids.length) await this.o.onRevoked?.(ids);
  }

  /**
   * The account was disabled or enabled again: its tokens are kept, but every process drops its
   * cached verdict on them (and closes their WebSockets), so the change holds at once.
   */
  async recheckAll(owner: TokenOwner): Promise<number> {
    const records = await this.o.repo.list(owner);
    for (const t of records) this.cache.delete(t.hash);
    if (records.length) await this.o.onRevoked?.(records.map((t) => t.id));
    return records.length;
  }

  /** Drop a token revoked by another hub process from this one's cache. Safe to repeat. */
  forget(id: string): void {
    for (const [hash, hit] of this.cache) if (hit.id === id) this.cache.delete(hash);
  }

  async model(t: TokenRecord): Promise<TokenModel> {
    const last = await this.o.repo.lastActivity(t.id);
    return {
      kind: 'api_token',
      id: t.id,
      user: t.owner.kind === 'user' ? t.owner.name : null,
      service: t.owner.kind === 'service' ? t.owner.name : null,
      roles: [],
      scopes: t.scopes,
      note: t.note,
      created: new Date(t.createdAt).toISOString(),
      expires_at: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
      last_activity: last === null ? null : new Date(last).toISOString(),
      session_id: null,
    };
  }

  private noteActivity(id: string): void {
    const at = this.now();
    if (at - (this.activityWritten.get(id) ?? 0) < ACTIVITY_WRITE_MS) return;
    this.activityWritten.set(id, at);
    if (this.activityWritten.size > MAX_CACHE) this.activityWritten.delete(this.activityWritten.keys().next().value as string);
    this.o.repo.recordActivity(new Map([[id, at]])).catch((err: Error) => this.o.log.warn({ err: err.message }, 'could not record a token\'s last use'));
  }
}

/** Whether the owner's grants fully cover `g` (same scope, and no narrower filter than g's). */
function covers(owner: readonly Grant[], g: Grant): boolean {
  return owner.some((o) => o.scope === g.scope && (o.user === undefined || o.user === g.user));
}
