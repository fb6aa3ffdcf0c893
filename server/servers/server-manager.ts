import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { HubConfig } from '../config/index.js';
import { BadRequest, Forbidden, HubError, SpawnTimeout, StoreUnavailable } from '../errors.js';
import type { Store } from '../store/store.js';
import type { ServerRecord, ServerRepo, UserRecord } from '../store/repos.js';
import type { ServerPriority, Spawner, SpawnSpec, SpawnerState } from '../spawner/spawner.js';
import type { RouteTable } from '../proxy/route-table.js';
import type { ActivityTracker } from '../proxy/activity.js';
import { ProgressBus, ProgressRelay, type StartEvent } from './progress.js';
import { ServerLocks } from './server-lock.js';
import { HubStarting, ServerBusy } from './lifecycle-errors.js';

/**
 * A server's lifecycle state. `stopped` is the absence of a record; the others are the
 * record's phase. `failed` keeps the reason the user is shown until the next start or stop.
 */
export type ServerState = 'stopped' | 'starting' | 'running' | 'stopping' | 'failed';

/** The coarse view most callers need (the pool, the API, admin lists): stopping and failed read as stopped. */
export type ServerStatus = 'running' | 'starting' | 'stopped';

export interface ServerStateInfo {
  state: ServerState;
  /** With `failed`: why, in words the user understands. */
  reason?: string;
}

/** An image profile a user may pick (Docker spawner); the image itself never leaves the config. */
export interface ServerProfile {
  name: string;
  displayName: string;
  description: string;
  /** Offered through these research projects (a project-only profile, e.g. a licensed image); absent for the site's defaults. */
  projects?: string[];
}

/** What the hub knows of one server, without its secret (the culler, admin views). */
export interface ServerSummary {
  user: string;
  escapedName: string;
  phase: ServerRecord['phase'];
  ephemeral: boolean;
  /** When the start began (ms since the epoch). */
  startedAt: number;
  /** The image profile it runs (Docker spawner), when the spawner recorded one. */
  profile?: string;
  /** The datasets it mounts (Docker spawner), when the spawner recorded them. */
  datasets?: string[];
}

export interface ServerManagerOptions {
  config: HubConfig;
  servers: ServerRepo;
  /** Holds the lifecycle locks (one per server) shared by every hub process on this store. */
  store: Store;
  spawner: Spawner;
  routes: RouteTable;
  activity: ActivityTracker;
  log: Logger;
  /**
   * Put each start's progress in the store, for progress pages served by other hub processes.
   * Default: with Redis, the one store several processes share; a single process needs only its own buses.
   */
  shareProgress?: boolean;
  /** The hub's address as users' browsers see it, ending in /hub/ (given to each server for its links back). */
  hubUrl?: () => string;
  /** Told when each start run by this process ends (metrics): its duration, and the error code when it failed. */
  /**
   * Which profiles this (persistent) user may start: profile name -> the projects that offer it
   * (empty for a site default). Unset: every profile, for everyone. Ephemeral servers use the default.
   */
  profileGate?: (user: UserRecord) => Promise<ReadonlyMap<string, readonly string[]>>;
  onStartFinished?: (outcome: { ok: true; seconds: number } | { ok: false; seconds: number; reason: string }) => void;
}

// A finished start's events stay this long for progress pages that connect late.
const KEEP_FINISHED_MS = 60_000;
// How often a progress page served by another hub process than the start re-reads the stored events.
const PROGRESS_RESYNC_MS = 2_000;
// How often a start or stop that finds the lock taken asks again.
const LOCK_RETRY_MS = 100;
const INTERRUPTED = 'The last start of your server was interrupted (the hub restarted). Please start it again.';

/** A start aborted because its user asked for a stop meanwhile. */
class StartCancelled extends HubError {
  constructor() {
    super('START_CANCELLED', 409, 'The start was cancelled: the server was stopped.');
  }
}

/**
 * The one owner of every server's lifecycle: the only place that changes server records,
 * the route table and spawner state together. Each server moves through stopped -> starting
 * -> running -> stopping -> stopped (or starting -> failed); every change happens under the
 * server's lock in the store (ServerLocks), so starts and stops of one user never overlap,
 * in this process or any other. A start that finds the server running adopts it; nothing but
 * an explicit stop (or finding it dead) ever ends a running server.
 */
