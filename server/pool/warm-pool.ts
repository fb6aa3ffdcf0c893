import { randomUUID } from 'node:crypto';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserService } from '../auth/users.js';
import type { ServerManager, ServerStatus } from '../servers/server-manager.js';
import type { RouteTable } from '../proxy/route-table.js';
import type { UserRecord } from '../store/repos.js';
import type { ServerPriority } from '../spawner/index.js';
import { isAnonymousName } from '../names.js';
import { copyFolderIn, startNotebookSession } from './jupyter-api.js';
import type { PoolRepo, TrySession } from './pool-repo.js';

/** Why an ephemeral server was destroyed (logs; idle and max-age count as culled). */
export type ReleaseReason = 'logout' | 'idle' | 'max-age' | 'gone' | 'failed' | 'shrunk' | 'admin';

/** What admins see: GET /hub/api/pool. */
export interface PoolStatus {
  /** Configured number of warm servers (poolSize). */
  size: number;
  /** Warm servers ready to hand out. */
  ready: number;
  /** Servers visitors hold (on-demand starts included). */
  inUse: number;
  /** Warm servers being started. */
  starting: number;
  /** Servers destroyed by the culler (idle or max age) since the store was created. */
  culled: number;
  /** Global cap (tryMaxServers). */
  cap: number;
  /** Visitors waiting on the waiting page. */
  waiting: number;
}

/** The answer to a visitor in the queue. */
export interface QueuePlace {
  /** The visitor's ticket, if they are in line. */
  ticket: string | undefined;
  /** 1-based place in the queue. */
  position: number;
  /** Whether a server can be had now at this place. */
  available: boolean;
}

export interface WarmPoolOptions {
  config: HubConfig;
  users: UserService;
  manager: ServerManager;
  routes: RouteTable;
  repo: PoolRepo;
  /** Folder copied into every server as samples/. */
  samplesDir: string;
  log: Logger;
  now?: () => number;
  /**
   * Whether this hub process may refill (the leader; see cluster/LeaderLock). Elsewhere `fill`
   * only calls `askLeaderToFill`. Unset: always (one process).
   */
  isLeader?: () => boolean;
  /** Tell the leader a refill may be due (a visitor took a warm server here). */
  askLeaderToFill?: () => void;
}

/** The folder the samples land in, inside the visitor's home. */
export const SAMPLES_FOLDER = 'samples';
// After a failed warm-up, wait this long before the next, so a broken image can't spin the CPU.
const FAILURE_BACKOFF_MS = 5_000;
// A waiting visitor whose page stopped asking for this many Retry-After periods has left.
const QUEUE_GRACE_PERIODS = 3;

/**
 * The warm pool of ephemeral "Try it" servers: keeps `poolSize` servers started and holding a
 * fresh copy of the samples, hands one to each visitor (never the same to two: the ready list's
 * shift is atomic in the store), starts one on demand when none is ready, and refills in the
 * background with at most `poolMaxStarting` starts at once. Ready, starting and in-use servers
 * together never exceed `tryMaxServers`. Its lists live in the store, so `start` reconciles
 * them after a hub restart.
 */
export class WarmPool {
  private readonly now: () => number;
  private readonly seeding = new Map<string, Promise<boolean>>();
  private readonly releasing = new Map<string, Promise<void>>();
  private readonly work = new Set<Promise<unknown>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private reserveChain: Promise<unknown> = Promise.resolve();
  private startingHere = 0;
  private filling = false;
  private fillAgain = false;
  private backoffUntil = 0;
  // A visitor who just took a warm server is loading their workspace: the next warm-up waits
  // until it has loaded (workspaceLoaded) or until this time, so it doesn't take their CPU.
  private holdUntil = 0;
  private readonly loading = new Set<string>();
  private closed = false;

