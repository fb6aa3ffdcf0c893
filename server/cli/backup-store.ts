import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import Redis from 'ioredis';
import type { HubConfig } from '../config/index.js';
import { redactRedisUrl } from '../store/redis-store.js';
import { SQLITE_FILE } from '../store/index.js';
import { CliError } from './command.js';

/** File names of the store's copy inside a backup folder. */
export const SQLITE_COPY = 'oerhub.sqlite';
export const REDIS_COPY = 'redis-keys.ndjson';

const HUB_RUNNING = (file: string): string =>
  `${file} is held by a running hub (SQLite serves one process). Stop the hub first (e.g. \`systemctl stop oerhub\`): students' servers keep running and are adopted when it starts again, so a backup costs them nothing but a few seconds of hub pages answering 502.`;

function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && (err.code === 'SQLITE_BUSY' || err.code === 'SQLITE_LOCKED');
}

/**
 * Copies the SQLite store with SQLite's online backup API (better-sqlite3's backup()), which
 * copies pages consistently, WAL included. Our connection takes the exclusive lock the hub
 * uses, so a hub started meanwhile refuses to start instead of changing the file under us.
 */
export async function backupSqlite(config: HubConfig, destDir: string): Promise<{ file: string; bytes: number }> {
  const file = path.join(config.dataDir, SQLITE_FILE);
  if (!fs.existsSync(file)) throw new CliError(`there is no database at ${file} (dataDir=${config.dataDir}): nothing to back up. Is this the hub's config (--config / OERHUB_*)?`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 200 });
    db.pragma('locking_mode = EXCLUSIVE');
    // A write transaction takes the lock now (and replays a WAL a crash left behind).
    db.exec('BEGIN IMMEDIATE; COMMIT;');
    const dest = path.join(destDir, SQLITE_COPY);
    await db.backup(dest);
    fs.chmodSync(dest, 0o600);
    return { file, bytes: fs.statSync(dest).size };
  } catch (err) {
    if (isBusy(err)) throw new CliError(HUB_RUNNING(file));
    throw err;
  } finally {
    db?.close();
  }
}

/**
 * Puts a backed-up SQLite store in place: refuses while a hub holds the file, removes the old
 * file's WAL (it belongs to the old database; replayed onto the restored one it would corrupt
 * it), then renames a synced copy over the file, so a crash half-way leaves the old or the new.
 */
export function restoreSqlite(config: HubConfig, fromDir: string): { file: string } {
  const file = path.join(config.dataDir, SQLITE_FILE);
  const copy = path.join(fromDir, SQLITE_COPY);
  if (!fs.existsSync(copy)) throw new CliError(`${copy} is missing: not a backup of a store=sqlite hub`);
  if (fs.existsSync(file)) {
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { fileMustExist: true, timeout: 200 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN IMMEDIATE; COMMIT;');
    } catch (err) {
      if (isBusy(err)) throw new CliError(HUB_RUNNING(file));
      // An unreadable (corrupt) database is what a restore is for: replace it.
    } finally {
      db?.close();
    }
  }
  const temp = `${file}.restoring`;
  fs.copyFileSync(copy, temp);
  fs.chmodSync(temp, 0o600);
  const fd = fs.openSync(temp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  for (const leftover of [`${file}-wal`, `${file}-shm`, `${file}.owner`]) fs.rmSync(leftover, { force: true });
  fs.renameSync(temp, file);
  return { file };
}

function redisClient(config: HubConfig): Redis {
  const client = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    ...(config.redisPassword ? { password: config.redisPassword } : {}),
  });
  client.on('error', () => undefined);
  return client;
}

async function connected<T>(config: HubConfig, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = redisClient(config);
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new CliError(`Redis can't be reached (redisUrl=${redactRedisUrl(config.redisUrl)}): ${redactRedisUrl((err as Error).message)}. Start it and check redisUrl and redisPassword.`);
  }
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** Every key under the hub's prefix (SCAN, so Redis never blocks on a big KEYS). */
async function keysOf(client: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const pattern = prefix.replace(/[*?[\]\\]/g, '\\$&') + '*';
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return [...new Set(out)];
}

interface RedisEntry {
  /** The key without redisKeyPrefix, so a backup restores under another prefix too. */
  key: string;
  /** Remaining time to live in ms; -1 for none. */
  ttlMs: number;
  /** Redis' own DUMP serialisation, base64. */
  dump: string;
}

/**
 * Copies the hub's keys with Redis' own per-key serialisation (DUMP, and PTTL for the expiry),
 * one JSON line each. Per key rather than Redis' whole-server dump.rdb: several hubs (or other
 * programs) may share the Redis under other prefixes, the CLI needs no access to Redis' data
 * folder, and the hubs may keep running. Keys are read one by one, not at one instant: for an
 * exact point in time stop the hubs first.
 */
export async function backupRedis(config: HubConfig, destDir: string): Promise<{ keys: number }> {
  return connected(config, async (client) => {
    const dest = path.join(destDir, REDIS_COPY);
    const fd = fs.openSync(dest, 'w', 0o600);
    let count = 0;
    try {
      for (const full of await keysOf(client, config.redisKeyPrefix)) {
        const [dump, ttl] = await Promise.all([client.dumpBuffer(full), client.pttl(full)]);
        if (dump === null || ttl === -2) continue; // gone (expired) meanwhile
        const entry: RedisEntry = { key: full.slice(config.redisKeyPrefix.length), ttlMs: ttl, dump: dump.toString('base64') };
        fs.writeSync(fd, JSON.stringify(entry) + '\n');
        count++;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return { keys: count };
  });
}

/** Replaces every key under the hub's prefix with the backup's (RESTORE … REPLACE, expiries kept). Stop the hubs first. */
export async function restoreRedis(config: HubConfig, fromDir: string): Promise<{ keys: number; removed: number }> {
  const file = path.join(fromDir, REDIS_COPY);
  if (!fs.existsSync(file)) throw new CliError(`${file} is missing: not a backup of a store=redis hub`);
  const entries = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RedisEntry);
  return connected(config, async (client) => {
    const stale = await keysOf(client, config.redisKeyPrefix);
    for (let i = 0; i < stale.length; i += 500) await client.unlink(...stale.slice(i, i + 500));
    for (const e of entries) await client.restore(config.redisKeyPrefix + e.key, e.ttlMs > 0 ? e.ttlMs : 0, Buffer.from(e.dump, 'base64'), 'REPLACE');
    return { keys: entries.length, removed: stale.length };
  });
}