export class ServerManager {
  /** Starts run by this process: their progress pages here need no store. */
  private readonly buses = new Map<string, ProgressBus>();
  /** Every start's progress in the store, for pages served by the other hub processes. */
  private readonly progress: ProgressRelay;
  private readonly shareProgress: boolean;
  private readonly pending = new Map<string, Promise<void>>();
  private readonly aborts = new Map<string, AbortController>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly flushTimer: NodeJS.Timeout;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private readonly locks: ServerLocks;
  /** Aborts lock waits and sleeps at close(). */
  private readonly closing = new AbortController();
  private reconciled = false;
  private closed = false;

  constructor(private readonly o: ServerManagerOptions) {
    this.locks = new ServerLocks(o.store, o.log.child({ part: 'server-locks' }));
    this.shareProgress = o.shareProgress ?? o.store.kind === 'redis';
    this.progress = new ProgressRelay({
      store: o.store,
      log: o.log.child({ part: 'progress' }),
      keepFinishedMs: KEEP_FINISHED_MS,
      keepStartingMs: o.config.startTimeoutS * 1000 + KEEP_FINISHED_MS,
      resyncMs: PROGRESS_RESYNC_MS,
    });
    this.flushTimer = setInterval(() => void this.flushActivity(), o.config.activityFlushMs);
    this.flushTimer.unref();
  }

  /** False until reconcile() has found every server that kept running; starts and stops are refused (HubStarting) until then. */
  get ready(): boolean {
    return this.reconciled;
  }

  /** Where a user's server is: running (proxied), starting, or stopped (stopping and failed included). */
  async status(user: UserRecord): Promise<ServerStatus> {
    const { state } = await this.state(user);
    return state === 'running' || state === 'starting' ? state : 'stopped';
  }

  /**
   * The user's server state, checked: a `running` record whose server died is noticed here
   * (route and record go, the answer is `stopped`), so the home page and the API never claim
   * a dead server runs. A server the spawner can't be asked about (Docker down) stays running.
   * Throws StoreUnavailable.
   */
  async state(user: UserRecord): Promise<ServerStateInfo> {
    const name = user.escapedName;
    if (this.pending.has(name)) return { state: 'starting' };
    const record = await this.o.servers.get(name);
    if (!record) return { state: 'stopped' };
    switch (record.phase) {
      case 'failed':
        return { state: 'failed', reason: record.reason ?? 'Your server could not be started.' };
      case 'starting':
      case 'stopping':
        // Without a holder of its lock the operation died with its hub process.
        if (await this.locks.isHeld(name)) return { state: record.phase };
        return record.phase === 'starting' ? { state: 'failed', reason: INTERRUPTED } : { state: 'stopped' };
      case 'running':
        // Before reconcile the route table is still empty: don't judge yet.
        if (!this.reconciled) return { state: 'running' };
        if ((await this.liveness(record)) === 'stopped') {
          await this.noticeDead(record);
          return { state: 'stopped' };
        }
        // Started or adopted by another hub process: route it here too, unless a stop holds its lock.
        if (!this.o.routes.get(name) && !(await this.locks.isHeld(name))) void this.addRoute(record);
        return { state: 'running' };
    }
  }

  /** Every server the hub has a record of, in any process. Rejects when the store is unreachable. */
  async list(): Promise<ServerSummary[]> {
    return (await this.o.servers.list()).map((r) => {
      const profile = r.spawnerState?.profile;
      const datasets = r.spawnerState?.datasets;
      return { user: r.user, escapedName: r.escapedName, phase: r.phase, ephemeral: r.ephemeral, startedAt: r.startedAt, ...(typeof profile === 'string' ? { profile } : {}), ...(typeof datasets === 'string' ? { datasets: datasets ? datasets.split(',') : [] } : {}) };
    });
  }

  /** The profiles users may choose from, default first; empty when the spawner has none (local). */
  profiles(): ServerProfile[] {
    if (this.o.config.spawner !== 'docker') return [];
    return this.o.config.dockerProfiles.map(({ name, displayName, description }) => ({ name, displayName, description }));
  }

