/**
 * Messages between bench/proxy.ts (which runs the hub in its own process) and
 * bench/load-worker.ts (the load generator, a child process so that its CPU time is never
 * counted as the hub's).
 */

/** HTTP load: `connections` keep-alive sockets, each sending the same GET back to back. */
export interface HttpLoadJob {
  kind: 'http';
  host: string;
  port: number;
  path: string;
  /** A `host` entry replaces the default `Host: host:port` (a user origin, NAME.localhost:PORT). */
  headers: Readonly<Record<string, string>>;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

/** Sequential WebSocket round trips: a Jupyter `kernel_info_request` on the shell channel (or a plain echo), N times. */
export interface WsRoundTripJob {
  kind: 'ws-rtt';
  url: string;
  headers: Readonly<Record<string, string>>;
  /**
   * `kernel_info`: kernel_info_request; `execute`: execute_request of `pass` (no output). Either
   * ends at its shell reply. `echo`: a short text the stand-in upstream sends back.
   */
  message: 'kernel_info' | 'execute' | 'echo';
  warmup: number;
  count: number;
  /** Upper bound for the whole job; the worker gives up after it. */
  timeoutMs: number;
}

/** Open and close `total` WebSockets, `batch` at a time. */
export interface WsChurnJob {
  kind: 'ws-churn';
  url: string;
  headers: Readonly<Record<string, string>>;
  total: number;
  batch: number;
  timeoutMs: number;
}

export type WorkerJob = HttpLoadJob | WsRoundTripJob | WsChurnJob;

export interface LatencySummary {
  count: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface HttpLoadResult {
  kind: 'http';
  requests: number;
  /** Answers that were not 200, and socket errors: the run is void if either is non-zero. */
  non200: number;
  errors: number;
  firstBadStatus?: number;
  elapsedMs: number;
  latency: LatencySummary;
  /** Sockets the generator had to open during the measured window (keep-alive broken). */
  reconnects: number;
}

export interface WsRoundTripResult {
  kind: 'ws-rtt';
  messages: number;
  elapsedMs: number;
  latency: LatencySummary;
}

export interface WsChurnResult {
  kind: 'ws-churn';
  opened: number;
  closed: number;
  failed: number;
  firstFailure?: string;
  elapsedMs: number;
}

export type WorkerResult = HttpLoadResult | WsRoundTripResult | WsChurnResult;

/** Worker to parent. `window-start`/`window-end` bracket the measured part so the parent can read CPU counters there. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'window-start' }
  | { type: 'window-end' }
  | { type: 'result'; result: WorkerResult }
  | { type: 'failed'; message: string };

/** Parent to worker. */
export type ParentMessage = { type: 'job'; job: WorkerJob } | { type: 'exit' };

/** Nearest-rank percentiles of latencies in microseconds (sorts `samples` in place). */
export function summarize(samples: Float64Array): LatencySummary {
  samples.sort();
  const at = (q: number): number => (samples.length ? samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)] : Number.NaN);
  return { count: samples.length, p50Us: at(0.5), p99Us: at(0.99), maxUs: samples.length ? samples[samples.length - 1] : Number.NaN };
}

/** A growable buffer of latency samples (microseconds), cheaper than number[] at a few hundred thousand entries. */
export class Samples {
  private buf = new Float64Array(1 << 16);
  private n = 0;

  push(us: number): void {
    if (this.n === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.n++] = us;
  }

  reset(): void {
    this.n = 0;
  }

  get length(): number {
    return this.n;
  }

  summary(): LatencySummary {
    return summarize(this.buf.slice(0, this.n));
  }
}
