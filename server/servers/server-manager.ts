import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { HubConfig } from '../config/index.js';
import { BadRequest, HubError, SpawnTimeout, StoreUnavailable } from '../errors.js';
import type { ServerRecord, ServerRepo, UserRecord } from '../store/repos.js';
import type { Spawner, SpawnSpec, SpawnerState } from '../spawner/spawner.js';
import type { RouteTable } from '../proxy/route-table.js';
import type { ActivityTracker } from '../proxy/activity.js';
import { ProgressBus, type StartEvent } from './progress.js';

export type ServerStatus = 'running' | 'starting' | 'stopped';

/** An image profile a user may pick (Docker spawner); the image itself never leaves the config. */
export interface ServerProfile {
  name: string;
  displayName: string;
  description: string;
}

export interface ServerManagerOptions {
  config: HubConfig;
  servers: ServerRepo;
  spawner: Spawner;
  routes: RouteTable;
  activity: ActivityTracker;
  log: Logger;
}

// A finished start's events stay this long for progress pages that connect late.
const KEEP_FINISHED_MS = 60_000;

/**
 * Starts, stops and finds every user's server: the one place that changes server records,
 * the route table and spawner state together. Safe against double clicks and concurrent
 * starts (a lock in the store), and against hub restarts (reconcile).
 */
