import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

/** One step of a server start, as the progress page shows it. */
export interface StartEvent {
  progress: number;
  message: string;
  /** Last event of a successful start. */
  ready?: boolean;
  /** Last event of a failed start. */
  failed?: boolean;
  /** Where to go once ready. */
  url?: string;
}

type Listener = (event: StartEvent) => void;
/** Told of every event a bus keeps, with its position in the start (0 for the first). */
export type Recorder = (event: StartEvent, seq: number) => void;

/**
 * The events of one start, kept so a progress page that connects late (or reconnects)
 * still sees every step. Finished buses are dropped by their owner after a while. This is the
 * process-local copy; `record` (ProgressRelay.recorder) also puts each event in the store for
 * progress pages served by other hub processes.
 */
export class ProgressBus {
  readonly events: StartEvent[] = [];
  private readonly listeners = new Set<Listener>();
  done = false;

  constructor(private readonly record?: Recorder) {}

  emit(event: StartEvent): void {
    if (this.done) return;
    const last = this.events.at(-1);
    // Progress only goes forward, whatever order a spawner reports in.
    const e = { ...event, progress: Math.max(event.progress, last?.progress ?? 0) };
    this.events.push(e);
    if (e.ready || e.failed) this.done = true;
    this.record?.(e, this.events.length - 1);
    for (const l of this.listeners) l(e);
    if (this.done) this.listeners.clear();
  }