  /** The profiles this user may choose from (profileGate), default first. Throws StoreUnavailable. */
  async profilesFor(user: UserRecord): Promise<ServerProfile[]> {
    const all = this.profiles();
    if (!this.o.profileGate || !all.length || user.source === 'anonymous') return all;
    const allowed = await this.o.profileGate(user);
    return all.filter((p) => allowed.has(p.name)).map((p) => {
      const via = allowed.get(p.name) ?? [];
      return via.length ? { ...p, projects: [...via] } : p;
    });
  }

  /**
   * Make sure the user's server runs. Returns 'running' when it already does (adopting it:
   * a running server is never restarted), otherwise starts it in the background and returns
   * 'starting' (watch progress with `watch`). A second call during a start, from any hub
   * process, joins the first. A start while the server is stopping waits up to
   * serverStopWaitS for the stop, then throws ServerBusy. Throws HubStarting before
   * reconcile(), StoreUnavailable when the store can't record the start. `profile` is a
   * name a user sent: anything but a configured profile's name is refused with BadRequest,
   * a configured one this user may not start (profileGate) with Forbidden.
   * `datasets` are mounted besides the profile's: names the hub chose (a course's), never a request's.
   */
  async start(user: UserRecord, opts: { ephemeral?: boolean; profile?: string; lowPriority?: boolean; datasets?: readonly string[] } = {}): Promise<ServerStatus> {
    if (!this.reconciled) throw new HubStarting();
    const name = user.escapedName;
    const profile = await this.checkProfile(user, opts.profile, (opts.ephemeral ?? false) || user.source === 'anonymous');
    const deadline = Date.now() + this.o.config.serverStopWaitS * 1000;
    let owner: string | null = null;
    for (;;) {
      if (this.pending.has(name)) return 'starting';
      // Even a running server is adopted only under the lock: a stop may be about to end it.
      owner = await this.locks.tryAcquire(name);
      if (owner) break;
      const seen = await this.o.servers.get(name);
      // Another start holds the lock (here or in another hub process): join it.
      if (seen?.phase === 'starting') return 'starting';
      // A stop holds it (or a start that has not written its record yet): wait, bounded.
      if (Date.now() >= deadline) throw new ServerBusy(`lock of ${name} held; record phase ${seen?.phase ?? 'none'}`);
      await this.pause(LOCK_RETRY_MS);
    }

    let record: ServerRecord;
    let bus: ProgressBus;
    try {
      // Under the lock this read is the truth: nobody else changes the record now.
      const current = await this.o.servers.get(name);
      if (current?.phase === 'running' && (await this.liveness(current)) !== 'stopped') {
        await this.locks.release(name, owner);
        return this.adopt(current);
      }
      // What is left of a dead or interrupted server (stale state file, exited container) goes first.
      if (current?.spawnerState) await this.o.spawner.stop(this.specOf(current), current.spawnerState);
      void this.o.routes.remove(name);
      record = {
        user: user.name,
        escapedName: name,
        phase: 'starting',
        spawner: this.o.spawner.kind,
        secret: randomBytes(32).toString('base64url'),
        // Anonymous visitors only ever get throwaway servers, whoever asks for the start.
        ephemeral: (opts.ephemeral ?? false) || user.source === 'anonymous',
        startedAt: Date.now(),
      };
      bus = new ProgressBus(this.shareProgress ? this.progress.recorder(name) : undefined);
      this.buses.set(name, bus);
      bus.emit({ progress: 0, message: 'Asking for a server' });
      try {
        await this.o.servers.put(record);
      } catch (err) {
        bus.emit({ progress: 0, message: 'The hub could not record your server.', failed: true });
        this.dropBusLater(name, bus);
        throw err;
      }
    } catch (err) {
      await this.locks.release(name, owner);
      throw err;
    }
    const abort = new AbortController();
    this.aborts.set(name, abort);
    const lockOwner = owner;
    const run = this.runStart(user, record, bus, profile, abort, opts.lowPriority === true, opts.datasets ?? []).then(async (last) => {
      this.aborts.delete(name);
      this.pending.delete(name);
      await this.locks.release(name, lockOwner);
      // Told last, so whoever waits for the end finds record, route and lock settled.
      bus.emit(last);
      this.dropBusLater(name, bus);
    });
    this.pending.set(name, run);
    return 'starting';
  }