export class ServerManager {
  private readonly buses = new Map<string, ProgressBus>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly flushTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: ServerManagerOptions) {
    this.flushTimer = setInterval(() => void this.flushActivity(), o.config.activityFlushMs);
    this.flushTimer.unref();
  }

  /** Where a user's server is: running (proxied), starting, or stopped. */
  async status(user: UserRecord): Promise<ServerStatus> {
    if (this.pending.has(user.escapedName)) return 'starting';
    const record = await this.o.servers.get(user.escapedName);
    if (!record) return 'stopped';
    if (record.phase === 'running' && this.o.routes.get(user.escapedName)) return 'running';
    return record.phase === 'starting' ? 'starting' : 'stopped';
  }

  /** The profiles users may choose from, default first; empty when the spawner has none (local). */
  profiles(): ServerProfile[] {
    if (this.o.config.spawner !== 'docker') return [];
    return this.o.config.dockerProfiles.map(({ name, displayName, description }) => ({ name, displayName, description }));
  }

  /**
   * Make sure the user's server runs. Returns 'running' when it already does, otherwise starts
   * it in the background and returns 'starting' (watch progress with `watch`). A second call
   * during a start, from any hub process, joins the first instead of starting another.
   * `profile` is a name a user sent: anything but a configured profile's name is refused with
   * BadRequest, so a user can pick among the admin's images and nothing else.
   */
  async start(user: UserRecord, opts: { ephemeral?: boolean; profile?: string } = {}): Promise<ServerStatus> {
    const name = user.escapedName;
    const profile = this.checkProfile(opts.profile);
    if (this.pending.has(name)) return 'starting';
    const existing = await this.o.servers.get(name);
    if (existing?.phase === 'running' && existing.spawnerState && this.o.routes.get(name)) {
      if ((await this.o.spawner.poll(existing.spawnerState)) === 'running') return 'running';
      this.o.log.warn({ user: user.name }, 'server found dead; starting a new one');
      await this.forget(name);
    }
    const owner = randomUUID();
    const lockMs = (this.o.config.startTimeoutS + 30) * 1000;
    if (!(await this.o.servers.lockStart(name, owner, lockMs))) return 'starting';

    const record: ServerRecord = {
      user: user.name,
      escapedName: name,
      phase: 'starting',
      spawner: this.o.spawner.kind,
      secret: randomBytes(32).toString('base64url'),
      // Anonymous visitors only ever get throwaway servers, whoever asks for the start.
      ephemeral: (opts.ephemeral ?? false) || user.source === 'anonymous',
      startedAt: Date.now(),
    };
    const bus = new ProgressBus();
    this.buses.set(name, bus);
    bus.emit({ progress: 0, message: 'Asking for a server' });
    try {
      await this.o.servers.put(record);
    } catch (err) {
      await this.o.servers.unlockStart(name, owner).catch(() => undefined);
      bus.emit({ progress: 0, message: 'The hub could not record your server.', failed: true });
      throw err;
    }
    const run = this.runStart(user, record, bus, profile).finally(() => {
      this.pending.delete(name);
      this.dropBusLater(name, bus);
      return this.o.servers.unlockStart(name, owner).catch(() => undefined);
    });
    this.pending.set(name, run);
    return 'starting';
  }

  /** Progress of the user's current or last start, replayed from its beginning. */
  watch(user: UserRecord, listener: (e: StartEvent) => void): () => void {
    const bus = this.buses.get(user.escapedName);
    if (bus) return bus.watch(listener);
    if (this.o.routes.get(user.escapedName)) listener({ progress: 100, message: 'Your server is ready', ready: true, url: this.urlOf(user) });
    else listener({ progress: 0, message: 'Your server is not running.', failed: true });
    return () => undefined;
  }

  /** Stop the user's server; its persistent files stay. Safe to repeat. */
  async stop(user: UserRecord): Promise<void> {
    const name = user.escapedName;
    await this.pending.get(name)?.catch(() => undefined);
    const record = await this.o.servers.get(name);
    this.o.routes.remove(name);
    if (!record) return;
    await this.o.servers.put({ ...record, phase: 'stopping' });
    if (record.spawnerState) await this.o.spawner.stop(this.specOf(record), record.spawnerState);
    await this.forget(name);
    this.o.log.info({ user: user.name }, 'server stopped');
  }

  /** The user's server URL under the proxy. */
  urlOf(user: UserRecord): string {
    return `/user/${user.escapedName}${this.o.config.defaultUrl}`;
  }

  /**
   * After a hub (re)start: route every server the store knows that still runs, forget the
   * ones that died, and stop servers the spawner runs that the store doesn't know (orphans).
   */
  async reconcile(): Promise<{ adopted: string[]; forgotten: string[]; orphans: string[] }> {
    const adopted: string[] = [];
    const forgotten: string[] = [];
    const orphans: string[] = [];
    const records = await this.o.servers.list();
    const known = new Set<string>();
    for (const r of records) {
      let state: 'running' | 'stopped' | 'unknown' = 'stopped';
      if (r.spawnerState && r.endpoint) {
        try {
          state = await this.o.spawner.poll(r.spawnerState);
        } catch (err) {
          // The spawner's backend (Docker) does not answer: keep the server rather than forget
          // a student's running work; a later start polls again.
          this.o.log.warn({ user: r.user, err: (err as Error).message }, 'could not check a server; keeping it');
          state = 'unknown';
        }
      }
      if (state !== 'stopped') {
        this.addRoute(r);
        if (r.phase !== 'running') await this.o.servers.put({ ...r, phase: 'running' });
        known.add(r.escapedName);
        adopted.push(r.user);
      } else {
        await this.forget(r.escapedName);
        forgotten.push(r.user);
      }
    }
    let running: Awaited<ReturnType<Spawner['listRunning']>> = [];
    try {
      running = await this.o.spawner.listRunning();
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'could not list running servers; orphans are not reaped this time');
    }
    for (const found of running) {
      if (known.has(found.escapedName)) continue;
      orphans.push(found.escapedName);
      this.o.log.warn({ server: found.escapedName, state: found.state }, 'stopping orphan server the hub does not know');
      const spec = this.specOf({ user: found.escapedName, escapedName: found.escapedName, ephemeral: false, secret: '' });
      await this.o.spawner.stop(spec, found.state).catch((err: Error) => this.o.log.error({ err: err.message }, 'could not stop orphan'));
    }
    this.o.log.info({ adopted: adopted.length, forgotten: forgotten.length, orphans: orphans.length }, 'servers reconciled');
    return { adopted, forgotten, orphans };
  }

  /** Stop background work. Servers keep running unless `stopServers`. */
  async close(stopServers: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.flushTimer);
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled([...this.pending.values()]);
    await this.flushActivity();
    if (stopServers) {
      const stopped = new Set<string>();
      for (const r of await this.o.servers.list().catch(() => [])) {
        if (r.spawnerState) await this.o.spawner.stop(this.specOf(r), r.spawnerState).catch(() => undefined);
        await this.forget(r.escapedName).catch(() => undefined);
        stopped.add(r.escapedName);
      }
      // Also what the spawner itself finds, so an unreachable store can't leave servers behind.
      for (const found of await this.o.spawner.listRunning().catch(() => [])) {
        if (stopped.has(found.escapedName)) continue;
        const spec = this.specOf({ user: found.escapedName, escapedName: found.escapedName, ephemeral: false, secret: '' });
        await this.o.spawner.stop(spec, found.state).catch(() => undefined);
      }
    }
  }

  private checkProfile(profile: string | undefined): string | undefined {
    if (profile === undefined) return undefined;
    // Own-property lookup over a plain list: hostile names like `__proto__` match nothing.
    if (!this.profiles().some((p) => p.name === profile)) throw new BadRequest('That kind of server is not offered here.', `unknown profile ${JSON.stringify(profile).slice(0, 80)}`);
    return profile;
  }

  private async runStart(user: UserRecord, record: ServerRecord, bus: ProgressBus, profile: string | undefined): Promise<void> {
    const log = this.o.log.child({ user: user.name });
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(new SpawnTimeout(this.o.config.startTimeoutS)), this.o.config.startTimeoutS * 1000);
    try {
      const started = await this.o.spawner.start({ ...this.specOf(record), ...(profile ? { profile } : {}) }, {
        signal: abort.signal,
        log,
        onProgress: (e) => bus.emit({ progress: Math.min(e.progress, 99), message: e.message }),
      });
      const running: ServerRecord = { ...record, phase: 'running', endpoint: started.endpoint, spawnerState: { ...started.state } };
      try {
        await this.o.servers.put(running);
      } catch (err) {
        // Without a record the server would be an orphan: stop it rather than lose track.
        await this.o.spawner.stop(this.specOf(record), started.state).catch(() => undefined);
        throw err;
      }
      this.addRoute(running);
      log.info({ port: started.endpoint.port, ms: Date.now() - record.startedAt }, 'server ready');
      bus.emit({ progress: 100, message: 'Your server is ready', ready: true, url: this.urlOf(user) });
    } catch (err) {
      const reason = abort.signal.aborted && abort.signal.reason instanceof HubError ? abort.signal.reason : err;
      const message = reason instanceof HubError ? reason.userMessage : 'Your server could not be started.';
      log.error({ err: reason instanceof Error ? reason.message : String(reason) }, 'server start failed');
      bus.emit({ progress: 100, message, failed: true });
      await this.forget(record.escapedName).catch((e: Error) => log.warn({ err: e.message }, 'could not clear failed server record'));
    } finally {
      clearTimeout(timeout);
    }
  }

  private addRoute(r: ServerRecord): void {
    if (!r.endpoint) return;
    this.o.routes.add({
      user: r.user,
      escapedName: r.escapedName,
      target: new URL(`http://${r.endpoint.host}:${r.endpoint.port}`),
      authorization: `token ${r.secret}`,
    });
  }

  private async forget(escapedName: string): Promise<void> {
    this.o.routes.remove(escapedName);
    await this.o.servers.delete(escapedName);
  }

  private specOf(r: Pick<ServerRecord, 'user' | 'escapedName' | 'ephemeral' | 'secret'>): SpawnSpec {
    return {
      user: r.user,
      escapedName: r.escapedName,
      baseUrl: `/user/${r.escapedName}/`,
      secret: r.secret,
      defaultUrl: this.o.config.defaultUrl,
      ephemeral: r.ephemeral,
      env: {},
    };
  }

  private dropBusLater(name: string, bus: ProgressBus): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.buses.get(name) === bus) this.buses.delete(name);
    }, KEEP_FINISHED_MS);
    t.unref();
    this.timers.add(t);
  }

  private async flushActivity(): Promise<void> {
    const changes = this.o.activity.drain();
    try {
      await this.o.servers.recordActivity(changes);
    } catch (err) {
      // Keep the newest times for the next flush rather than lose them.
      for (const [k, v] of changes) this.o.activity.touch(k, v);
      if (!(err instanceof StoreUnavailable)) this.o.log.warn({ err: (err as Error).message }, 'activity flush failed');
    }
  }
}

export type { SpawnerState };
