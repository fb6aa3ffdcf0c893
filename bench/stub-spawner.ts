/**
 * A spawner for the benchmark's fast mode: each "server" is bench/stub-upstream.ts in a child
 * process of its own (so its CPU is counted apart from the hub's), answering under the spec's
 * base URL with the spec's secret. The hub routes, authenticates and injects the secret exactly
 * as for a Jupyter server; only what sits behind it is cheaper.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SpawnFailed } from '../server/errors.js';
import { checkSpec, type FoundServer, type SpawnSpec, type Spawner, type SpawnerState, type StartOptions, type StartedServer } from '../server/spawner/spawner.js';

export class StubSpawner implements Spawner {
  readonly kind = 'bench-stub';
  private readonly children = new Map<string, ChildProcess>();
  private readonly ports = new Map<number, ChildProcess>();

  async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    checkSpec(spec, 'start');
    options.onProgress({ progress: 50, message: 'Starting the benchmark stand-in' });
    const child = fork(path.join(__dirname, 'stub-upstream.ts'), [spec.baseUrl, spec.secret], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SpawnFailed('The stand-in did not start.', 'no port within 20 s')), 20_000);
      child.once('message', (m: { port?: number }) => {
        clearTimeout(timer);
        if (typeof m.port === 'number') resolve(m.port);
        else reject(new SpawnFailed('The stand-in did not start.', 'bad message'));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new SpawnFailed('The stand-in did not start.', `exited with ${code}`));
      });
    });
    const id = randomUUID();
    this.children.set(id, child);
    this.ports.set(port, child);
    child.once('exit', () => this.ports.delete(port));
    return { endpoint: { host: '127.0.0.1', port }, state: { id, port, pid: child.pid ?? 0 } };
  }

  async stop(_spec: SpawnSpec, state: SpawnerState): Promise<void> {
    const id = String(state.id);
    const child = this.children.get(id);
    this.children.delete(id);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  async poll(state: SpawnerState): Promise<'running' | 'stopped'> {
    const child = this.children.get(String(state.id));
    return child && child.exitCode === null && child.signalCode === null ? 'running' : 'stopped';
  }

  async listRunning(): Promise<FoundServer[]> {
    return [];
  }

  /** The pid of the stand-in listening on this port (for its CPU time), or 0. */
  pidOn(port: number): number {
    return this.ports.get(port)?.pid ?? 0;
  }

  async close(): Promise<void> {
    for (const child of this.children.values()) child.kill('SIGKILL');
    this.children.clear();
  }
}
