import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { DockerSpawner, type DockerSpawnerOptions } from './docker-spawner.js';
import { LocalProcessSpawner, type LocalProcessSpawnerOptions } from './local-process-spawner.js';
import { hostFacts, planLocalIsolation } from './local-isolation.js';
import type { Spawner } from './spawner.js';

export type {
  Endpoint,
  FoundServer,
  ProgressEvent,
  SpawnSpec,
  Spawner,
  SpawnerState,
  ServerPriority,
  StartOptions,
  StartedServer,
} from './spawner.js';
export { LocalProcessSpawner, type LocalProcessSpawnerOptions } from './local-process-spawner.js';
export { DockerSpawner, type DockerSpawnerOptions } from './docker-spawner.js';
export { DockerUnavailable } from './docker-engine.js';
export { redactLogLines, MAX_LOG_LINES } from './spawner.js';
export { blockedForOthers, hostFacts, planLocalIsolation, type HostFacts, type LocalIsolationMode, type LocalIsolationPlan } from './local-isolation.js';

/** What the hub adds to a spawner's options: where servers load JupyterLab's build from (web/lab-static.ts). */
export interface SpawnerExtras {
  local?: Pick<LocalProcessSpawnerOptions, 'labStaticUrl'>;
  docker?: Pick<DockerSpawnerOptions, 'labStaticUrl'>;
}

/** The spawner the configuration asks for. The caller owns it and calls close() at shutdown. */
export function createSpawner(config: HubConfig, log: Logger, extras: SpawnerExtras = {}): Spawner {
  switch (config.spawner) {
    case 'local': {
      // createHub has refused to start if this plan has problems.
      const plan = planLocalIsolation(config, hostFacts());
      return new LocalProcessSpawner({
        venvDir: config.notebookVenv,
        dataDir: config.dataDir,
        app: config.notebookApp,
        startTimeoutS: config.startTimeoutS,
        isolation: plan.mode,
        onlyUsers: plan.onlyUsers,
        datasets: config.localDatasets,
        ...extras.local,
        log: log.child({ part: 'spawner' }),
      });
    }
    case 'docker':
      return new DockerSpawner({
        socketPath: config.dockerSocket,
        instance: config.dockerInstance,
        network: config.dockerNetwork,
        profiles: config.dockerProfiles,
        datasets: config.dockerDatasets,
        notebookHome: config.dockerNotebookHome,
        app: config.notebookApp,
        memLimitMb: config.dockerMemLimitMb,
        cpuLimit: config.dockerCpuLimit,
        pidsLimit: config.dockerPidsLimit,
        logMaxSizeMb: config.dockerLogMaxSizeMb,
        logMaxFiles: config.dockerLogMaxFiles,
        stopGraceS: config.dockerStopGraceS,
        startTimeoutS: config.startTimeoutS,
        ...extras.docker,
        log: log.child({ part: 'spawner' }),
      });
  }
}
