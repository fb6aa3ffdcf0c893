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

/**
 * The events of one start, kept so a progress page that connects late (or reconnects)
 * still sees every step. Finished buses are dropped by their owner after a while.
 */
export class ProgressBus {
  readonly events: StartEvent[] = [];
  private readonly listeners = new Set<Listener>();
  done = false;

  emit(event: StartEvent): void {
    if (this.done) return;
    const last = this.events.at(-1);
    // Progress only goes forward, whatever order a spawner reports in.
    const e = { ...event, progress: Math.max(event.progress, last?.progress ?? 0) };
    this.events.push(e);
    if (e.ready || e.failed) this.done = true;
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
