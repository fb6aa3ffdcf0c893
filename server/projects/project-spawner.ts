import type { FoundServer, SpawnSpec, SpawnerState, Spawner, StartOptions, StartedServer } from '../spawner/index.js';
import type { ProjectMount } from '../spawner/spawner.js';

/**
 * Wraps the hub's spawner so that every persistent server starts with its user's project
 * folders (SpawnSpec.projects), read from the membership at the moment of the start.
 */
export class ProjectAwareSpawner implements Spawner {
  readonly kind: string;
  readonly onRecovered?: Spawner['onRecovered'];
  readonly logs?: Spawner['logs'];
  readonly removeHome?: Spawner['removeHome'];
  readonly addProjects?: Spawner['addProjects'];
  readonly setPriority?: Spawner['setPriority'];

  constructor(
    private readonly inner: Spawner,
    private readonly mountsOf: (user: string) => Promise<ProjectMount[]>,
  ) {
    this.kind = inner.kind;
    // The optional abilities pass through as they are: a wrapper must not hide them.
    if (inner.onRecovered) this.onRecovered = (listener) => inner.onRecovered!(listener);
    if (inner.logs) this.logs = (escapedName, options) => inner.logs!(escapedName, options);
    if (inner.removeHome) this.removeHome = (escapedName) => inner.removeHome!(escapedName);
    if (inner.addProjects) this.addProjects = (escapedName, projects) => inner.addProjects!(escapedName, projects);
    if (inner.setPriority) this.setPriority = (state, priority) => inner.setPriority!(state, priority);
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
