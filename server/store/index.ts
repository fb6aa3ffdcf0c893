import path from 'node:path';
import type { HubConfig } from '../config/index.js';
import { HubError, StoreInUse } from '../errors.js';
import type { Logger } from '../log.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore, redactRedisUrl } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export type { Store, StoreKind, AtomicCondition, AtomicOperation, AtomicWrite } from './store.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export { RedisStore, redactRedisUrl, type RedisStoreOptions } from './redis-store.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

/** The SQLite store's file inside dataDir. */
export const SQLITE_FILE = 'oerhub.sqlite';

/**
 * The store named by `config.store`. Never throws for an unreachable Redis: calls fail with
 * StoreUnavailable until it is back. Throws for an SQLite file that can't be opened
 * (StoreUnavailable) or that another hub process holds (StoreInUse).
 */
export function createStore(config: HubConfig, log: Logger): Store {
  switch (config.store) {
    case 'sqlite':
      return new SqliteStore({ file: path.join(config.dataDir, SQLITE_FILE), log });
    case 'memory':
      log.warn('store=memory: every account, sign-in and server record is lost when the hub stops; use store=sqlite (the default) or redis outside of tests');
      return new MemoryStore({ log });
    case 'redis':
      return new RedisStore({ url: config.redisUrl, password: config.redisPassword, keyPrefix: config.redisKeyPrefix, log });
  }
}

/** What to tell the operator when the store can't be opened or reached at start: the cause and the fix, never a password. */
export function describeStoreFailure(config: HubConfig, err: unknown): string {
  const why = err instanceof HubError ? (err.detail ?? err.message) : String(err);
  if (err instanceof StoreInUse) return `The hub's database can't be used: ${why}.`;
  switch (config.store) {
    case 'sqlite':
      return `The hub's database in ${path.join(config.dataDir, SQLITE_FILE)} can't be opened (store=sqlite): ${why}. Check that dataDir is writable and has free space.`;
    case 'redis':
      return `The state store can't be reached (store=redis, redisUrl=${redactRedisUrl(config.redisUrl)}): ${redactRedisUrl(why)}. Start Redis and check redisUrl and redisPassword.`;
    case 'memory':
      return `The state store failed (store=memory): ${why}.`;
  }
}
