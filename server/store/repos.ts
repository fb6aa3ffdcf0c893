import type { AtomicWrite, Store } from './store.js';

/**
 * Typed records kept in the Store. Each repository owns its key names; nothing else
 * touches those keys. Records are JSON; a corrupt record reads as missing and is logged by
 * the caller, never crashes a request.
 */

export type Role = 'admin' | 'instructor' | 'student' | 'anonymous';
export type UserSource = 'local' | 'saml' | 'header' | 'anonymous';

export interface UserRecord {
  name: string;
  escapedName: string;
  roles: Role[];
  source: UserSource;
  displayName?: string;
  email?: string;
  /** Local accounts only: scrypt hash (see auth/passwords.ts). */
  passwordHash?: string;
  createdAt: number;
}

/** A server's lifecycle state as recorded; no record means stopped (see servers/server-manager.ts). */
export type ServerPhase = 'starting' | 'running' | 'stopping' | 'failed';

export interface ServerRecord {
  user: string;
  escapedName: string;
  phase: ServerPhase;
  spawner: string;
  /** Secret the proxy injects; never leaves the hub. */
  secret: string;
  ephemeral: boolean;
  startedAt: number;
  /** Set once running. */
  endpoint?: { host: string; port: number };
  spawnerState?: Record<string, string | number | boolean>;
  /** phase 'failed': why, in words the user is shown. */
  reason?: string;
}

/** A JSON record from the store; a missing or corrupt one reads as null. */
export function parseRecord<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

export class UserRepo {
  constructor(private readonly store: Store) {}

  async get(name: string): Promise<UserRecord | null> {
    return parseRecord<UserRecord>(await this.store.get(`user:${name}`));
  }

  async getByEscaped(escapedName: string): Promise<UserRecord | null> {
    const name = await this.store.get(`user-escaped:${escapedName}`);
    return name === null ? null : this.get(name);
  }

  /** Write the record and its indexes in one atomic step: a user is never listed without a record, or found by one name and not the other. */
  async put(user: UserRecord): Promise<void> {
    await this.store.atomic({ then: this.writes(user) });
  }

  /** Create only if no user has this name, with its indexes, in one atomic step. Returns false when it already existed. */
  async create(user: UserRecord): Promise<boolean> {
    return this.store.atomic({ if: [{ type: 'absent', key: `user:${user.name}` }], then: this.writes(user) });
  }

  private writes(user: UserRecord): AtomicWrite[] {
    return [
      { type: 'set', key: `user:${user.name}`, value: JSON.stringify(user) },
      { type: 'set', key: `user-escaped:${user.escapedName}`, value: user.name },
      { type: 'setAdd', key: 'users', members: [user.name] },
    ];
  }

  async list(): Promise<string[]> {
    return (await this.store.setMembers('users')).sort();
  }

  /** Remove the record and its indexes in one atomic step. Safe to repeat. */
  async delete(user: UserRecord): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'delete', key: `user:${user.name}` },
        { type: 'delete', key: `user-escaped:${user.escapedName}` },
        { type: 'setRemove', key: 'users', members: [user.name] },
      ],
    });
  }
}

export class ServerRepo {
  constructor(private readonly store: Store) {}

  async get(escapedName: string): Promise<ServerRecord | null> {
    return parseRecord<ServerRecord>(await this.store.get(`server:${escapedName}`));
  }

  /** Write the record and list it, in one atomic step: reconcile never misses a server that has a record. */
  async put(server: ServerRecord): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'set', key: `server:${server.escapedName}`, value: JSON.stringify(server) },
        { type: 'setAdd', key: 'servers', members: [server.escapedName] },
      ],
    });
  }

  /** Remove the record, its listing and its activity in one atomic step. Safe to repeat. */
  async delete(escapedName: string): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'delete', key: `server:${escapedName}` },
        { type: 'setRemove', key: 'servers', members: [escapedName] },
        { type: 'hashDelete', key: 'server-activity', fields: [escapedName] },
      ],
    });
  }

  async list(): Promise<ServerRecord[]> {
    const names = await this.store.setMembers('servers');
    const texts = await this.store.getMany(names.map((n) => `server:${n}`));
    return texts.map((t) => parseRecord<ServerRecord>(t)).filter((s): s is ServerRecord => s !== null);
  }

  /** One write for many servers: the proxy flushes activity in batches, never per request. */
  async recordActivity(lastActivityMs: ReadonlyMap<string, number>): Promise<void> {
    if (lastActivityMs.size === 0) return;
    const fields: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [name, at] of lastActivityMs) fields[name] = String(at);
    await this.store.hashSet('server-activity', fields);
  }

  async lastActivity(): Promise<Map<string, number>> {
    const all = await this.store.hashGetAll('server-activity');
    return new Map(Object.entries(all).map(([k, v]) => [k, Number(v)]));
  }
}
