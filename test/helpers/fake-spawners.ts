import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SpawnFailed, StoreUnavailable } from '../../server/errors.js';
import { checkSpec, type FoundServer, type SpawnSpec, type Spawner, type SpawnerState, type StartOptions, type StartedServer } from '../../server/spawner/spawner.js';
import { MemoryStore } from '../../server/store/index.js';
import type { AtomicOperation } from '../../server/store/store.js';

/*
 * Small spawners with one behaviour each, as in JupyterHub's tests (MockSpawner, SlowSpawner,
 * NeverSpawner, BadSpawner). Each "server" is a real HTTP server on 127.0.0.1 that answers
 * `<baseUrl>api/status` with the spec's secret, so polling, stopping and proxying act on
 * something real; no Jupyter is needed to drive the lifecycle races.
 */

interface Running {
  id: string;
  escapedName: string;
  server: http.Server;
  port: number;
}

/** A promise with its resolve outside, to hold a start or stop at a point a test chooses. */
export class Gate {
  readonly opened: Promise<void>;
  open!: () => void;
  constructor() {
    this.opened = new Promise<void>((resolve) => (this.open = resolve));
  }
}

/** Starts at once. Counts starts and stops so a test can tell "adopted" from "restarted". */
export class FakeSpawner implements Spawner {
  readonly kind: string = 'fake';
  readonly running = new Map<string, Running>();
  starts = 0;
  stops = 0;
  /** Specs stop() was called with (the orphan test checks their secret is empty). */
  readonly stopSpecs: SpawnSpec[] = [];

  async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    checkSpec(spec, 'start');
    this.starts++;
    options.onProgress({ progress: 10, message: 'Starting a fake server' });
    await this.beforeReady(spec, options.signal);
    options.signal.throwIfAborted();
    const server = http.createServer((req, res) => {
      const ok = req.url === `${spec.baseUrl}api/status` && req.headers.authorization === `token ${spec.secret}`;
      res.writeHead(ok ? 200 : 403, { 'content-type': 'application/json' }).end(JSON.stringify({ fake: true }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const id = randomUUID();
    this.running.set(id, { id, escapedName: spec.escapedName, server, port });
    return { endpoint: { host: '127.0.0.1', port }, state: { id, port } };
  }

  async stop(spec: SpawnSpec, state: SpawnerState): Promise<void> {
    checkSpec(spec, 'stop');
    this.stops++;
    this.stopSpecs.push(spec);
    await this.beforeStop(spec);
    const r = typeof state.id === 'string' ? this.running.get(state.id) : undefined;
    if (r) await this.kill(r);
  }

  async poll(state: SpawnerState): Promise<'running' | 'stopped'> {
    return typeof state.id === 'string' && this.running.has(state.id) ? 'running' : 'stopped';
  }

  /** While set, listRunning (and so a hub's reconcile) waits for it: a slow engine after a restart. */
  listing: Gate | undefined;

  async listRunning(): Promise<FoundServer[]> {
    await this.listing?.opened;
    return [...this.running.values()].map((r) => ({ escapedName: r.escapedName, state: { id: r.id, port: r.port }, endpoint: { host: '127.0.0.1', port: r.port } }));
  }

  /** The user's servers that run now (normally zero or one). */
  serversOf(escapedName: string): Running[] {
    return [...this.running.values()].filter((r) => r.escapedName === escapedName);
  }

  /** The server dies by itself (a crash, an OOM kill): the hub is not told. */
  async crash(escapedName: string): Promise<void> {
    for (const r of this.serversOf(escapedName)) await this.kill(r);
  }

  /** As the Spawner contract says: releases nothing of the servers, which outlive a hub. */
  async close(): Promise<void> {}

  /** Kill every server: the test's cleanup (the fake servers belong to the test, not to a hub). */
  async destroy(): Promise<void> {
    for (const r of [...this.running.values()]) await this.kill(r);
  }

  /** Hook: what happens between "starting" and "ready". */
  protected async beforeReady(_spec: SpawnSpec, _signal: AbortSignal): Promise<void> {}

  /** Hook: what happens before a stop takes effect. */
  protected async beforeStop(_spec: SpawnSpec): Promise<void> {}

  private async kill(r: Running): Promise<void> {
    this.running.delete(r.id);
    r.server.closeAllConnections();
    await new Promise<void>((resolve) => r.server.close(() => resolve()));
  }
}

/** Waits at "starting" until the test opens `ready` (or the start is aborted). */
export class SlowSpawner extends FakeSpawner {
  override readonly kind = 'slow';
  ready = new Gate();
  /** Opens once a start has reached the slow part. */
  reached = new Gate();

  protected override async beforeReady(_spec: SpawnSpec, signal: AbortSignal): Promise<void> {
    this.reached.open();
    await abortable(this.ready.opened, signal);
  }
}

/** Never gets ready: every start ends only by its timeout or an abort (JupyterHub's NeverSpawner). */
export class NeverSpawner extends FakeSpawner {
  override readonly kind = 'never';
  protected override async beforeReady(_spec: SpawnSpec, signal: AbortSignal): Promise<void> {
    await abortable(new Promise<never>(() => undefined), signal);
  }
}

/** Fails its first `failures` starts with a reason a student can read (JupyterHub's BadSpawner). */
export class FailingSpawner extends FakeSpawner {
  override readonly kind = 'failing';
  constructor(private failures = Infinity) {
    super();
  }
  protected override async beforeReady(): Promise<void> {
    if (this.failures-- > 0) throw new SpawnFailed('The notebook image is broken. Please tell your teacher.', 'fake failure');
  }
}

/** Stops slowly: a stop holds at `beforeStop` until the test opens `stopped`. */
export class SlowStopSpawner extends FakeSpawner {
  override readonly kind = 'slow-stop';
  stopped = new Gate();
  /** Opens once a stop has begun. */
  stopping = new Gate();
  protected override async beforeStop(): Promise<void> {
    this.stopping.open();
    await this.stopped.opened;
  }
}

/**
 * A memory store whose writes of matching keys fail (StoreUnavailable) a given number of
 * times: a Redis blip between two writes can't be timed for real, so this one failure is faked.
 */
export class FlakyStore extends MemoryStore {
  private failing: { match: (key: string, value: string) => boolean; times: number } | undefined;

  /** The next `times` writes for which `match` is true fail. */
  failWrites(match: (key: string, value: string) => boolean, times = 1): void {
    this.failing = { match, times };
  }

  override async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.maybeFail(key, value);
    return super.set(key, value, ttlMs);
  }

  // Records and their indexes are written with one atomic operation: fail it as a whole.
  override async atomic(operation: AtomicOperation): Promise<boolean> {
    for (const w of operation.then) if (w.type === 'set') this.maybeFail(w.key, w.value);
    return super.atomic(operation);
  }

  private maybeFail(key: string, value: string): void {
    if (this.failing && this.failing.times > 0 && this.failing.match(key, value)) {
      this.failing.times--;
      throw new StoreUnavailable(`fake write failure of ${key}`);
    }
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
