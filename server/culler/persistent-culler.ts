import type { HubConfig } from '../config/index.js';
import type { CullerLimits } from '../config/culler-schema.js';
import type { Logger } from '../log.js';
import type { Route } from '../proxy/route-table.js';
import type { ServerSummary } from '../servers/server-manager.js';
import { CheckFailures } from './check-failures.js';

/** Why a student's server was stopped. `unreachable`: looked idle, and its kernels could not be asked N times in a row. */
export type PersistentCullReason = 'idle' | 'max-age' | 'unreachable';

/** What the culler needs from the rest of the hub: public interfaces only, never the store. */
export interface PersistentCullerOptions {
  config: HubConfig;
  log: Logger;
  /** Every server the hub knows (ServerManager.list). Rejects when the store is unreachable: the pass is skipped. */
  servers(): Promise<ServerSummary[]>;
  /** Last proxied activity per escaped name (flushed every activityFlushMs). Rejects when the store is unreachable. */
  lastActivity(): Promise<Map<string, number>>;
  /** The route of a server: target and secret (to ask its kernels). */
  route(escapedName: string): Route | undefined;
  /** Whether a kernel of this server computes. Rejects when the server doesn't answer. */
  hasBusyKernel(route: Route): Promise<boolean>;
  /** Report activity the proxy can't see (a busy kernel), so every reader of activity knows it. */
  touch(escapedName: string): void;
  /** Stop the server and keep its files (ServerManager.stop). Safe to repeat. */
  stop(server: ServerSummary, reason: PersistentCullReason): Promise<void>;
  now?: () => number;
}

export interface PersistentCullResult {
  name: string;
  reason: PersistentCullReason;
}

/**
 * Stops students' (persistent) servers after an idle timeout and at a maximum age, per Docker
 * profile (cullerProfileLimits) or hub-wide (cullerIdleTimeoutS, cullerMaxAgeS). Their files
 * stay: a stop is ServerManager.stop. Activity is what the proxy saw, or a kernel still
 * computing with every tab closed (asked through api/kernels before a server is culled for
 * idling). A check that fails is not "idle": the server is skipped that round, and culled only
 * at its maximum age or after cullerMaxFailedChecks failures in a row. A pass that cannot read
 * the server list or the activity (store outage) culls nothing. Runs every cullerIntervalMs
 * from its own timer, which `close` clears; one pass at a time. Ephemeral servers are the
 * EphemeralCuller's.
 */
export class PersistentCuller {
  private readonly now: () => number;
  private readonly busySeenAt = new Map<string, number>();
  private readonly failures: CheckFailures;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PersistentCullResult[]> | undefined;

  constructor(private readonly o: PersistentCullerOptions) {
    this.now = o.now ?? Date.now;
    this.failures = new CheckFailures(o.config.cullerMaxFailedChecks);
    const known = new Set(o.config.dockerProfiles.map((p) => p.name));
    for (const name of Object.keys(o.config.cullerProfileLimits)) {
      if (!known.has(name)) o.log.warn({ profile: name }, 'cullerProfileLimits names a profile that dockerProfiles does not have; it is ignored');
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) void this.cullOnce().catch((err: Error) => this.o.log.warn({ err: err.message }, 'cull pass skipped: could not read the servers'));
    }, this.o.config.cullerIntervalMs);
    this.timer.unref();
  }

  /** One pass; resolves with what it stopped. Safe to call while the timer runs (joins the pass). */
  cullOnce(): Promise<PersistentCullResult[]> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Idle timeout and maximum age (seconds, 0 = none) of a server of this profile. */
  limitsOf(profile: string | undefined): Required<CullerLimits> {
    const { cullerIdleTimeoutS, cullerMaxAgeS, cullerProfileLimits, spawner, dockerProfiles } = this.o.config;
    // A server without a recorded profile runs the default one (the first).
    const name = profile ?? (spawner === 'docker' ? dockerProfiles[0]?.name : undefined);
    // Own properties only: a profile called like an Object.prototype member must not match.
    const own = name !== undefined && Object.hasOwn(cullerProfileLimits, name) ? cullerProfileLimits[name] : undefined;
    return { idleTimeoutS: own?.idleTimeoutS ?? cullerIdleTimeoutS, maxAgeS: own?.maxAgeS ?? cullerMaxAgeS };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<PersistentCullResult[]> {
    const out: PersistentCullResult[] = [];
    const cull = async (s: ServerSummary, reason: PersistentCullReason): Promise<void> => {
      try {
        await this.o.stop(s, reason);
        this.busySeenAt.delete(s.escapedName);
        this.failures.reset(s.escapedName);
        out.push({ name: s.user, reason });
      } catch (err) {
        this.o.log.warn({ user: s.user, reason, err: (err as Error).message }, 'could not stop a server; trying again next pass');
      }
    };
    const servers = (await this.o.servers()).filter((s) => !s.ephemeral && s.phase === 'running');
    const activity = await this.o.lastActivity();
    const now = this.now();
    for (const s of servers) {
      const { idleTimeoutS, maxAgeS } = this.limitsOf(s.profile);
      if (maxAgeS > 0 && now >= s.startedAt + maxAgeS * 1000) {
        await cull(s, 'max-age');
        continue;
      }
      if (idleTimeoutS === 0) continue;
      const last = Math.max(s.startedAt, activity.get(s.escapedName) ?? 0, this.busySeenAt.get(s.escapedName) ?? 0);
      if (now < last + idleTimeoutS * 1000) {
        this.failures.reset(s.escapedName);
        continue;
      }
      const busy = await this.askKernels(s);
      if (busy === true) {
        this.busySeenAt.set(s.escapedName, now);
        this.o.touch(s.escapedName);
        continue;
      }
      if (busy === false) await cull(s, 'idle');
      else if (busy === 'give-up') await cull(s, 'unreachable');
    }
    const live = new Set(servers.map((s) => s.escapedName));
    this.failures.keepOnly(live);
    for (const name of this.busySeenAt.keys()) if (!live.has(name)) this.busySeenAt.delete(name);
    if (out.length) this.o.log.info({ culled: out }, 'idle servers stopped; their files are kept');
    return out;
  }

  /** true/false when the server answered; 'skip' after a failed check, 'give-up' after too many in a row. */
  private async askKernels(s: ServerSummary): Promise<boolean | 'skip' | 'give-up'> {
    const route = this.o.route(s.escapedName);
    try {
      if (!route) throw new Error('no route to the server in this hub process');
      const busy = await this.o.hasBusyKernel(route);
      this.failures.reset(s.escapedName);
      return busy;
    } catch (err) {
      const giveUp = this.failures.fail(s.escapedName);
      this.o.log.warn(
        { user: s.user, failed: this.failures.count(s.escapedName), of: this.o.config.cullerMaxFailedChecks, err: (err as Error).message },
        giveUp ? 'could not ask an idle server\'s kernels, too many times in a row; stopping it' : 'could not ask an idle server\'s kernels; keeping it this round',
      );
      return giveUp ? 'give-up' : 'skip';
    }
  }
}