  /**
   * Progress of the user's current or last start, replayed from its beginning, whichever hub
   * process runs it: from this process's own bus while the start runs here, otherwise from the
   * store (see `shareProgress`). Without stored events (none kept, or the store was away) the server's state decides:
   * ready when running, the failure's reason, or "not running". Call the returned function to
   * stop listening.
   */
  watch(user: UserRecord, listener: (e: StartEvent) => void): () => void {
    const bus = this.buses.get(user.escapedName);
    // Shared: only while it runs, for once it is over another process may run a newer start, which only the store knows.
    if (bus && (!bus.done || !this.shareProgress)) return bus.watch(listener);
    return this.progress.follow(user.escapedName, listener, () => this.outcomeOf(user), bus?.events);
  }

  /**
   * Stop the user's server; its persistent files stay. A start in progress in this process is
   * cancelled first; one in another process is waited for (up to startTimeoutS plus
   * serverStopWaitS, then ServerBusy). Safe to repeat and on a stopped server. If the spawner
   * fails (Docker down), the record is kept as it was and the error is thrown, so the server is
   * never lost track of. Throws HubStarting before reconcile().
   */
  async stop(user: UserRecord): Promise<void> {
    if (!this.reconciled) throw new HubStarting();
    const name = user.escapedName;
    const running = this.pending.get(name);
    if (running) {
      this.aborts.get(name)?.abort(new StartCancelled());
      await running.catch(() => undefined);
    }
    const owner = await this.acquire(name, (this.o.config.startTimeoutS + this.o.config.serverStopWaitS) * 1000);
    try {
      const record = await this.o.servers.get(name);
      void this.o.routes.remove(name);
      if (!record) return;
      if (record.spawnerState) {
        await this.o.servers.put({ ...record, phase: 'stopping' });
        try {
          await this.o.spawner.stop(this.specOf(record), record.spawnerState);
        } catch (err) {
          await this.o.servers.put(record).catch(() => undefined);
          if (record.phase === 'running') void this.addRoute(record);
          throw err;
        }
      }
      await this.o.servers.delete(name);
      // Again: a status check may have routed it while the spawner was stopping it.
      void this.o.routes.remove(name);
      this.o.log.info({ user: user.name, ephemeral: record.ephemeral }, 'server stopped');
    } finally {
      await this.locks.release(name, owner);
    }
  }

  /**
   * The server's last output lines for admins (Spawner.logs), with its secret blanked; null
   * when the spawner can't show logs. Safe to call for a stopped server (its last run's lines).
   */
  async logs(user: UserRecord, lines: number): Promise<string[] | null> {
    if (!this.o.spawner.logs) return null;
    const record = await this.o.servers.get(user.escapedName);
    const got = await this.o.spawner.logs(user.escapedName, { lines });
    return record?.secret ? got.map((l) => l.split(record.secret).join('[secret]')) : got;
  }

  /**
   * Move the user's running server (and its kernels) to `priority` (Spawner.setPriority). False
   * when there is nothing to change: no running server, or a spawner without priorities. Throws
   * what the spawner throws; callers that only gain speed from it log and go on.
   */
  async setPriority(user: UserRecord, priority: ServerPriority): Promise<boolean> {
    if (!this.o.spawner.setPriority) return false;
    const record = await this.o.servers.get(user.escapedName);
    if (record?.phase !== 'running' || !record.spawnerState) return false;
    await this.o.spawner.setPriority(record.spawnerState, priority);
    return true;
  }

  /** The user's server URL under the proxy. */
  urlOf(user: UserRecord): string {
    return `/user/${user.escapedName}${this.o.config.defaultUrl}`;
  }

