import type { FoundServer, SpawnSpec, SpawnerState, Spawner, StartOptions, StartedServer } from '../spawner/index.js';
import type { ProjectMount } from '../spawner/spawner.js';

/**
 * Wraps the hub's spawner so that every persistent server starts with its user's project
 * folders (SpawnSpec.projects), read from the membership at the moment of the start.
 */
export class ProjectAwareSpawner implements Spawner {
  readonly kind: string;
  readonly onRecovered?: Spawner['onRecovered'];

  constructor(
    private readonly inner: Spawner,
    private readonly mountsOf: (user: string) => Promise<ProjectMount[]>,
  ) {
    this.kind = inner.kind;
    if (inner.onRecovered) this.onRecovered = (listener) => inner.onRecovered!(listener);
  }

  async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    const projects = spec.ephemeral ? [] : await this.mountsOf(spec.user);
    return this.inner.start({ ...spec, projects }, options);
  }

  stop(spec: SpawnSpec, state: SpawnerState): Promise<void> {
    return this.inner.stop(spec, state);
  }

  poll(state: SpawnerState): Promise<'running' | 'stopped'> {
    return this.inner.poll(state);
  }

  listRunning(): Promise<FoundServer[]> {
    return this.inner.listRunning();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
