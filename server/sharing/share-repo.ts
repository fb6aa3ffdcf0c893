import type { Store } from '../store/store.js';
import { parseRecord } from '../store/repos.js';

/** Who may open a share: the owner's classmates (and instructors), the course's instructors, or anyone with the link. */
export type Audience = 'classmates' | 'instructors' | 'anyone';

/**
 * One snapshot of one notebook, viewable read-only by link. `kind` 'share' is made by its
 * owner and lives until revoked; 'copy' is an instructor's look at a student's copy (the
 * dashboard), for the course's instructors only, and expires.
 */
export interface ShareRecord {
  /** Random, unguessable (128 bits, base64url). */
  id: string;
  kind: 'share' | 'copy';
  /** Whose notebook it is (a username). */
  owner: string;
  /** Who made the snapshot: the owner, or the instructor who looked at a student's copy. */
  createdBy: string;
  course: string;
  /** Relative to the course folder in the owner's home. */
  path: string;
  audience: Audience;
  title: string;
  createdAt: number;
  revokedAt?: number;
  /** ms; only 'copy' views expire. */
  expiresAt?: number;
}

/**
 * Shares in the store. Owns its keys: `share:ID` (the record; a copy view's expires with it,
 * a revoked share's stays so its link can say so), `shares-of:NAME` (set of a user's share ids).
 */
export class ShareRepo {
  constructor(private readonly store: Store) {}

  async get(id: string): Promise<ShareRecord | null> {
    return parseRecord<ShareRecord>(await this.store.get(`share:${id}`));
  }

  /** Save a new record (and index it under its owner when it is a share). */
  async create(rec: ShareRecord, ttlMs?: number): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'set', key: `share:${rec.id}`, value: JSON.stringify(rec), ...(ttlMs ? { ttlMs } : {}) },
        ...(rec.kind === 'share' ? [{ type: 'setAdd' as const, key: `shares-of:${rec.owner}`, members: [rec.id] }] : []),
      ],
    });
  }

  async put(rec: ShareRecord): Promise<void> {
    await this.store.set(`share:${rec.id}`, JSON.stringify(rec));
  }

  /** A user's shares, newest first (revoked ones included). */
  async listOf(owner: string): Promise<ShareRecord[]> {
    const ids = await this.store.setMembers(`shares-of:${owner}`);
    if (!ids.length) return [];
    const texts = await this.store.getMany(ids.map((id) => `share:${id}`));
    return texts
      .map((t) => parseRecord<ShareRecord>(t))
      .filter((r): r is ShareRecord => r !== null)
      .sort((a, b) => b.createdAt - a.createdAt);
  }
}
