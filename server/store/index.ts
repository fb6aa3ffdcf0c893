import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { Store } from './store.js';

export type { Store };
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export { RedisStore, type RedisStoreOptions } from './redis-store.js';

/** The store named by `config.store`. Never throws for an unreachable Redis: calls fail with StoreUnavailable until it is back. */
export function createStore(config: HubConfig, log: Logger): Store {
  switch (config.store) {
    case 'memory':
      return new MemoryStore({ log });
    case 'redis':
      return new RedisStore({ url: config.redisUrl, keyPrefix: config.redisKeyPrefix, log });
  }
}
