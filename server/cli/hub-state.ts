import pino from 'pino';
import type { HubConfig } from '../config/index.js';
import { StoreInUse } from '../errors.js';
import { createStore, describeStoreFailure, type Store } from '../store/index.js';
import { CliError } from './command.js';

/**
 * The hub's store, opened by a command. With store=sqlite the running hub holds the file with
 * an exclusive lock (one process only), so a command can't use it at the same time: it says so
 * and how to proceed, rather than waiting. With store=redis commands and hubs share it safely.
 */
export async function openHubStore(config: HubConfig, doing: string): Promise<Store> {
  // Commands print their own lines; the store's log is for the hub.
  const log = pino({ level: 'silent' });
  let store: Store;
  try {
    store = createStore(config, log);
  } catch (err) {
    if (err instanceof StoreInUse) {
      throw new CliError(
        `${describeStoreFailure(config, err)}\nThe hub is running on this SQLite file, and SQLite serves one process at a time, so \`oerhub ${doing}\` can't use it now. Either stop the hub first (e.g. \`systemctl stop oerhub\`; students' servers keep running and are adopted when it starts again), or do it through the running hub: the admin page /hub/admin or the REST API (README, "REST API").`,
      );
    }
    throw new CliError(describeStoreFailure(config, err));
  }
  try {
    await store.ping();
  } catch (err) {
    await store.close();
    throw new CliError(describeStoreFailure(config, err));
  }
  return store;
}
