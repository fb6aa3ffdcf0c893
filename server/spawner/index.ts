import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { LocalProcessSpawner } from './local-process-spawner.js';
import type { Spawner } from './spawner.js';

export type {
  Endpoint,
  FoundServer,
  ProgressEvent,
  SpawnSpec,
  Spawner,
  SpawnerState,
  StartOptions,
  StartedServer,
} from './spawner.js';
export { LocalProcessSpawner, type LocalProcessSpawnerOptions } from './local-process-spawner.js';

/** The spawner the configuration asks for. The caller owns it and calls close() at shutdown. */
export function createSpawner(config: HubConfig, log: Logger): Spawner {
  switch (config.spawner) {
    case 'local':
      return new LocalProcessSpawner({
        venvDir: config.notebookVenv,
        dataDir: config.dataDir,
        app: config.notebookApp,
        startTimeoutS: config.startTimeoutS,
        log: log.child({ part: 'spawner' }),
      });
    case 'docker':
      throw new Error('The Docker spawner is not built yet (issue 3).');
  }
}
