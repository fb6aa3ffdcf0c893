import type http from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServerState } from '../servers/server-manager.js';

/*
 * The hub's Prometheus metrics. One registry per hub (two hubs in one test process never share
 * counts). Counters are incremented through the small hooks below, called by the parts that see
 * the event; gauges of state (servers, pool, WebSockets) are read from their owners when scraped,
 * so the hot path never pays for them. Labels are small fixed sets: never a user name or a URL.
 */

/** Every metric's name starts with this. */
export const METRIC_PREFIX = 'oerhub_';

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
type StatusClass = (typeof STATUS_CLASSES)[number] | 'aborted';
/** The states a server record can be in; `stopped` is no record, so it is not counted. */
const SERVER_STATES: readonly Exclude<ServerState, 'stopped'>[] = ['starting', 'running', 'stopping', 'failed'];

/** Where the gauges read from at scrape time (createHub wires the owners). */
export interface MetricsSources {
  /** Phases of every server record; rejects when the store is unreachable (the gauge is then left out). */
  serverPhases(): Promise<readonly string[]>;
  /** The warm pool: ready to hand out, claimed by visitors, being started. */
  poolLevels(): Promise<{ ready: number; claimed: number; starting: number }>;
  /** Proxied WebSockets open in this process. */
  openWebSockets(): number;
}

export type SpawnOutcome = { ok: true; seconds: number } | { ok: false; seconds: number; reason: string };
export type CullKind = 'ephemeral' | 'persistent';

export class HubMetrics {
  readonly registry = new Registry();
  private readonly proxyRequests: Counter<'status_class'>;
  /** Children per status class, made once: an increment on the hot path is a field add. */
  private readonly byClass: Record<StatusClass, Counter.Internal>;
  private readonly proxyLatency: Histogram;
  private readonly spawnSeconds: Histogram<'outcome'>;
  private readonly spawnFailures: Counter<'reason'>;
  private readonly culls: Counter<'kind' | 'reason'>;
  private readonly signIns: Counter<'method'>;
  private readonly storeErrors: Counter<'operation'>;
  private sources: MetricsSources | undefined;

  constructor() {
    const registers = [this.registry];
    const self = (): MetricsSources | undefined => this.sources;
    this.proxyRequests = new Counter({ name: `${METRIC_PREFIX}proxy_requests_total`, help: 'HTTP requests proxied to notebook servers, by response status class (aborted: the client left first).', labelNames: ['status_class'], registers });
    this.byClass = Object.fromEntries([...STATUS_CLASSES, 'aborted'].map((c) => [c, this.proxyRequests.labels(c)])) as Record<StatusClass, Counter.Internal>;
    this.proxyLatency = new Histogram({
      name: `${METRIC_PREFIX}proxy_request_duration_seconds`,
      help: 'Time from a proxied request\'s arrival to the end of its response (the notebook server\'s own time included).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.spawnSeconds = new Histogram({
      name: `${METRIC_PREFIX}spawn_duration_seconds`,
      help: 'How long server starts took, from the request to ready (success) or to the failure.',
      labelNames: ['outcome'],
      buckets: [0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300],
      registers,
    });
    this.spawnFailures = new Counter({ name: `${METRIC_PREFIX}spawn_failures_total`, help: 'Server starts that failed, by reason (the hub\'s error code, e.g. SPAWN_TIMEOUT; cancelled: stopped during the start).', labelNames: ['reason'], registers });
    this.culls = new Counter({ name: `${METRIC_PREFIX}culls_total`, help: 'Servers the cullers stopped, by kind (ephemeral: "Try it" servers destroyed; persistent: students\' servers stopped, files kept) and reason.', labelNames: ['kind', 'reason'], registers });
    this.signIns = new Counter({ name: `${METRIC_PREFIX}sign_ins_total`, help: 'Successful sign-ins, by the account\'s method (local, saml, header, anonymous).', labelNames: ['method'], registers });
    this.storeErrors = new Counter({ name: `${METRIC_PREFIX}store_errors_total`, help: 'State store operations that failed (an outage, a full disk), by store operation.', labelNames: ['operation'], registers });
    new Gauge({
      name: `${METRIC_PREFIX}servers`,
      help: 'Notebook servers the hub has a record of, by state (all hub processes sharing the store).',
      labelNames: ['state'],
      registers,
      async collect() {
        const sources = self();
        this.reset();
        if (!sources) return;
        // Store away: no numbers rather than zeros that would look like every server stopped.
        const phases = await sources.serverPhases().catch(() => null);
        if (!phases) return;
        for (const state of SERVER_STATES) this.set({ state }, phases.filter((p) => p === state).length);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}pool_servers`,
      help: 'Warm "Try it" pool, by state: ready to hand out, claimed by visitors, starting.',
      labelNames: ['state'],
      registers,
      async collect() {
        const sources = self();
        this.reset();
        const levels = await sources?.poolLevels().catch(() => null);
        if (!levels) return;
        for (const [state, n] of Object.entries(levels)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}proxy_websockets_open`,
      help: 'WebSockets (kernels, terminals) proxied by this hub process right now.',
      registers,
      collect() {
        this.set(self()?.openWebSockets() ?? 0);
      },
    });
  }

  /** Where the gauges read from; until called they stay empty (the parts are built after the metrics). */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  /**
   * Count one proxied request and time it, when its response ends or its client goes. Cheap:
   * one listener and a clock read; the label child is looked up in a fixed table.
   */
  observeProxyRequest(res: http.ServerResponse): void {
    const started = performance.now();
    res.once('close', () => {
      this.byClass[res.writableFinished ? statusClass(res.statusCode) : 'aborted'].inc();
      this.proxyLatency.observe((performance.now() - started) / 1000);
    });
  }

  spawnFinished(outcome: SpawnOutcome): void {
    this.spawnSeconds.observe({ outcome: outcome.ok ? 'ready' : 'failed' }, outcome.seconds);
    if (!outcome.ok) this.spawnFailures.inc({ reason: outcome.reason });
  }

  culled(kind: CullKind, reason: string): void {
    this.culls.inc({ kind, reason });
  }

  signedIn(method: string): void {
    this.signIns.inc({ method });
  }

  storeError(operation: string): void {
    this.storeErrors.inc({ operation });
  }

  /** The text a Prometheus server scrapes. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

function statusClass(status: number): StatusClass {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? STATUS_CLASSES[c - 1]! : '5xx';
}
