/**
 * Last activity per server, in memory: the proxy touches it on every request and
 * WebSocket frame; `drain` hands the changes to a batch writer (never a store write per request).
 */
export class ActivityTracker {
  private pending = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  touch(escapedName: string, at: number = this.now()): void {
    const prev = this.pending.get(escapedName);
    if (prev === undefined || at > prev) this.pending.set(escapedName, at);
  }

  /** The changes since the last drain. */
  drain(): Map<string, number> {
    const out = this.pending;
    this.pending = new Map();
    return out;
  }
}