  constructor(private readonly o: WarmPoolOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Whether "Try it" is offered at all (tryMaxServers > 0). */
  get enabled(): boolean {
    return this.o.config.tryMaxServers > 0;
  }

  /**
   * After ServerManager.reconcile: keep ready and in-use entries whose server still runs, destroy
   * the rest (and warm-ups a dead hub left half done) and any ready beyond poolSize, then start
   * refilling.
   */
  async start(): Promise<void> {
    const { repo } = this.o;
    for (const name of await repo.startingNames()) await this.release(name, 'gone');
    for (const name of await repo.readyNames()) {
      if ((await this.serverStatus(name)) !== 'running') await this.release(name, 'gone');
    }
    // A smaller poolSize since the last start: stop the extra ready servers, newest first. Each is
    // taken off the ready list before it goes, so no visitor can be handed one on its way out.
    const ready = await repo.readyNames();
    for (const name of ready.slice(this.o.config.poolSize).reverse()) {
      if (await repo.removeReady(name)) await this.release(name, 'shrunk');
    }
    for (const name of await repo.inUseNames()) {
      if ((await this.serverStatus(name)) === 'stopped') await this.release(name, 'gone');
    }
    this.fill();
  }

  /** The state of the server of an anonymous user by name ('stopped' when the user is gone). */
  async serverStatus(name: string): Promise<ServerStatus> {
    const user = await this.o.users.get(name);
    return user ? this.o.manager.status(user) : 'stopped';
  }

  /**
   * Give the visitor at `ip` a server: a warm one at once (warm: true), else one started on
   * demand (warm: false; follow it with ServerManager.watch, and `whenSeeded`). Null when the
   * global cap is reached.
   */
  async claim(ip: string): Promise<{ user: UserRecord; warm: boolean } | null> {
    if (!this.enabled || this.closed) return null;
    for (;;) {
      let user = null as UserRecord | null;
      // Off the ready list and recorded as in use in one step (the cap counts it even while we look).
      const session = await this.o.repo.claimReady(async (name) => {
        user = await this.o.users.get(name);
        return { name, escapedName: user?.escapedName ?? '', ip, claimedAt: this.now(), warm: true };
      });
      if (session === null) break;
      const name = session.name;
      if (!user || (await this.o.manager.status(user)) !== 'running') {
        this.o.log.warn({ user: name }, 'a warm server was gone; taking the next');
        await this.release(name, 'gone');
        continue;
      }
      await this.o.repo.countStart(ip, this.o.config.tryStartsWindowS * 1000);
      this.o.log.info({ user: name, ip, warm: true }, 'visitor took a warm server');
      // Warmed up as a refill at low priority; from now on it is the visitor's, kernels included.
      this.track(this.restorePriority(user));
      if (this.o.config.poolRefillDelayMs > 0) {
        this.loading.add(name);
        this.holdUntil = Math.max(this.holdUntil, this.now() + this.o.config.poolRefillDelayMs);
      }
      this.fill();
      return { user, warm: session.warm };
    }
    const user = await this.reserve(async () => {
      const created = await this.o.users.createAnonymous();
      await this.recordSession(created.name, created.escapedName, ip, false);
      return created;
    });
    if (!user) return null;
    await this.o.repo.countStart(ip, this.o.config.tryStartsWindowS * 1000);
    this.o.log.info({ user: user.name, ip, warm: false }, 'no warm server; starting one on demand');
    // Started for a visitor who is waiting for it: normal priority, unlike a refill.
    const seeded = this.warmUp(user, 'normal').then(
      () => true,
      async (err: Error) => {
        this.o.log.error({ user: user.name, err: err.message }, 'on-demand server failed');
        await this.release(user.name, 'failed');
        return false;
      },
    );
    this.seeding.set(user.name, seeded);
    this.track(seeded.finally(() => this.seeding.delete(user.name)));
    return { user, warm: false };
  }

  /**
   * Resolves true once the user's server runs and holds the samples, false if its start failed.
   * Immediate for a warm server.
   */
  whenSeeded(user: UserRecord): Promise<boolean> {
    return this.seeding.get(user.name) ?? Promise.resolve(true);
  }

  /** Whether this anonymous user's server is still being started and seeded in this hub process. */
  isSeeding(name: string): boolean {
    return this.seeding.has(name);
  }

  session(user: UserRecord): Promise<TrySession | null> {
    return this.o.repo.getSession(user.name);
  }

  sessions(): Promise<TrySession[]> {
    return this.o.repo.sessions();
  }

  /** Names of the warm servers ready to hand out, oldest first. */
  readyNames(): Promise<string[]> {
    return this.o.repo.readyNames();
  }

  /** How many servers visitors from this address hold now. */
  async heldBy(ip: string): Promise<number> {
    return (await this.o.repo.sessions()).filter((s) => s.ip === ip).length;
  }

  /**
   * Destroy an ephemeral server and everything in it, and forget its anonymous user. Safe to
   * repeat and to call concurrently (the logout and the culler may race); refuses nothing, but
   * only ever touches anonymous users.
   */
  release(name: string, reason: ReleaseReason): Promise<void> {
    if (!isAnonymousName(name)) return Promise.resolve();
    const running = this.releasing.get(name);
    if (running) return running;
    const done = this.doRelease(name, reason).finally(() => {
      this.releasing.delete(name);
      this.fill();
    });
    this.releasing.set(name, done);
    return done;
  }

  /** Counts for admins. */
  async status(): Promise<PoolStatus> {
    const [ready, starting, inUse, culled, queue] = await Promise.all([
      this.o.repo.readyNames(),
      this.o.repo.startingNames(),
      this.o.repo.inUseNames(),
      this.o.repo.culled(),
      this.liveQueue(),
    ]);
    return { size: this.o.config.poolSize, ready: ready.length, inUse: inUse.length, starting: starting.length, culled, cap: this.o.config.tryMaxServers, waiting: queue.length };
  }

  /**
   * Where this visitor stands, without joining the queue: their ticket's place if it is still in
   * line (its page asked recently; this refreshes it), else the place a newcomer would get,
   * behind everyone waiting. `available` when there are at least that many ready servers plus
   * free slots under the cap, so people who waited longer go first. A page that only asks never
   * queues anyone: a flood of such requests can't keep a visitor waiting while servers sit ready.
   */
  async placeFor(ticket: string | undefined): Promise<QueuePlace> {
    const live = await this.liveQueue();
    const mine = ticket ? live.findIndex((t) => t.ticket === ticket) : -1;
    if (mine !== -1) await this.o.repo.seen(live[mine]!.ticket, this.now());
    const position = mine === -1 ? live.length + 1 : mine + 1;
    return { ticket: mine === -1 ? undefined : ticket, position, available: position <= (await this.capacity()) };
  }

  /**
   * Put a visitor who was turned away in line. 'full' when the line is full (tryQueueMax),
   * 'address' when their address already waits with as many places as it may hold servers
   * (tryMaxPerAddress): one address can't fill the line.
   */
  async joinQueue(ip: string): Promise<QueuePlace | 'full' | 'address'> {
    const live = await this.liveQueue();
    if (live.filter((t) => t.ip === ip).length >= this.o.config.tryMaxPerAddress) return 'address';
    if (live.length >= this.o.config.tryQueueMax) return 'full';
    const ticket = randomUUID();
    await this.o.repo.enqueue(ticket, this.now(), ip);
    const position = (await this.liveQueue()).findIndex((t) => t.ticket === ticket) + 1;
    return { ticket, position, available: false };
  }

  /** Leave the queue (served, or gave up). */
  async leaveQueue(ticket: string | undefined): Promise<void> {
    if (ticket) await this.o.repo.dequeue(ticket);
  }

  /** Whether this address has used up its servers for the current window (tryStartsPerAddress). */
  async startsUsedUp(ip: string): Promise<boolean> {
    return (await this.o.repo.recentStarts(ip)) >= this.o.config.tryStartsPerAddress;
  }

  /**
   * The visitor's workspace has loaded (its rendered page was served): the refill that waited
   * for it may go, once nobody else who just arrived is still loading. Safe to repeat.
   */
  workspaceLoaded(name: string): void {
    if (!this.loading.delete(name)) return;
    if (this.loading.size === 0) this.holdUntil = 0;
    this.fill();
  }

  /** Ask the pool to refill (it also does so by itself after every claim and release). */
  fill(): void {
    if (this.closed || !this.enabled) return;
    if (this.o.isLeader && !this.o.isLeader()) {
      this.o.askLeaderToFill?.();
      return;
    }
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = true;
    this.track(
      this.fillOnce()
        .catch((err: Error) => this.o.log.warn({ err: err.message }, 'pool refill failed'))
        .finally(() => {
          this.filling = false;
          if (this.fillAgain) {
            this.fillAgain = false;
            this.fill();
          }
        }),
    );
  }

  /** Stop refilling and wait for warm-ups in progress. Servers stay (the manager decides). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    while (this.work.size) await Promise.allSettled([...this.work]);
  }

  private async fillOnce(): Promise<void> {
    if (this.holdUntil <= this.now()) this.loading.clear();
    // Visitors waiting in line are who the refill is for: it never holds back for them.
    const hold = this.holdUntil > this.now() && (await this.liveQueue()).length === 0 ? this.holdUntil : 0;
    const wait = Math.max(this.backoffUntil, hold) - this.now();
    if (wait > 0) {
      this.later(wait, () => this.fill());
      return;
    }
    for (;;) {
      if (this.closed || this.startingHere >= this.o.config.poolMaxStarting) return;
      const user = await this.reserve(async () => {
        const [ready, starting] = await Promise.all([this.o.repo.readyNames(), this.o.repo.startingNames()]);
        if (ready.length + starting.length >= this.o.config.poolSize) return null;
        const created = await this.o.users.createAnonymous();
        await this.o.repo.addStarting(created.name);
        return created;
      });
      if (!user) return;
      this.startingHere++;
      this.track(
        this.warmUp(user, 'low')
          .then(async () => {
            // Listed as ready even if the hub is closing: the next start finds it and checks it.
            await this.o.repo.markReady(user.name);
            this.o.log.info({ user: user.name }, 'warm server ready');
          })
          .catch(async (err: Error) => {
            this.o.log.error({ user: user.name, err: err.message }, 'warm server failed to start');
            this.backoffUntil = this.now() + FAILURE_BACKOFF_MS;
            await this.release(user.name, 'failed');
          })
          .finally(() => {
            this.startingHere--;
            this.fill();
          }),
      );
    }
  }

  /**
   * Run `make` only if one more server fits under the global cap. Reservations run one at a
   * time in this process, so two can't both take the last slot.
   */
  private reserve<T>(make: () => Promise<T>): Promise<T | null> {
    const next = this.reserveChain.then(async () => {
      if ((await this.total()) >= this.o.config.tryMaxServers) return null;
      return make();
    });
    this.reserveChain = next.catch(() => undefined);
    return next;
  }

  private async total(): Promise<number> {
    const [ready, starting, inUse] = await Promise.all([this.o.repo.readyNames(), this.o.repo.startingNames(), this.o.repo.inUseNames()]);
    return new Set([...ready, ...starting, ...inUse]).size;
  }

  /** Ready servers plus free slots under the cap: how many visitors can be served now. */
  private async capacity(): Promise<number> {
    const [ready, total] = await Promise.all([this.o.repo.readyNames(), this.total()]);
    return ready.length + Math.max(0, this.o.config.tryMaxServers - total);
  }

  private async liveQueue(): Promise<{ ticket: string; seenAt: number; ip: string }[]> {
    const cutoff = this.now() - QUEUE_GRACE_PERIODS * this.o.config.tryRetryAfterS * 1000 - 2000;
    const all = await this.o.repo.queue();
    const stale = all.filter((t) => t.seenAt < cutoff).map((t) => t.ticket);
    if (stale.length) await this.o.repo.dequeue(...stale);
    return all.filter((t) => t.seenAt >= cutoff);
  }

  /**
   * Start the user's ephemeral server, wait until it runs, copy the samples in. A refill runs at
   * 'low' CPU priority, behind the visitor who just claimed a server.
   */
  private async warmUp(user: UserRecord, priority: ServerPriority): Promise<void> {
    await this.o.manager.start(user, { ephemeral: true, lowPriority: priority === 'low' });
    if (!(await this.waitReady(user))) throw new Error('the server did not start');
    const route = this.o.routes.get(user.escapedName);
    if (!route) throw new Error('the server has no route');
    const files = await copyFolderIn(route, this.o.samplesDir, SAMPLES_FOLDER);
    this.o.log.debug({ user: user.name, files }, 'samples copied in');
    // Warm means warm: the landing notebook's kernel is running before the visitor arrives, so
    // opening it (in JupyterLab or the rendered view) joins it. A server without it still works.
    const landing = `${SAMPLES_FOLDER}/index.ipynb`;
    await startNotebookSession(route, landing).then(
      (kernel) => this.o.log.debug({ user: user.name, kernel }, 'landing kernel started'),
      (err: Error) => this.o.log.warn({ user: user.name, err: err.message }, 'could not start the landing kernel; it starts when the visitor opens it'),
    );
  }

  private waitReady(user: UserRecord): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      let stop: (() => void) | undefined;
      stop = this.o.manager.watch(user, (e) => {
        if (done || !(e.ready || e.failed)) return;
        done = true;
        resolve(Boolean(e.ready));
        stop?.();
      });
      // The listener may have fired during watch(), before `stop` existed.
      if (done) stop();
    });
  }

  private async recordSession(name: string, escapedName: string, ip: string, warm: boolean): Promise<TrySession> {
    const session: TrySession = { name, escapedName, ip, claimedAt: this.now(), warm };
    await this.o.repo.putSession(session);
    return session;
  }

  private async doRelease(name: string, reason: ReleaseReason): Promise<void> {
    const user = await this.o.users.get(name);
    // A start in progress is waited for inside manager.stop; the server then goes with it.
    if (user) await this.o.manager.stop(user);
    // Only once the server is gone does its slot free up: the cap counts real servers.
    await this.o.repo.forget(name);
    if (user) await this.o.users.deleteAnonymous(user);
    if (reason === 'idle' || reason === 'max-age') await this.o.repo.countCulled();
    this.o.log.info({ user: name, reason }, 'ephemeral server destroyed');
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Back to normal CPU priority; a failure only costs the visitor speed, so it is logged, never thrown. */
  private async restorePriority(user: UserRecord): Promise<void> {
    try {
      await this.o.manager.setPriority(user, 'normal');
    } catch (err) {
      this.o.log.warn({ user: user.name, err: (err as Error).message }, 'could not restore the normal priority of a claimed server');
    }
  }

  private track(p: Promise<unknown>): void {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
  }
}
