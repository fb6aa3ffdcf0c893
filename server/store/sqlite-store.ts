import fs from 'node:fs';
import Database from 'better-sqlite3';
import { StoreInUse, StoreUnavailable } from '../errors.js';
import type { Logger } from '../log.js';
import { WRONG_TYPE, checkAtomicWrites, ttlOf, type KeyType } from './atomic.js';
import { LocalBus } from './local-bus.js';
import type { AtomicCondition, AtomicOperation, AtomicWrite, Store } from './store.js';

export interface SqliteStoreOptions {
  /** The database file; created (mode 0600) if missing. Its folder must exist. */
  file: string;
  log: Logger;
  /** How often expired entries are deleted even if nobody reads them (reads check expiry anyway). */
  sweepIntervalMs?: number;
}

/** Bump when the tables change, and add a migration from the version before. */
const SCHEMA_VERSION = 1;

/**
 * One row per key in `entries` (its type, a string's value, its expiry); the members of
 * hashes, sets and lists in their own tables, deleted with their key by the foreign key.
 * WITHOUT ROWID: every lookup is by key, so the key is the B-tree's own order.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  key TEXT PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('string', 'hash', 'set', 'list')),
  value TEXT,
  expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS hash_fields (
  key TEXT NOT NULL REFERENCES entries (key) ON DELETE CASCADE,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (key, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS set_members (
  key TEXT NOT NULL REFERENCES entries (key) ON DELETE CASCADE,
  member TEXT NOT NULL,
  PRIMARY KEY (key, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_items (
  key TEXT NOT NULL REFERENCES entries (key) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (key, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * SQLite result codes that mean "the database can't serve you right now" (disk full, I/O
 * error, file gone read-only, busy). Everything else SQLite throws (constraint, misuse) is a
 * bug and passes through as it is.
 */
const UNAVAILABLE_CODE = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|CORRUPT|NOTADB|PROTOCOL|NOMEM|PERM|AUTH)/;

type Container = 'hash' | 'set' | 'list';

