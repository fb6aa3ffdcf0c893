import type { Logger } from '../log.js';
import type { LeaderLock } from './leader-lock.js';

/** Background work that must run in exactly one hub process: the pool refill, the cullers. */
export interface LeaderDuty {
  /** For the log. */
  readonly name: string;
  /** Begin the work (this process just became the leader). May be called again after `stop`. */
  start(): void | Promise<void>;
  /** End the work (leadership lost or the hub closes). Safe to call when not started. */
  stop(): void | Promise<void>;
}

/**
 * Starts the duties when the lock makes this process the leader and stops them when it loses
 * leadership. Changes run one after the other, so a quick lose-then-gain never leaves a duty
 * running twice or stopped. `close` stops whatever runs.
 */
export class LeaderDuties {
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  private readonly unsubscribe: () => void;

  constructor(
    lock: LeaderLock,
    private readonly duties: readonly LeaderDuty[],
    private readonly log: Logger,
  ) {
    this.unsubscribe = lock.onChange((leader) => this.enqueue(leader));
    if (lock.isLeader()) this.enqueue(true);
  }

  /** Resolves when every change heard so far has been applied (tests, close). */
  settled(): Promise<void> {
    return this.chain;
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.enqueue(false);
    await this.chain;
  }

  private enqueue(leader: boolean): void {
    this.chain = this.chain.then(async () => {
      if (leader === this.running) return;
      this.running = leader;
      for (const duty of this.duties) {
        try {
          await (leader ? duty.start() : duty.stop());
        } catch (err) {
          this.log.error({ duty: duty.name, err: (err as Error).message }, leader ? 'a leader duty failed to start' : 'a leader duty failed to stop');
        }
      }
    });
  }
}