  /**
   * After a hub (re)start, before the hub serves /user/ or starts anything: route every server
   * the store knows that still runs (adopted, never restarted), clear the ones that died, mark
   * starts a crash interrupted as failed, and stop servers the spawner runs that the store
   * doesn't know (orphans). Then polling begins. Servers whose lock another hub process holds
   * are left to it.
   */
  async reconcile(): Promise<{ adopted: string[]; forgotten: string[]; orphans: string[] }> {
    const adopted: string[] = [];
    const forgotten: string[] = [];
    const orphans: string[] = [];
    const known = new Set<string>();
    for (const r of await this.o.servers.list()) {
      if (r.phase === 'failed') continue;
      const state = r.spawnerState && r.endpoint ? await this.liveness(r) : 'stopped';
      if (state !== 'stopped') {
        // 'unknown' (the spawner's backend does not answer): keep it rather than lose a student's work.
        if (state === 'unknown') this.o.log.warn({ user: r.user }, 'could not check a server; keeping it');
        void this.addRoute(r);
        known.add(r.escapedName);
        adopted.push(r.user);
        if (r.phase !== 'running') await this.withLockIfFree(r.escapedName, () => this.o.servers.put({ ...r, phase: 'running' }));
        continue;
      }
      const done = await this.withLockIfFree(r.escapedName, async () => {
        // Stopping a dead server cleans up after it (a state file, a "Try it" folder, an exited container).
        if (r.spawnerState) await this.o.spawner.stop(this.specOf(r), r.spawnerState).catch((err: Error) => this.o.log.warn({ user: r.user, err: err.message }, 'could not clean up a dead server'));
        void this.o.routes.remove(r.escapedName);
        if (r.phase === 'starting') await this.o.servers.put({ ...r, phase: 'failed', reason: INTERRUPTED, endpoint: undefined, spawnerState: undefined });
        else await this.o.servers.delete(r.escapedName);
      });
      if (done) forgotten.push(r.user);
    }
    orphans.push(...(await this.reapOrphans(known)));
    this.reconciled = true;
    this.startPolling();
    this.o.log.info({ adopted: adopted.length, forgotten: forgotten.length, orphans: orphans.length }, 'servers reconciled');
    return { adopted, forgotten, orphans };
  }

  /**
   * One round of polling: every running server is asked whether it is alive; a dead one
   * loses its route and its record (the user then gets the "not running" page with a Start
   * button). A server that can't be asked is left alone this round. Returns the users whose
   * servers were found dead.
   */
  async pollOnce(): Promise<string[]> {
    const dead: string[] = [];
    let interrupted = false;
    for (const r of await this.o.servers.list()) {
      if (this.closed) break;
      if (this.pending.has(r.escapedName)) continue;
      // A start whose hub died (its lock expired): it becomes failed, and its half-started server is reaped below.
      if (r.phase === 'starting' && !(await this.locks.isHeld(r.escapedName))) {
        const settled = await this.withLockIfFree(r.escapedName, async () => {
          const now = await this.o.servers.get(r.escapedName);
          if (now?.phase !== 'starting' || now.secret !== r.secret) return false;
          await this.o.servers.put({ ...now, phase: 'failed', reason: INTERRUPTED });
          return true;
        });
        if (settled) interrupted = true;
        continue;
      }
      if (r.phase !== 'running') continue;
      if ((await this.liveness(r)) !== 'stopped') continue;
      if (await this.noticeDead(r)) dead.push(r.user);
    }
    if (interrupted && !this.closed) await this.reapOrphans(new Set());
    return dead;
  }