interface EntryRow {
  type: Exclude<KeyType, 'none'>;
  value: string | null;
  expires_at: number | null;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toStoreError(err: unknown): Error {
  if (err instanceof StoreUnavailable) return err;
  if (err instanceof Database.SqliteError && UNAVAILABLE_CODE.test(err.code)) return new StoreUnavailable(`SQLite: ${err.message} (${err.code})`);
  return err instanceof Error ? err : new Error(String(err));
}

/** Who holds the file, for the message a second hub gets. The OS lock is the authority; this is only a hint. */
function ownerOf(file: string): string {
  try {
    const owner = JSON.parse(fs.readFileSync(`${file}.owner`, 'utf8')) as { pid?: unknown; startedAt?: unknown };
    const since = typeof owner.startedAt === 'string' ? `, running since ${owner.startedAt}` : '';
    return typeof owner.pid === 'number' ? ` (process ${owner.pid}${since})` : '';
  } catch {
    return '';
  }
}

/**
 * State in one SQLite file (better-sqlite3): survives restarts, crashes and SIGKILL, with no
 * server to install. For ONE hub process: the file is opened in exclusive locking mode, so
 * the operating system's lock (released when the process ends, however it ends) keeps any
 * second hub out; the constructor throws StoreInUse for it. Use RedisStore for several hub
 * processes.
 *
 * better-sqlite3 is synchronous: every method runs to completion in one transaction before
 * it returns, so no two calls interleave, and each is atomic on disk (WAL, synchronous=FULL:
 * a committed write survives a power cut too). Pub/sub stays in this process, which is all a
 * single-process store needs.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly file: string;
  private readonly bus: LocalBus;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly s: ReturnType<SqliteStore['prepare']>;
  private readonly inTransaction: <T>(fn: () => T) => T;
  private closed = false;

  /** Opens (creating if needed) and locks the file. Throws StoreInUse if another process holds it, StoreUnavailable if it can't be opened. */
  constructor(options: SqliteStoreOptions) {
    this.file = options.file;
    this.log = options.log;
    this.db = SqliteStore.open(options.file);
    try {
      this.s = this.prepare();
      const tx = this.db.transaction((fn: () => unknown) => fn());
      this.inTransaction = <T>(fn: () => T): T => tx(fn) as T;
      try {
        fs.writeFileSync(`${options.file}.owner`, JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() }) + '\n', { mode: 0o600 });
      } catch (err) {
        // Only the hint for a refused second hub is lost; the lock itself holds.
        this.log.warn({ err: messageOf(err) }, 'could not write the store owner file');
      }
    } catch (err) {
      this.db.close();
      throw toStoreError(err);
    }
    this.bus = new LocalBus(options.log);
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 30_000);
    this.sweepTimer.unref();
  }

  private static open(file: string): Database.Database {
    let db: Database.Database | undefined;
    try {
      // Created 0600 before SQLite sees it: SQLite gives its -wal file the same mode.
      fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
      fs.chmodSync(file, 0o600);
      // A short busy timeout: the only lock we can meet is another hub's, held for its whole life.
      db = new Database(file, { timeout: 200 });
      // Before the first read, so SQLite keeps the WAL index in this process and never lets
      // go of the file lock: a second process (or connection) gets SQLITE_BUSY.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version > SCHEMA_VERSION) {
        throw new StoreUnavailable(`${file} was written by a newer oerhub (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade oerhub or use another dataDir`);
      }
      // A write, so the exclusive lock is taken now rather than at the first request.
      db.exec(`BEGIN IMMEDIATE; ${SCHEMA} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
      return db;
    } catch (err) {
      db?.close();
      if (err instanceof Database.SqliteError && (err.code === 'SQLITE_BUSY' || err.code === 'SQLITE_LOCKED')) {
        throw new StoreInUse(
          `${file} is in use by another oerhub process${ownerOf(file)}. SQLite serves one hub process only: stop the other hub, give this one its own dataDir, or use store=redis for several hub processes`,
        );
      }
      if (err instanceof StoreUnavailable) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new StoreUnavailable(`cannot open ${file}: ${messageOf(err)}${code && !messageOf(err).includes(code) ? ` (${code})` : ''}`);
    }
  }

  private prepare() {
    const db = this.db;
    return {
      entry: db.prepare<[string], EntryRow>('SELECT type, value, expires_at FROM entries WHERE key = ?'),
      drop: db.prepare<[string]>('DELETE FROM entries WHERE key = ?'),
      putString: db.prepare<[string, string, number | null]>("INSERT INTO entries (key, type, value, expires_at) VALUES (?, 'string', ?, ?)"),
      updateString: db.prepare<[string, string]>('UPDATE entries SET value = ? WHERE key = ?'),
      create: db.prepare<[string, Container]>('INSERT INTO entries (key, type) VALUES (?, ?)'),
      setExpiry: db.prepare<[number, string]>('UPDATE entries SET expires_at = ? WHERE key = ?'),
      sweep: db.prepare<[number]>('DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?'),

      hashPut: db.prepare<[string, string, string]>(
        'INSERT INTO hash_fields (key, field, value) VALUES (?, ?, ?) ON CONFLICT (key, field) DO UPDATE SET value = excluded.value',
      ),
      hashGet: db.prepare<[string, string], { value: string }>('SELECT value FROM hash_fields WHERE key = ? AND field = ?'),
      hashAll: db.prepare<[string], { field: string; value: string }>('SELECT field, value FROM hash_fields WHERE key = ?'),
      hashDelete: db.prepare<[string, string]>('DELETE FROM hash_fields WHERE key = ? AND field = ?'),
      hashAny: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM hash_fields WHERE key = ? LIMIT 1'),

      setPut: db.prepare<[string, string]>('INSERT OR IGNORE INTO set_members (key, member) VALUES (?, ?)'),
      setDelete: db.prepare<[string, string]>('DELETE FROM set_members WHERE key = ? AND member = ?'),
      setAll: db.prepare<[string], { member: string }>('SELECT member FROM set_members WHERE key = ?'),
      setAny: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM set_members WHERE key = ? LIMIT 1'),

      listLast: db.prepare<[string], { seq: number | null; n: number }>('SELECT MAX(seq) AS seq, COUNT(*) AS n FROM list_items WHERE key = ?'),
      listPut: db.prepare<[string, number, string]>('INSERT INTO list_items (key, seq, value) VALUES (?, ?, ?)'),
      listFirst: db.prepare<[string], { seq: number; value: string }>('SELECT seq, value FROM list_items WHERE key = ? ORDER BY seq LIMIT 1'),
      listDeleteSeq: db.prepare<[string, number]>('DELETE FROM list_items WHERE key = ? AND seq = ?'),
      listDeleteValue: db.prepare<[string, string]>('DELETE FROM list_items WHERE key = ? AND value = ?'),
      listAll: db.prepare<[string], { value: string }>('SELECT value FROM list_items WHERE key = ? ORDER BY seq'),
      listHas: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM list_items WHERE key = ? AND value = ? LIMIT 1'),
      listAny: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM list_items WHERE key = ? LIMIT 1'),
    };
  }

  async get(key: string): Promise<string | null> {
    return this.run(() => this.readString(key));
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    return this.run(() => keys.map((key) => this.readString(key)));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.run(() => this.setNow(key, value, ttlMs));
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    return this.run(() => {
      if (this.live(key)) return false;
      this.setNow(key, value, ttlMs);
      return true;
    });
  }

  async take(key: string): Promise<string | null> {
    return this.run(() => {
      const value = this.readString(key);
      this.s.drop.run(key);
      return value;
    });
  }

  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    return this.run(() => {
      if (this.readString(key) !== expected) return false;
      this.s.drop.run(key);
      return true;
    });
  }

  async delete(...keys: string[]): Promise<void> {
    this.run(() => {
      for (const key of keys) this.s.drop.run(key);
    });
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const at = Date.now() + ttlOf(ttlMs);
    return this.run(() => {
      if (!this.live(key)) return false;
      this.s.setExpiry.run(at, key);
      return true;
    });
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    const window = ttlOf(ttlMs);
    return this.run(() => {
      const row = this.live(key);
      if (!row) {
        this.s.putString.run(key, '1', Date.now() + window);
        return 1;
      }
      if (row.type !== 'string') throw new Error(WRONG_TYPE);
      if (!/^-?\d+$/.test(row.value ?? '')) throw new Error('ERR value is not an integer or out of range');
      const count = Number(row.value) + 1;
      this.s.updateString.run(String(count), key);
      // A counter without a window (e.g. written by set()) would never reset; give it one, as RedisStore does.
      if (row.expires_at === null) this.s.setExpiry.run(Date.now() + window, key);
      return count;
    });
  }

  async hashSet(key: string, fields: Readonly<Record<string, string>>): Promise<void> {
    this.run(() => this.hashSetNow(key, fields));
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.run(() => (this.container(key, 'hash') ? (this.s.hashGet.get(key, field)?.value ?? null) : null));
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return this.run(() => {
      // Null prototype: a field named `__proto__` or `constructor` is then just a field.
      const result = Object.create(null) as Record<string, string>;
      if (this.container(key, 'hash')) for (const { field, value } of this.s.hashAll.all(key)) result[field] = value;
      return result;
    });
  }

  async hashDelete(key: string, ...fields: string[]): Promise<void> {
    this.run(() => this.hashDeleteNow(key, fields));
  }

  async setAdd(key: string, ...members: string[]): Promise<void> {
    this.run(() => this.setAddNow(key, members));
  }

  async setRemove(key: string, ...members: string[]): Promise<void> {
    this.run(() => this.setRemoveNow(key, members));
  }

  async setMembers(key: string): Promise<string[]> {
    return this.run(() => (this.container(key, 'set') ? this.s.setAll.all(key).map((r) => r.member) : []));
  }

  async listPush(key: string, ...values: string[]): Promise<number> {
    return this.run(() => this.listPushNow(key, values));
  }

  async listShift(key: string): Promise<string | null> {
    return this.run(() => {
      if (!this.container(key, 'list')) return null;
      const first = this.s.listFirst.get(key);
      if (!first) return null;
      this.s.listDeleteSeq.run(key, first.seq);
      this.dropIfEmpty(key, 'list');
      return first.value;
    });
  }

  async listRemove(key: string, value: string): Promise<number> {
    return this.run(() => this.listRemoveNow(key, value));
  }

  async listRange(key: string): Promise<string[]> {
    return this.run(() => (this.container(key, 'list') ? this.s.listAll.all(key).map((r) => r.value) : []));
  }

  async atomic(operation: AtomicOperation): Promise<boolean> {
    return this.run(() => {
      for (const condition of operation.if ?? []) if (!this.holds(condition)) return false;
      checkAtomicWrites(operation, (key) => this.live(key)?.type ?? 'none');
      for (const write of operation.then) this.apply(write);
      return true;
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    this.checkOpen();
    this.bus.publish(channel, message);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    this.checkOpen();
    return this.bus.subscribe(channel, onMessage);
  }

  async ping(): Promise<void> {
    this.run(() => this.s.entry.get(''));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.bus.close();
    try {
      this.db.close();
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'closing the SQLite store failed');
    }
    // Only once the lock is gone: a hub that finds the file then finds no stale owner either.
    fs.rmSync(`${this.file}.owner`, { force: true });
  }

  private checkOpen(): void {
    // Same failure a closed RedisStore gives, so shutdown-order bugs look the same in every store.
    if (this.closed || !this.db.open) throw new StoreUnavailable('store is closed');
  }

  /** Run fn as one transaction, mapping database trouble to StoreUnavailable. */
  private run<T>(fn: () => T): T {
    this.checkOpen();
    try {
      return this.inTransaction(fn);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  private setNow(key: string, value: string, ttlMs: number | undefined): void {
    const expiresAt = ttlMs === undefined ? null : Date.now() + ttlOf(ttlMs);
    // Delete first: a key that was a hash or list loses its members with it (the foreign key cascades).
    this.s.drop.run(key);
    this.s.putString.run(key, value, expiresAt);
  }

  /** The key's row if present and not expired; drops it on the spot when expired. */
  private live(key: string): EntryRow | undefined {
    const row = this.s.entry.get(key);
    if (!row) return undefined;
    if (row.expires_at !== null && row.expires_at <= Date.now()) {
      this.s.drop.run(key);
      return undefined;
    }
    return row;
  }

  private readString(key: string): string | null {
    const row = this.live(key);
    if (!row) return null;
    if (row.type !== 'string') throw new Error(WRONG_TYPE);
    return row.value;
  }

  /** Whether the key exists as this container type; throws WRONGTYPE for another type. */
  private container(key: string, type: Container): boolean {
    const row = this.live(key);
    if (!row) return false;
    if (row.type !== type) throw new Error(WRONG_TYPE);
    return true;
  }

  private ensure(key: string, type: Container): void {
    if (!this.container(key, type)) this.s.create.run(key, type);
  }

  /** Redis drops a hash, set or list once it is empty; so do we, so `expire` and `absent` agree. */
  private dropIfEmpty(key: string, type: Container): void {
    const any = type === 'hash' ? this.s.hashAny : type === 'set' ? this.s.setAny : this.s.listAny;
    if (!any.get(key)) this.s.drop.run(key);
  }

  private hashSetNow(key: string, fields: Readonly<Record<string, string>>): void {
    const pairs = Object.entries(fields);
    if (pairs.length === 0) {
      this.container(key, 'hash');
      return;
    }
    this.ensure(key, 'hash');
    for (const [field, value] of pairs) this.s.hashPut.run(key, field, value);
  }

  private hashDeleteNow(key: string, fields: readonly string[]): void {
    if (!this.container(key, 'hash')) return;
    for (const field of fields) this.s.hashDelete.run(key, field);
    this.dropIfEmpty(key, 'hash');
  }

  private setAddNow(key: string, members: readonly string[]): void {
    if (members.length === 0) {
      this.container(key, 'set');
      return;
    }
    this.ensure(key, 'set');
    for (const member of members) this.s.setPut.run(key, member);
  }

  private setRemoveNow(key: string, members: readonly string[]): void {
    if (!this.container(key, 'set')) return;
    for (const member of members) this.s.setDelete.run(key, member);
    this.dropIfEmpty(key, 'set');
  }

  private listPushNow(key: string, values: readonly string[]): number {
    const exists = this.container(key, 'list');
    if (values.length === 0) return exists ? this.s.listLast.get(key)!.n : 0;
    if (!exists) this.s.create.run(key, 'list');
    const last = this.s.listLast.get(key)!;
    let seq = last.seq ?? 0;
    for (const value of values) this.s.listPut.run(key, ++seq, value);
    return last.n + values.length;
  }

  private listRemoveNow(key: string, value: string): number {
    if (!this.container(key, 'list')) return 0;
    const removed = this.s.listDeleteValue.run(key, value).changes;
    this.dropIfEmpty(key, 'list');
    return removed;
  }

  private holds(condition: AtomicCondition): boolean {
    const row = this.live(condition.key);
    switch (condition.type) {
      case 'absent':
        return row === undefined;
      case 'equals':
        return row?.type === 'string' && row.value === condition.value;
      case 'hashEquals':
        if (row === undefined) return condition.value === null;
        return row.type === 'hash' && (this.s.hashGet.get(condition.key, condition.field)?.value ?? null) === condition.value;
      case 'listIncludes':
        return row?.type === 'list' && this.s.listHas.get(condition.key, condition.value) !== undefined;
      default:
        throw new Error(`unknown atomic condition ${String((condition as { type: unknown }).type)}`);
    }
  }

  private apply(write: AtomicWrite): void {
    switch (write.type) {
      case 'set':
        return this.setNow(write.key, write.value, write.ttlMs);
      case 'delete':
        this.s.drop.run(write.key);
        return;
      case 'hashSet':
        return this.hashSetNow(write.key, write.fields);
      case 'hashDelete':
        return this.hashDeleteNow(write.key, write.fields);
      case 'setAdd':
        return this.setAddNow(write.key, write.members);
      case 'setRemove':
        return this.setRemoveNow(write.key, write.members);
      case 'listPush':
        this.listPushNow(write.key, write.values);
        return;
      case 'listRemove':
        this.listRemoveNow(write.key, write.value);
        return;
    }
  }

  private sweep(): void {
    if (this.closed) return;
    try {
      this.s.sweep.run(Date.now());
    } catch (err) {
      // Reads check expiry themselves; a failed sweep only leaves rows for the next one.
      this.log.warn({ err: messageOf(err) }, 'could not delete expired store entries');
    }
  }
}
