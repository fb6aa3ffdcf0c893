import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Route } from '../proxy/route-table.js';
import type { TrySession } from '../pool/pool-repo.js';
import type { ReleaseReason } from '../pool/warm-pool.js';
import { CheckFailures } from './check-failures.js';

/** What the culler needs from the rest of the hub: public interfaces only, never the store. */
export interface EphemeralCullerOptions {
  config: HubConfig;
  log: Logger;
  /** The visitors' servers (WarmPool.sessions). */
  sessions(): Promise<TrySession[]>;
  /** Ready pool entries whose server died are dropped here too (WarmPool.readyNames). */
  readyNames(): Promise<string[]>;
  /** 'running' | 'starting' | 'stopped' of an anonymous user's server by name. */
  serverStatus(name: string): Promise<'running' | 'starting' | 'stopped'>;
  /** Whether a start of this user's server is still under way in this process. */
  isSeeding(name: string): boolean;
  /** Destroy the server and its files (WarmPool.release). */
  release(name: string, reason: ReleaseReason): Promise<void>;
  /** Last proxied activity per escaped name (ServerRepo.lastActivity, flushed every activityFlushMs). */
  lastActivity(): Promise<Map<string, number>>;
  /** Report activity the proxy can't see (a busy kernel) so the workspace page's countdown knows it. */
  touch(escapedName: string): void;
  /** The route of a server: target and secret (to ask its kernels). */
  route(escapedName: string): Route | undefined;
  /** Whether a kernel of this server computes (api/kernels execution_state 'busy'). */
  hasBusyKernel(route: Route): Promise<boolean>;
  now?: () => number;
}

export interface CullResult {
  name: string;
  reason: ReleaseReason;
}

/**
 * Destroys ephemeral servers after `tryIdleTimeoutS` without activity and at `tryMaxAgeS` after
 * the visitor got them. Activity is what the proxy saw (HTTP and WebSocket frames) or a kernel
 * still computing with every tab closed: before culling an idle server, it asks the server's
 * api/kernels for a busy kernel. A check that fails is not "idle": the server is kept that
 * round and destroyed as idle only after cullerMaxFailedChecks failures in a row (its maximum
 * age still applies). Runs every `cullerIntervalMs` from its own timer, which `close` clears.
 * One pass at a time.
 */
export class EphemeralCuller {
  private readonly now: () => number;
  private readonly busySeenAt = new Map<string, number>();
  private readonly failures: CheckFailures;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CullResult[]> | undefined;

  constructor(private readonly o: EphemeralCullerOptions) {
    this.now = o.now ?? Date.now;
    this.failures = new CheckFailures(o.config.cullerMaxFailedChecks);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) void this.cullOnce().catch((err: Error) => this.o.log.warn({ err: err.message }, 'cull pass failed'));
    }, this.o.config.cullerIntervalMs);
    this.timer.unref();
  }

  /** One pass; resolves with what it destroyed. Safe to call while the timer runs (joins the pass). */
  cullOnce(): Promise<CullResult[]> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The moment a session ends if nothing changes: max age, or idle timeout after its last activity. */
  deadlines(session: TrySession, lastActivity: number | undefined): { expiresAt: number; idleAt: number } {
    const { tryMaxAgeS, tryIdleTimeoutS } = this.o.config;
    const last = Math.max(session.claimedAt, lastActivity ?? 0, this.busySeenAt.get(session.name) ?? 0);
    return { expiresAt: session.claimedAt + tryMaxAgeS * 1000, idleAt: last + tryIdleTimeoutS * 1000 };
  }

  /** When a pass last kept this visitor's server past its idle deadline because a kernel was computing; undefined if none did (or it is gone). */
  keptBusyAt(name: string): number | undefined {
    return this.busySeenAt.get(name);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** true/false when the server answered; 'skip' after a failed check, until too many in a row (then false). */
  private async askKernels(s: TrySession): Promise<boolean | 'skip'> {
    const route = this.o.route(s.escapedName);
    try {
      if (!route) throw new Error('no route to the server in this hub process');
      const busy = await this.o.hasBusyKernel(route);
      this.failures.reset(s.name);
      return busy;
    } catch (err) {
      const giveUp = this.failures.fail(s.name);
      this.o.log.warn(
        { user: s.name, failed: this.failures.count(s.name), of: this.o.config.cullerMaxFailedChecks, err: (err as Error).message },
        giveUp ? 'could not ask an idle ephemeral server\'s kernels, too many times in a row; destroying it' : 'could not ask an idle ephemeral server\'s kernels; keeping it this round',
      );
      return giveUp ? false : 'skip';
    }
  }

  private async pass(): Promise<CullResult[]> {
    const out: CullResult[] = [];
    const cull = async (name: string, reason: ReleaseReason): Promise<void> => {
      this.busySeenAt.delete(name);
      this.failures.reset(name);
      try {
        await this.o.release(name, reason);
        out.push({ name, reason });
      } catch (err) {
        this.o.log.warn({ user: name, reason, err: (err as Error).message }, 'could not destroy an ephemeral server; trying again next pass');
      }
    };
    const sessions = await this.o.sessions();
    const activity = await this.o.lastActivity();
    const now = this.now();
    for (const s of sessions) {
      const { expiresAt, idleAt } = this.deadlines(s, activity.get(s.escapedName));
      if (now >= expiresAt) {
        await cull(s.name, 'max-age');
        continue;
      }
      if (this.o.isSeeding(s.name)) continue;
      const status = await this.o.serverStatus(s.name);
      if (status === 'stopped') {
        await cull(s.name, 'gone');
        continue;
      }
      if (now < idleAt || status !== 'running') {
        this.failures.reset(s.name);
        continue;
      }
      const busy = await this.askKernels(s);
      if (busy === 'skip') continue;
      if (busy === true) {
        this.busySeenAt.set(s.name, now);
        this.o.touch(s.escapedName);
        continue;
      }
      await cull(s.name, 'idle');
    }
    for (const name of await this.o.readyNames()) {
      if ((await this.o.serverStatus(name)) === 'stopped') await cull(name, 'gone');
    }
    const live = new Set(sessions.map((s) => s.name));
    for (const name of this.busySeenAt.keys()) if (!live.has(name)) this.busySeenAt.delete(name);
    this.failures.keepOnly(live);
    if (out.length) this.o.log.info({ culled: out }, 'ephemeral servers destroyed');
    return out;
  }
}
