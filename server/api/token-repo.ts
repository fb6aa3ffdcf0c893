import type { Store } from '../store/store.js';
import { parseRecord } from '../store/repos.js';

/** Who a token acts for: a user account, or a service from the config (`apiServices`). */
export type TokenOwner = { readonly kind: 'user'; readonly name: string } | { readonly kind: 'service'; readonly name: string };

/** A token as stored: its SHA-256 only, never the token itself. */
export interface TokenRecord {
  id: string;
  /** Hex SHA-256 of the token. */
  hash: string;
  owner: TokenOwner;
  /** As asked for at creation (JupyterHub scope strings, `inherit` for all of the owner's). */
  scopes: string[];
  note: string;
  createdAt: number;
  /** ms since the epoch, or null: never expires. */
  expiresAt: number | null;
}

const ownerKey = (o: TokenOwner): string => `api-tokens:${o.kind}:${o.name}`;

/**
 * Tokens in the Store. Keys: `api-token:<hash>` (the record), `api-token-id:<id>` (its hash),
 * `api-tokens:<kind>:<name>` (the owner's token ids), `api-token-activity` (id -> last use, ms).
 * Record and indexes are written and removed together (atomic).
 */
export class TokenRepo {
  constructor(private readonly store: Store) {}

  async byHash(hash: string): Promise<TokenRecord | null> {
    return parseRecord<TokenRecord>(await this.store.get(`api-token:${hash}`));
  }

  async byId(id: string): Promise<TokenRecord | null> {
    const hash = await this.store.get(`api-token-id:${id}`);
    return hash === null ? null : this.byHash(hash);
  }

  /**
   * Store a new record with its indexes; false if its id or hash already exists (never, with
   * random ones). `now` is the caller's clock, the one `expiresAt` was set by.
   */
  async create(t: TokenRecord, now: number): Promise<boolean> {
    const ttlMs = t.expiresAt === null ? undefined : Math.max(1, t.expiresAt - now);
    return this.store.atomic({
      if: [
        { type: 'absent', key: `api-token:${t.hash}` },
        { type: 'absent', key: `api-token-id:${t.id}` },
      ],
      then: [
        // An expired token's record goes by itself; the id index is cleaned when next listed.
        { type: 'set', key: `api-token:${t.hash}`, value: JSON.stringify(t), ...(ttlMs === undefined ? {} : { ttlMs }) },
        { type: 'set', key: `api-token-id:${t.id}`, value: t.hash, ...(ttlMs === undefined ? {} : { ttlMs }) },
        { type: 'setAdd', key: ownerKey(t.owner), members: [t.id] },
      ],
    });
  }

  /** The owner's tokens that still exist (expired ones are dropped from the index here). */
  async list(owner: TokenOwner): Promise<TokenRecord[]> {
    const ids = await this.store.setMembers(ownerKey(owner));
    const out: TokenRecord[] = [];
    const gone: string[] = [];
    for (const id of ids) {
      const t = await this.byId(id);
      if (t) out.push(t);
      else gone.push(id);
    }
    if (gone.length) await this.store.setRemove(ownerKey(owner), ...gone);
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Remove a token and its indexes. Safe to repeat. */
  async delete(t: TokenRecord): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'delete', key: `api-token:${t.hash}` },
        { type: 'delete', key: `api-token-id:${t.id}` },
        { type: 'setRemove', key: ownerKey(t.owner), members: [t.id] },
        { type: 'hashDelete', key: 'api-token-activity', fields: [t.id] },
      ],
    });
  }

  async recordActivity(byId: ReadonlyMap<string, number>): Promise<void> {
    if (byId.size === 0) return;
    const fields: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [id, at] of byId) fields[id] = String(at);
    await this.store.hashSet('api-token-activity', fields);
  }

  async lastActivity(id: string): Promise<number | null> {
    const v = await this.store.hashGet('api-token-activity', id);
    return v === null ? null : Number(v);
  }
}