  /**
   * Stop what the spawner runs that no record accounts for: servers the store doesn't know,
   * and servers of starts that died with their hub (record still `starting`, its lock
   * expired), whose record then becomes `failed`. Servers in `skip`, and any whose lock is
   * held (a start in progress, maybe in another hub process), are left alone.
   */
  private async reapOrphans(skip: ReadonlySet<string>): Promise<string[]> {
    const orphans: string[] = [];
    let running: Awaited<ReturnType<Spawner['listRunning']>> = [];
    try {
      running = await this.o.spawner.listRunning();
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'could not list running servers; orphans are not reaped this time');
      return orphans;
    }
    for (const found of running) {
      if (skip.has(found.escapedName) || this.pending.has(found.escapedName)) continue;
      const stopped = await this.withLockIfFree(found.escapedName, async () => {
        const record = await this.o.servers.get(found.escapedName);
        // A server its record points at (running, or being stopped) is not an orphan.
        if (record?.spawnerState && record.phase !== 'failed') return false;
        this.o.log.warn({ server: found.escapedName, state: found.state, phase: record?.phase }, 'stopping orphan server the hub does not know');
        await this.o.spawner.stop(this.orphanSpec(found.escapedName), found.state);
        if (record?.phase === 'starting') await this.o.servers.put({ ...record, phase: 'failed', reason: INTERRUPTED });
        return true;
      }).catch((err: Error) => {
        this.o.log.error({ server: found.escapedName, err: err.message }, 'could not stop orphan');
        return false;
      });
      if (stopped) orphans.push(found.escapedName);
    }
    return orphans;
  }

  /**
   * Poll every running server, e.g. when the spawner's backend answers again after an outage:
   * a dead one loses its route and record, a live one keeps (or gets back) its route, and one
   * that can't be checked is kept. Servers starting now are left to their start. Safe to repeat.
   */
  async recheck(): Promise<{ alive: string[]; gone: string[]; unknown: string[] }> {
    const out = { alive: [] as string[], gone: [] as string[], unknown: [] as string[] };
    for (const r of await this.o.servers.list()) {
      if (r.phase !== 'running' || !r.spawnerState || this.pending.has(r.escapedName)) continue;
      const state = await this.liveness(r);
      if (state === 'unknown') out.unknown.push(r.user);
      else if (state === 'running') {
        if (!this.o.routes.get(r.escapedName)) void this.addRoute(r);
        out.alive.push(r.user);
      } else if (await this.noticeDead(r)) out.gone.push(r.user);
    }
    this.o.log.info({ alive: out.alive.length, gone: out.gone.length, unknown: out.unknown.length }, 'servers re-checked');
    return out;
  }

  /** Resolves once every start this process runs has ended (ready or failed); never rejects. A graceful shutdown waits for it. */
  async startsSettled(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  /** Stop background work. Servers keep running unless `stopServers`. */
  async close(stopServers: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    clearInterval(this.flushTimer);
    clearInterval(this.pollTimer);
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled([...this.pending.values(), this.polling]);
    await this.flushActivity();
    if (stopServers) {
      const stopped = new Set<string>();
      for (const r of await this.o.servers.list().catch(() => [])) {
        if (r.spawnerState) await this.o.spawner.stop(this.specOf(r), r.spawnerState).catch((err: Error) => this.o.log.error({ user: r.user, err: err.message }, 'could not stop a server at exit'));
        void this.o.routes.remove(r.escapedName);
        await this.o.servers.delete(r.escapedName).catch(() => undefined);
        stopped.add(r.escapedName);
      }
      // Also what the spawner itself finds, so an unreachable store can't leave servers behind.
      for (const found of await this.o.spawner.listRunning().catch(() => [])) {
        if (stopped.has(found.escapedName)) continue;
        await this.o.spawner.stop(this.orphanSpec(found.escapedName), found.state).catch((err: Error) => this.o.log.error({ server: found.escapedName, err: err.message }, 'could not stop a server at exit'));
      }
    }
    await this.progress.close();
    this.locks.close();
  }

  /** How the user's last start ended, as its final event; null while it is still starting. Throws StoreUnavailable. */
  private async outcomeOf(user: UserRecord): Promise<StartEvent | null> {
    const { state, reason } = await this.state(user);
    switch (state) {
      case 'starting':
        return null;
      case 'running':
        return { progress: 100, message: 'Your server is ready', ready: true, url: this.urlOf(user) };
      case 'failed':
        return { progress: 100, message: reason ?? 'Your server could not be started.', failed: true };
      default:
        return { progress: 0, message: 'Your server is not running.', failed: true };
    }
  }

  private async checkProfile(user: UserRecord, profile: string | undefined, ephemeral: boolean): Promise<string | undefined> {
    // Own-property lookup over a plain list: hostile names like `__proto__` match nothing.
    if (profile !== undefined && !this.profiles().some((p) => p.name === profile)) throw new BadRequest('That kind of server is not offered here.', `unknown profile ${JSON.stringify(profile).slice(0, 80)}`);
    if (ephemeral || !this.o.profileGate || !this.profiles().length) return profile;
    const mine = await this.profilesFor(user);
    if (profile === undefined) {
      // The site's default, or else the first this user may start.
      if (mine.some((p) => p.name === this.profiles()[0]!.name)) return undefined;
      if (!mine.length) throw new Forbidden('No kind of server is offered to you here. Please tell the admin.', `no profile allowed for ${user.name}`);
      return mine[0]!.name;
    }
    if (!mine.some((p) => p.name === profile)) {
      throw new Forbidden('That kind of server is offered only to members of a research project that uses it.', `profile ${profile} not offered to ${user.name}`);
    }
    return profile;
  }

  /**
   * Runs with the lock held by start(); ends in `running` or `failed`, never leaves a server the
   * record doesn't know. Never rejects: resolves with the start's last event, for the caller to emit.
   */
  private async runStart(user: UserRecord, record: ServerRecord, bus: ProgressBus, profile: string | undefined, cancel: AbortController, lowPriority: boolean, datasets: readonly string[]): Promise<StartEvent> {
    const log = this.o.log.child({ user: user.name });
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(new SpawnTimeout(this.o.config.startTimeoutS)), this.o.config.startTimeoutS * 1000);
    const signal = AbortSignal.any([abort.signal, cancel.signal]);
    try {
      const started = await this.o.spawner.start({ ...this.specOf(record), ...(profile ? { profile } : {}), ...(lowPriority ? { lowPriority } : {}), ...(datasets.length ? { datasets } : {}) }, {
        signal,
        log,
        onProgress: (e) => bus.emit({ progress: Math.min(e.progress, 99), message: e.message }),
      });
      if (signal.aborted) {
        // Cancelled (a stop) or timed out just as it got ready: it must not outlive its start.
        await this.o.spawner.stop(this.specOf(record), started.state).catch((e: Error) => log.error({ err: e.message }, 'could not stop a cancelled server'));
        signal.throwIfAborted();
      }
      const running: ServerRecord = { ...record, phase: 'running', endpoint: started.endpoint, spawnerState: { ...started.state } };
      try {
        await this.o.servers.put(running);
      } catch (err) {
        // Without a record the server would be an orphan: stop it rather than lose track.
        await this.o.spawner.stop(this.specOf(record), started.state).catch((e: Error) => log.error({ err: e.message }, 'could not stop a server the hub failed to record'));
        throw err;
      }
      // Before 'ready': the student's next request may reach another hub process.
      await this.addRoute(running);
      log.info({ port: started.endpoint.port, ms: Date.now() - record.startedAt }, 'server ready');
      this.o.onStartFinished?.({ ok: true, seconds: (Date.now() - record.startedAt) / 1000 });
      return { progress: 100, message: 'Your server is ready', ready: true, url: this.urlOf(user) };
    } catch (err) {
      const reason = signal.aborted && signal.reason instanceof HubError ? signal.reason : err;
      const message = reason instanceof HubError ? reason.userMessage : 'Your server could not be started.';
      log.error({ err: reason instanceof Error ? reason.message : String(reason) }, 'server start failed');
      this.o.onStartFinished?.({ ok: false, seconds: (Date.now() - record.startedAt) / 1000, reason: reason instanceof HubError ? reason.code : 'ERROR' });
      const failed: ServerRecord = { ...record, phase: 'failed', reason: message };
      await this.o.servers.put(failed).catch((e: Error) => log.warn({ err: e.message }, 'could not record the failed start'));
      return { progress: 100, message, failed: true };
    } finally {
      clearTimeout(timeout);
    }
  }

  /** A running server found by a start: route it (it may have been started by another hub process) and leave it alone. */
  private adopt(record: ServerRecord): ServerStatus {
    if (!this.o.routes.get(record.escapedName)) {
      void this.addRoute(record);
      this.o.log.info({ user: record.user }, 'adopted a running server');
    }
    return 'running';
  }

  /** The spawner's answer, with 'unknown' when it can't be asked (Docker down): never a reason to kill or forget. */
  private async liveness(r: ServerRecord): Promise<'running' | 'stopped' | 'unknown'> {
    if (!r.spawnerState) return 'stopped';
    try {
      return await this.o.spawner.poll(r.spawnerState);
    } catch (err) {
      this.o.log.warn({ user: r.user, err: (err as Error).message }, 'could not ask the spawner about a server');
      return 'unknown';
    }
  }

  /** A running server that died: its route and record go (under its lock; skipped if someone holds it). True if cleared. */
  private async noticeDead(seen: ServerRecord): Promise<boolean> {
    return this.withLockIfFree(seen.escapedName, async () => {
      const now = await this.o.servers.get(seen.escapedName);
      // Changed meanwhile (a new start, a stop): not the server we found dead.
      if (!now || now.phase !== 'running' || now.secret !== seen.secret) return false;
      this.o.log.warn({ user: now.user, ephemeral: now.ephemeral }, 'server died; route and record removed');
      void this.o.routes.remove(now.escapedName);
      // Cleans up after it: a state file, a "Try it" folder, an exited container.
      if (now.spawnerState) await this.o.spawner.stop(this.specOf(now), now.spawnerState).catch((err: Error) => this.o.log.warn({ user: now.user, err: err.message }, 'could not clean up a dead server'));
      await this.o.servers.delete(now.escapedName);
      return true;
    }).then((r) => r === true);
  }

  /** Run `fn` holding the server's lock if nobody holds it; undefined (and `fn` not run) otherwise. */
  private async withLockIfFree<T>(escapedName: string, fn: () => Promise<T>): Promise<T | undefined> {
    const owner = await this.locks.tryAcquire(escapedName);
    if (!owner) return undefined;
    try {
      return await fn();
    } finally {
      await this.locks.release(escapedName, owner);
    }
  }

  /** The lock, waiting up to waitMs for its holder; ServerBusy after that. */
  private async acquire(escapedName: string, waitMs: number): Promise<string> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const owner = await this.locks.tryAcquire(escapedName);
      if (owner) return owner;
      if (Date.now() >= deadline) throw new ServerBusy(`lock of ${escapedName} still held after ${waitMs} ms`);
      await this.pause(LOCK_RETRY_MS);
    }
  }

  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.closing.signal });
    } catch {
      throw new StoreUnavailable('the hub is shutting down');
    }
  }

  private startPolling(): void {
    const everyS = this.o.config.serverPollIntervalS;
    if (everyS === 0 || this.closed || this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      // One round at a time: a slow spawner must not pile rounds up.
      if (this.polling) return;
      this.polling = this.pollOnce()
        .then(() => undefined, (err: Error) => this.o.log.warn({ err: err.message }, 'polling servers failed; trying again next round'))
        .finally(() => (this.polling = undefined));
    }, everyS * 1000);
    this.pollTimer.unref();
  }

  /** Resolves once every hub process on the store can route it (never rejects: see RouteTable.add). */
  private addRoute(r: ServerRecord): Promise<void> {
    if (!r.endpoint) return Promise.resolve();
    return this.o.routes.add({
      user: r.user,
      escapedName: r.escapedName,
      target: new URL(`http://${r.endpoint.host}:${r.endpoint.port}`),
      authorization: `token ${r.secret}`,
    });
  }

  private specOf(r: Pick<ServerRecord, 'user' | 'escapedName' | 'ephemeral' | 'secret'>): SpawnSpec {
    return {
      user: r.user,
      escapedName: r.escapedName,
      baseUrl: `/user/${r.escapedName}/`,
      secret: r.secret,
      defaultUrl: this.o.config.defaultUrl,
      ephemeral: r.ephemeral,
      // nbgitpuller links without urlpath open JupyterLab, not the classic notebook (not installed locally).
      env: { NBGITPULLER_APP: 'lab' },
      ...(this.o.hubUrl ? { hubUrl: this.o.hubUrl() } : {}),
    };
  }

  /** A spec to stop a server the store has no record of: no secret (checkSpec allows that for stop); the spawner knows from its own state whether it was ephemeral. */
  private orphanSpec(escapedName: string): SpawnSpec {
    return this.specOf({ user: escapedName, escapedName, ephemeral: false, secret: '' });
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