  /** Replays past events, then delivers new ones until the start ends or the returned function is called. */
  watch(listener: Listener): () => void {
    for (const e of this.events) listener(e);
    if (this.done) return () => undefined;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** What the store holds per event: the event, which start it belongs to, and its position in it. */
const StoredEvent = z.object({
  start: z.string(),
  seq: z.number().int().nonnegative(),
  progress: z.number(),
  message: z.string(),
  ready: z.boolean().optional(),
  failed: z.boolean().optional(),
  url: z.string().optional(),
});
type StoredEvent = z.infer<typeof StoredEvent>;

// A spawner that reports every layer of an image pull must not grow a list without end; past
// this many, only the last event (ready or failed) is still kept for late pages.
const MAX_STORED_EVENTS = 100;

export interface ProgressRelayOptions {
  store: Store;
  log: Logger;
  /** How long a finished start's events stay for pages that connect late. */
  keepFinishedMs: number;
  /** How long the events of a start that never ends (its hub died) stay: longer than any start may take. */
  keepStartingMs: number;
  /**
   * How often a page on another process re-reads the stored events: it catches up on
   * messages lost while the store was away, and asks `settle` once nothing has moved.
   */
  resyncMs: number;
}

/**
 * Start progress through the store, so that any hub process sharing it can show it: the
 * process running a start appends each event to a list per server (`progress:NAME`, bounded,
 * expiring) and publishes it on the channel of the same name; a page served by any process
 * replays the list from the beginning, then follows the channel until ready or failed.
 *
 * Writing is fire-and-forget: a start never fails, or waits, because its progress could not be
 * stored (a store outage is logged once per start). Followers make up for lost writes by
 * re-reading the list, and when nothing moves they ask the lifecycle's state (`settle`).
 */
export class ProgressRelay {
  private readonly writes = new Set<Promise<void>>();
  private readonly followers = new Set<Follower>();
  private closed = false;

  constructor(private readonly o: ProgressRelayOptions) {}

  /** A recorder for a new start of the server `escapedName`, for its ProgressBus. Its first event replaces the previous start's. */
  recorder(escapedName: string): Recorder {
    const start = randomBytes(8).toString('hex');
    const key = progressKey(escapedName);
    let chain = Promise.resolve();
    let warned = false;
    // What the list should hold, and whether it is known to hold it: after a failed write the
    // next one rewrites it whole, so a blip of the store costs a page nothing once it is back.
    const kept: string[] = [];
    let inStore = false;
    const warn = (what: string, err: unknown): void => {
      // One line per start: an outage would otherwise log every step of every start.
      if (warned) return;
      warned = true;
      this.o.log.warn({ server: escapedName, err: err instanceof Error ? err.message : String(err) }, `could not ${what} start progress; the start goes on, other hub processes may show less`);
    };
    return (event, seq) => {
      if (this.closed) return;
      const entry = JSON.stringify({ ...event, start, seq } satisfies StoredEvent);
      const last = Boolean(event.ready || event.failed);
      const keep = seq < MAX_STORED_EVENTS || last;
      if (keep) kept.push(entry);
      const upTo = kept.length;
      // In order, one after another: a page must never find "ready" stored before "starting".
      const write = (chain = chain.then(async () => {
        try {
          // The first event of a start (or the first after a failed write) replaces the list: the previous start's steps go.
          if (!inStore) await this.o.store.atomic({ then: [{ type: 'delete', key }, { type: 'listPush', key, values: kept.slice(0, upTo) }] });
          else if (keep) await this.o.store.listPush(key, entry);
          inStore = true;
          await this.o.store.expire(key, last ? this.o.keepFinishedMs : this.o.keepStartingMs);
        } catch (err) {
          inStore = false;
          warn('store', err);
        }
        try {
          await this.o.store.publish(key, entry);
        } catch (err) {
          warn('publish', err);
        }
      }));
      this.writes.add(write);
      void write.finally(() => this.writes.delete(write));
    };
  }

  /**
   * Follow the progress of the server's current or last start as stored: replays it from its
   * beginning, then delivers new events until one is ready or failed, or the returned function
   * is called. `settle` says how it ended (or null while it still runs) when the store has no
   * events for it or they stop coming; it may throw (the store is away), then it is asked again.
   * `known`: a finished start's events this process has itself, replayed instead if the store
   * can't be read at first.
   */
  follow(escapedName: string, listener: Listener, settle: () => Promise<StartEvent | null>, known?: readonly StartEvent[]): () => void {
    if (this.closed) return () => undefined;
    const follower = new Follower(this.o, progressKey(escapedName), listener, settle, known, () => this.followers.delete(follower));
    this.followers.add(follower);
    void follower.begin();
    return () => follower.stop();
  }

  /** Stop every follower (their pages get no further events) and wait for the writes under way. */
  async close(): Promise<void> {
    this.closed = true;
    for (const f of [...this.followers]) f.stop();
    await Promise.allSettled([...this.writes]);
  }
}

/** One page's view of one server's stored progress (see ProgressRelay.follow). */
class Follower {
  private start: string | undefined;
  private lastSeq = -1;
  /** Starts this follower moved on from: their late messages are ignored. */
  private readonly left = new Set<string>();
  private done = false;
  /** Channel messages that arrive while the list is still being read, delivered after it. */
  private buffered: StoredEvent[] | undefined = [];
  private unsubscribe: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private told = false;
  /** Events delivered so far, and as of the last round: a round with none new asks `settle`. */
  private count = 0;
  private countAtTick = 0;
  private storeWarned = false;

  constructor(
    private readonly o: ProgressRelayOptions,
    private readonly key: string,
    private readonly listener: Listener,
    private readonly settle: () => Promise<StartEvent | null>,
    private readonly known: readonly StartEvent[] | undefined,
    private readonly onEnd: () => void,
  ) {}

  async begin(): Promise<void> {
    // Subscribe before reading the list, so that nothing published in between is missed.
    try {
      const unsubscribe = await this.o.store.subscribe(this.key, (m) => this.onMessage(m));
      if (this.done) return void unsubscribe().catch(() => undefined);
      this.unsubscribe = unsubscribe;
    } catch (err) {
      this.warn(err);
    }
    if (this.done) return;
    const delivered = await this.catchUp();
    if (delivered === undefined && this.known?.length) {
      for (const e of this.known) this.tell(e);
      return this.stop();
    }
    const waiting = this.buffered ?? [];
    this.buffered = undefined;
    for (const e of waiting) this.deliver(e);
    if (!delivered && !this.told) await this.ask(true);
    if (this.done) return;
    this.countAtTick = this.count;
    this.timer = setInterval(() => void this.tick(), this.o.resyncMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.timer);
    this.onEnd();
    void this.unsubscribe?.().catch(() => undefined);
  }

  private onMessage(message: string): void {
    const e = parseEvent(message);
    if (!e || this.done) return;
    if (this.buffered) this.buffered.push(e);
    else this.deliver(e);
  }

  /** Deliver what the list holds beyond what was seen. True if anything new was delivered; undefined if the store could not be read. */
  private async catchUp(): Promise<boolean | undefined> {
    let entries: string[];
    try {
      entries = await this.o.store.listRange(this.key);
    } catch (err) {
      this.warn(err);
      return undefined;
    }
    let delivered = false;
    for (const text of entries) {
      const e = parseEvent(text);
      if (e && this.deliver(e)) delivered = true;
    }
    return delivered;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.done) return;
    this.ticking = true;
    try {
      await this.catchUp();
      // Quiet since the last round (a lost message, a hub that died mid-start, or just a slow step): ask how it stands.
      if (this.count === this.countAtTick) await this.ask(false);
      this.countAtTick = this.count;
    } finally {
      this.ticking = false;
    }
  }

  /** Ask the lifecycle how the start stands; an end it reports is delivered as the last event. */
  private async ask(first: boolean): Promise<void> {
    let outcome: StartEvent | null;
    try {
      outcome = await this.settle();
    } catch (err) {
      this.warn(err);
      return;
    }
    if (this.done) return;
    if (outcome) return this.end(outcome);
    // Starting, but its first steps are not in the store (it was away): say so rather than show nothing.
    if (first && !this.told) this.tell({ progress: 0, message: 'Your server is starting' });
  }

  /** True if the event was new to this page. */
  private deliver(e: StoredEvent): boolean {
    if (this.done || this.left.has(e.start)) return false;
    if (e.start !== this.start) {
      // A newer start of the same server (the list is replaced at each start's first event).
      if (this.start !== undefined) this.left.add(this.start);
      this.start = e.start;
      this.lastSeq = -1;
    }
    if (e.seq <= this.lastSeq) return false;
    this.lastSeq = e.seq;
    this.count++;
    const { start: _start, seq: _seq, ...event } = e;
    if (event.ready || event.failed) this.end(event);
    else this.tell(event);
    return true;
  }

  private tell(event: StartEvent): void {
    this.told = true;
    try {
      this.listener(event);
    } catch (err) {
      // A page's listener that throws must not end the follower's timer loop in an unhandled rejection.
      this.o.log.error({ key: this.key, err }, 'a progress listener threw');
    }
  }

  private end(event: StartEvent): void {
    this.tell(event);
    this.stop();
  }

  private warn(err: unknown): void {
    if (this.storeWarned) return;
    this.storeWarned = true;
    this.o.log.warn({ key: this.key, err: err instanceof Error ? err.message : String(err) }, 'could not read start progress from the store; trying again');
  }
}

function progressKey(escapedName: string): string {
  return `progress:${escapedName}`;
}

/** A stored event, or null for anything else (a corrupt entry is skipped, never shown). */
function parseEvent(text: string): StoredEvent | null {
  try {
    const parsed = StoredEvent.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
