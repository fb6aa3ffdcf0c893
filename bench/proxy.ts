/**
 * Proxy benchmark: the hub's in-process proxy (with auth: a signed-in session cookie, on the
 * user's own origin) against configurable-http-proxy (CHP, what JupyterHub uses), against the
 * floor (bench/floor-proxy.ts: a bare node:http proxy) and against no proxy at all, on the same
 * upstream in the same run. The upstream is a fast stand-in (bench/stub-upstream.ts, a few µs per
 * request, so the proxies' own cost shows) or, with --upstream=jupyter, a real Jupyter server.
 *
 *   npm run bench:proxy                                  (or)
 *   node --expose-gc --import tsx bench/proxy.ts [--upstream=stub|jupyter] [--seconds=10] [--warmup=2]
 *        [--rounds=3] [--connections=32] [--ws-count=2000] [--ws-message=kernel_info|execute]
 *        [--churn=1000] [--churn-batch=50] [--targets=direct,floor,chp,hub] [--profile=DIR (the floor's --cpu-prof)]
 *
 * Prints ratios against references measured in this run; it asserts nothing about speed.
 * All traffic goes to 127.0.0.1. The load generator runs in a child process
 * (bench/load-worker.ts) so that only the hub's own work is counted as the hub's CPU time.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { loadConfig } from '../server/config/index.js';
import { createHub, type Hub } from '../server/index.js';
import { ADMIN_PASSWORD, createUsers, signInAndStart } from '../test/helpers/hub.js';
import { notebookVenv } from '../test/helpers/venv.js';
import { startKernel, xsrfToken } from '../test/helpers/kernel.js';
import type { HubClient } from '../test/helpers/client.js';
import type { HttpLoadResult, ParentMessage, WorkerJob, WorkerMessage, WorkerResult, WsChurnResult, WsRoundTripResult } from './bench-protocol.js';
import { freePort } from '../test/helpers/ports.js';
import { StubSpawner } from './stub-spawner.js';

const REPO_ROOT = path.resolve(__dirname, '..');
const LOCALHOST = '127.0.0.1';
const USER = 'bench';
const PASSWORD = 'bench-password-123';
/** Linux reports /proc/<pid>/stat times in USER_HZ, 100 on every architecture Node runs on. */
const TICK_US = 10_000;

// ---------------------------------------------------------------- options

interface Options {
  seconds: number;
  warmup: number;
  rounds: number;
  connections: number;
  wsCount: number;
  churn: number;
  churnBatch: number;
  wsMessage: 'kernel_info' | 'execute';
  upstream: 'stub' | 'jupyter';
  targets: Target[];
  /** Where the floor proxy writes a --cpu-prof profile (the hub's: run this script with node --cpu-prof). */
  profileDir: string | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { seconds: 10, warmup: 2, rounds: 3, connections: 32, wsCount: 2000, churn: 1000, churnBatch: 50, wsMessage: 'kernel_info', upstream: 'stub', targets: [...TARGETS], profileDir: undefined };
  const keys: Record<string, Exclude<keyof Options, 'wsMessage' | 'upstream' | 'targets' | 'profileDir'>> = {
    '--seconds': 'seconds',
    '--warmup': 'warmup',
    '--rounds': 'rounds',
    '--connections': 'connections',
    '--ws-count': 'wsCount',
    '--churn': 'churn',
    '--churn-batch': 'churnBatch',
  };
  for (const arg of argv) {
    const [flag, value] = arg.split('=');
    if (flag === '--ws-message' && (value === 'kernel_info' || value === 'execute')) {
      o.wsMessage = value;
      continue;
    }
    if (flag === '--upstream' && (value === 'stub' || value === 'jupyter')) {
      o.upstream = value;
      continue;
    }
    if (flag === '--profile' && value) {
      o.profileDir = path.resolve(value);
      continue;
    }
    if (flag === '--targets') {
      const wanted = (value ?? '').split(',');
      if (!wanted.length || !wanted.every((t): t is Target => (TARGETS as readonly string[]).includes(t))) throw new Error(`--targets takes a comma-separated subset of ${TARGETS.join(',')}`);
      // Always in the canonical order, and the hub always: every ratio is the hub's.
      o.targets = TARGETS.filter((t) => t === 'hub' || wanted.includes(t));
      continue;
    }
    const key = keys[flag];
    const n = Number(value);
    if (!key || !Number.isFinite(n) || n <= 0) throw new Error(`unknown or bad option ${arg}; known: ${Object.keys(keys).join(' ')} (each =N, N > 0), --ws-message=kernel_info|execute, --upstream=stub|jupyter, --targets=${TARGETS.join(',')}`);
    o[key] = n;
  }
  // Bounded no matter what is asked for: this runs on shared 2-core machines.
  o.seconds = Math.min(o.seconds, 60);
  o.rounds = Math.min(Math.round(o.rounds), 10);
  o.connections = Math.min(Math.round(o.connections), 256);
  o.wsCount = Math.min(Math.round(o.wsCount), 20_000);
  o.churn = Math.min(Math.round(o.churn), 10_000);
  o.churnBatch = Math.min(Math.round(o.churnBatch), 200);
  return o;
}

// ---------------------------------------------------------------- process counters

/** user+sys CPU time of a process in microseconds (all its threads), from /proc. */
function cpuUsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * TICK_US;
}

/** This process's CPU time in microseconds; getrusage is finer than /proc's 10 ms ticks. */
function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Local ports of every TCP socket on this machine whose remote end is `port` (any state, TIME_WAIT included). */
function clientPortsTo(port: number): Set<string> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[2].endsWith(hex)) out.add(`${file}:${cols[1]}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- the pieces under test

type Target = 'direct' | 'floor' | 'chp' | 'hub';
const TARGETS: readonly Target[] = ['direct', 'floor', 'chp', 'hub'];

interface Setup {
  hub: Hub;
  client: HubClient;
  escapedName: string;
  hubPort: number;
  /** The upstream: Jupyter, or the stand-in (bench/stub-upstream.ts). */
  jupyterPort: number;
  jupyterPid: number;
  authorization: string;
  chpPort: number;
  chp: ChildProcess;
  floorPort: number;
  floor: ChildProcess;
  /** Jupyter only: the kernel whose channels the WebSocket round trips use. */
  kernelId: string | undefined;
}

/**
 * Where each target is reached and how it is authenticated. CHP and the floor do no auth: we
 * send the secret ourselves. The hub is asked as a browser on the user's own origin
 * (NAME.localhost:PORT, the default originMode): with the jar's cookies for /user/NAME/ (the
 * hub's signed oerhub-user-NAME one, and Jupyter's _xsrf).
 */
function endpointOf(s: Setup, target: Target, path: string): { port: number; headers: Record<string, string> } {
  if (target === 'direct') return { port: s.jupyterPort, headers: { authorization: s.authorization } };
  if (target === 'chp') return { port: s.chpPort, headers: { authorization: s.authorization } };
  if (target === 'floor') return { port: s.floorPort, headers: { authorization: s.authorization } };
  return { port: s.hubPort, headers: { host: new URL(s.client.contentOrigin(s.escapedName)).host, cookie: s.client.cookieHeader(path) } };
}

/** A child process that tells its port over IPC once it listens (the floor proxy, the stand-in). */
async function forkListening(script: string, args: string[], logFile: string, profileDir?: string): Promise<{ child: ChildProcess; port: number }> {
  const out = fs.openSync(logFile, 'a');
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = fork(path.join(__dirname, script), args, { cwd: REPO_ROOT, execArgv: [...profile, '--import', 'tsx'], stdio: ['ignore', out, out, 'ipc'] });
  fs.closeSync(out);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not listen within 20 s; see ${logFile}`)), 20_000);
    child.once('message', (m: { port?: number }) => {
      clearTimeout(timer);
      if (typeof m.port === 'number') resolve(m.port);
      else reject(new Error(`${script} sent a bad message`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}; see ${logFile}`));
    });
  });
  return { child, port };
}

async function startChp(jupyterPort: number, escapedName: string, logFile: string): Promise<{ chp: ChildProcess; port: number }> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const token = randomBytes(24).toString('hex');
  const script = path.join(REPO_ROOT, 'node_modules', 'configurable-http-proxy', 'bin', 'configurable-http-proxy');
  const out = fs.openSync(logFile, 'a');
  // Started with node directly so that the pid we watch is the proxy's own.
  const chp = spawn(process.execPath, [script, '--ip', LOCALHOST, '--port', String(port), '--api-ip', LOCALHOST, '--api-port', String(apiPort), '--log-level', 'warn'], {
    env: { PATH: process.env.PATH ?? '', CONFIGPROXY_AUTH_TOKEN: token },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const deadline = Date.now() + 15_000;
  // Add the user's route over CHP's REST API, as JupyterHub does.
  for (;;) {
    if (chp.exitCode !== null) throw new Error(`configurable-http-proxy exited with ${chp.exitCode}; see ${logFile}`);
    try {
      const res = await fetch(`http://${LOCALHOST}:${apiPort}/api/routes/user/${escapedName}`, {
        method: 'POST',
        headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ target: `http://${LOCALHOST}:${jupyterPort}` }),
        signal: AbortSignal.timeout(2000),
      });
      if (res.status === 201) return { chp, port };
      throw new Error(`CHP answered ${res.status} to adding a route`);
    } catch (err) {
      if (Date.now() > deadline) {
        chp.kill('SIGKILL');
        throw new Error(`configurable-http-proxy did not come up within 15 s: ${(err as Error).message}`);
      }
      await sleep(200);
    }
  }
}

async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- the load worker

interface CpuWindow {
  hubUs: number;
  chpUs: number;
  floorUs: number;
  jupyterUs: number;
  workerUs: number;
  /** New TCP connections made to Jupyter during the window (by whichever process talks to it). */
  upstreamConnects: number;
}

class Worker {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;

  constructor() {
    this.child = fork(path.join(__dirname, 'load-worker.ts'), [], { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (m: WorkerMessage): void => {
        if (m.type !== 'ready') return;
        this.child.off('message', onMessage);
        resolve();
      };
      this.child.on('message', onMessage);
      this.child.once('exit', (code) => reject(new Error(`load worker exited (${code}) before it was ready`)));
    });
    // Reported by run(); never an unhandled rejection if the worker dies before its first job.
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Run a job; `sample` is called at the start and end of its measured window. */
  async run<R extends WorkerResult>(job: WorkerJob, limitMs: number, sample: () => void): Promise<R> {
    await this.ready;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`load worker gave no result within ${limitMs} ms`)), limitMs);
      const onExit = (code: number | null): void => finish(new Error(`load worker exited (${code})`));
      const onMessage = (m: WorkerMessage): void => {
        if (m.type === 'window-start' || m.type === 'window-end') sample();
        else if (m.type === 'failed') finish(new Error(`load worker: ${m.message}`));
        else if (m.type === 'result') {
          if (m.result.kind !== job.kind) finish(new Error(`load worker answered a ${m.result.kind} job to a ${job.kind} one`));
          else finish(undefined, m.result as R);
        }
      };
      const finish = (err: Error | undefined, result?: R): void => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        if (err || !result) reject(err ?? new Error('no result'));
        else resolve(result);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      const msg: ParentMessage = { type: 'job', job };
      this.child.send(msg);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) {
      const msg: ParentMessage = { type: 'exit' };
      this.child.send(msg);
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

/** Reads every counter at the worker's window-start and window-end and returns the differences. */
function cpuSampler(s: Setup, worker: Worker): { sample: () => void; window: () => CpuWindow } {
  const reads: { hub: number; chp: number; floor: number; jupyter: number; worker: number; ports: Set<string> }[] = [];
  const sample = (): void => {
    // Reading /proc/net/tcp takes milliseconds with many TIME_WAIT entries: do it outside the CPU window.
    const before = reads.length === 0 ? clientPortsTo(s.jupyterPort) : undefined;
    const cpu = { hub: selfCpuUs(), chp: cpuUsOf(s.chp.pid ?? 0), floor: cpuUsOf(s.floor.pid ?? 0), jupyter: cpuUsOf(s.jupyterPid), worker: cpuUsOf(worker.pid) };
    reads.push({ ...cpu, ports: before ?? clientPortsTo(s.jupyterPort) });
  };
  const window = (): CpuWindow => {
    const [a, b] = reads;
    if (!a || !b) throw new Error('the load worker did not report its measured window');
    let fresh = 0;
    for (const p of b.ports) if (!a.ports.has(p)) fresh++;
    return { hubUs: b.hub - a.hub, chpUs: b.chp - a.chp, floorUs: b.floor - a.floor, jupyterUs: b.jupyter - a.jupyter, workerUs: b.worker - a.worker, upstreamConnects: fresh };
  };
  return { sample, window };
}

// ---------------------------------------------------------------- measurements

interface HttpRun {
  round: number;
  target: Target;
  result: HttpLoadResult;
  cpu: CpuWindow;
}

interface WsRun {
  round: number;
  target: Target;
  result: WsRoundTripResult;
  cpu: CpuWindow;
}

/** The CPU time of the proxy under test (none for direct). */
function proxyCpuUs(target: Target, cpu: CpuWindow): number {
  return target === 'hub' ? cpu.hubUs : target === 'chp' ? cpu.chpUs : target === 'floor' ? cpu.floorUs : 0;
}

/** Round r visits the targets rotated by r, so drift and "who ran right after whom" hit all of them. */
function orderFor(round: number, targets: readonly Target[]): Target[] {
  return targets.map((_, i) => targets[(i + round) % targets.length]);
}

async function measureHttp(s: Setup, worker: Worker, o: Options): Promise<HttpRun[]> {
  const runs: HttpRun[] = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const target of orderFor(round, o.targets)) {
      const path = `/user/${s.escapedName}/api/status`;
      const { port, headers } = endpointOf(s, target, path);
      const job: WorkerJob = {
        kind: 'http',
        host: LOCALHOST,
        port,
        path,
        headers: { accept: 'application/json', ...headers },
        connections: o.connections,
        warmupMs: o.warmup * 1000,
        durationMs: o.seconds * 1000,
      };
      const sampler = cpuSampler(s, worker);
      const result = await worker.run<HttpLoadResult>(job, (o.warmup + o.seconds) * 1000 + 30_000, sampler.sample);
      if (result.non200 || result.errors) {
        throw new Error(`${target}: ${result.non200} answers were not 200 (first: ${result.firstBadStatus ?? '-'}) and ${result.errors} socket errors; the numbers would be meaningless`);
      }
      const cpu = sampler.window();
      runs.push({ round, target, result, cpu });
      const rps = result.requests / (result.elapsedMs / 1000);
      console.log(
        `  http round ${round + 1} ${target.padEnd(6)} ${fmt(rps, 0).padStart(7)} req/s  p50 ${ms(result.latency.p50Us)}  p99 ${ms(result.latency.p99Us)}  ` +
          `proxy CPU ${fmt(proxyCpuUs(target, cpu) / result.requests, 1)} µs/req  jupyter ${fmt(cpu.jupyterUs / result.requests, 1)} µs/req  ` +
          `generator ${fmt(cpu.workerUs / result.requests, 1)} µs/req  new upstream conns ${cpu.upstreamConnects}`,
      );
    }
  }
  return runs;
}

async function measureWs(s: Setup, worker: Worker, o: Options): Promise<WsRun[]> {
  const runs: WsRun[] = [];
  const path = s.kernelId ? `/user/${s.escapedName}/api/kernels/${s.kernelId}/channels` : `/user/${s.escapedName}/api/echo`;
  for (let round = 0; round < o.rounds; round++) {
    for (const target of orderFor(round, o.targets)) {
      const { port, headers } = endpointOf(s, target, path);
      // Through the hub: the Origin a page of the user's own origin sends.
      const wsHeaders = target === 'hub' ? { ...headers, origin: s.client.contentOrigin(s.escapedName) } : headers;
      const message = s.kernelId ? o.wsMessage : 'echo';
      const job: WorkerJob = { kind: 'ws-rtt', url: `ws://${LOCALHOST}:${port}${path}`, headers: wsHeaders, message, warmup: 100, count: o.wsCount, timeoutMs: 120_000 };
      const sampler = cpuSampler(s, worker);
      const result = await worker.run<WsRoundTripResult>(job, 150_000, sampler.sample);
      const cpu = sampler.window();
      runs.push({ round, target, result, cpu });
      console.log(
        `  ws   round ${round + 1} ${target.padEnd(6)} ${fmt(result.messages / (result.elapsedMs / 1000), 0).padStart(7)} msg/s  ` +
          `p50 ${ms(result.latency.p50Us)}  p99 ${ms(result.latency.p99Us)}  proxy CPU ${fmt(proxyCpuUs(target, cpu) / result.messages, 1)} µs/round trip`,
      );
    }
  }
  return runs;
}

interface ProcessSnapshot {
  fds: number;
  openWebSockets: number;
  rssMb: number;
  heapUsedMb: number;
}

interface ChurnReport {
  result: WsChurnResult;
  baseline: ProcessSnapshot;
  peakFds: number;
  after: ProcessSnapshot;
  afterGc: ProcessSnapshot;
  gcAvailable: boolean;
  flat: boolean;
  why: string;
}

function snapshot(hub: Hub): ProcessSnapshot {
  const m = process.memoryUsage();
  return { fds: openFds(), openWebSockets: hub.proxy.openWebSockets(), rssMb: m.rss / 2 ** 20, heapUsedMb: m.heapUsed / 2 ** 20 };
}

async function collectGarbage(): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(100);
  }
  return true;
}

/** Until the hub has let go of every proxied WebSocket (bounded). */
async function waitForNoWebSockets(hub: Hub, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  while (hub.proxy.openWebSockets() > 0 && Date.now() < until) await sleep(50);
}

async function measureChurn(s: Setup, worker: Worker, o: Options): Promise<ChurnReport> {
  const path = `/user/${s.escapedName}/api/events/subscribe`;
  const url = `ws://${LOCALHOST}:${s.hubPort}${path}`;
  const headers = { ...endpointOf(s, 'hub', path).headers, origin: s.client.contentOrigin(s.escapedName) };
  const churn = (total: number): Promise<WsChurnResult> =>
    worker.run<WsChurnResult>({ kind: 'ws-churn', url, headers, total, batch: o.churnBatch, timeoutMs: 240_000 }, 260_000, () => undefined);

  // One batch first, so lazily created things (modules, pools, caches) are in the baseline.
  const warm = await churn(o.churnBatch);
  if (warm.failed) throw new Error(`WebSockets to ${path} through the hub failed: ${warm.firstFailure ?? '?'}`);
  await waitForNoWebSockets(s.hub, 10_000);
  await sleep(500);
  const gcAvailable = await collectGarbage();
  const baseline = snapshot(s.hub);

  let peakFds = baseline.fds;
  const poll = setInterval(() => {
    peakFds = Math.max(peakFds, openFds());
  }, 25);
  let result: WsChurnResult;
  try {
    result = await churn(o.churn);
  } finally {
    clearInterval(poll);
  }
  await waitForNoWebSockets(s.hub, 10_000);
  await sleep(500);
  const after = snapshot(s.hub);
  await collectGarbage();
  await sleep(500);
  const afterGc = snapshot(s.hub);

  // Sockets must be back exactly (±2 for keep-alive sockets the HTTP pool may open or time out meanwhile);
  // the heap within 4 MB after a full GC. RSS is reported, not judged: V8 keeps freed pages.
  const problems: string[] = [];
  if (result.failed) problems.push(`${result.failed} of ${o.churn} WebSockets failed (${result.firstFailure ?? '?'})`);
  if (afterGc.openWebSockets !== 0) problems.push(`${afterGc.openWebSockets} WebSockets still tracked by the hub`);
  if (afterGc.fds > baseline.fds + 2) problems.push(`${afterGc.fds - baseline.fds} more file descriptors than at the start`);
  if (gcAvailable && afterGc.heapUsedMb > baseline.heapUsedMb + 4) problems.push(`heap ${fmt(afterGc.heapUsedMb - baseline.heapUsedMb, 1)} MB above the start after GC`);
  const why = problems.length ? problems.join('; ') : `fds ${baseline.fds} → ${afterGc.fds}, heap after GC within ${fmt(afterGc.heapUsedMb - baseline.heapUsedMb, 1)} MB${gcAvailable ? '' : ' (no --expose-gc: heap not judged)'}`;
  return { result, baseline, peakFds, after, afterGc, gcAvailable, flat: problems.length === 0, why };
}

// ---------------------------------------------------------------- reporting

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

function ms(us: number): string {
  return `${fmt(us / 1000, 2)} ms`;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

interface Row {
  target: Target;
  rate: number;
  p50Us: number;
  p99Us: number;
  proxyCpuUs: number;
  jupyterCpuUs: number;
  upstreamConnects: number;
}

/** Rate over all rounds pooled; p50/p99 and CPU per unit as the median of the rounds. */
function aggregate<R extends { target: Target; cpu: CpuWindow }>(targets: readonly Target[], runs: readonly R[], count: (r: R) => number, elapsedMs: (r: R) => number, p: (r: R) => { p50Us: number; p99Us: number }): Row[] {
  return targets.map((target) => {
    const mine = runs.filter((r) => r.target === target);
    const total = mine.reduce((a, r) => a + count(r), 0);
    const seconds = mine.reduce((a, r) => a + elapsedMs(r), 0) / 1000;
    return {
      target,
      rate: total / seconds,
      p50Us: median(mine.map((r) => p(r).p50Us)),
      p99Us: median(mine.map((r) => p(r).p99Us)),
      proxyCpuUs: median(mine.map((r) => proxyCpuUs(target, r.cpu) / count(r))),
      jupyterCpuUs: median(mine.map((r) => r.cpu.jupyterUs / count(r))),
      upstreamConnects: mine.reduce((a, r) => a + r.cpu.upstreamConnects, 0),
    };
  });
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

interface Machine {
  cores: number;
  cpuModel: string;
  node: string;
  loadBefore: number[];
  loadAfter: number[];
}

function report(o: Options, machine: Machine, http: HttpRun[], ws: WsRun[], churn: ChurnReport): string {
  const h = aggregate(o.targets, http, (r) => r.result.requests, (r) => r.result.elapsedMs, (r) => r.result.latency);
  const w = aggregate(o.targets, ws, (r) => r.result.messages, (r) => r.result.elapsedMs, (r) => r.result.latency);
  const upstream = o.upstream === 'stub' ? 'stand-in' : 'Jupyter';
  const label: Record<Target, string> = { direct: `${upstream} direct`, floor: 'floor (bare node:http)', chp: 'CHP 5.3', hub: 'oerhub proxy (auth)' };

  const httpRows = h.map((r) => [
    label[r.target],
    fmt(r.rate, 0),
    ms(r.p50Us),
    ms(r.p99Us),
    r.target === 'direct' ? '-' : fmt(r.proxyCpuUs, 1),
    fmt(r.jupyterCpuUs, 1),
    String(r.upstreamConnects),
  ]);
  const wsRows = w.map((r) => [label[r.target], fmt(r.rate, 0), ms(r.p50Us), ms(r.p99Us), r.target === 'direct' ? '-' : fmt(r.proxyCpuUs, 1)]);
  // Each round runs the three targets back to back, so a ratio within one round shares that
  // round's machine load; the median of those paired ratios is what we report, with their range.
  const paired = <R extends { round: number; target: Target }>(runs: readonly R[], value: (r: R) => number, ref: Target): string => {
    const rs: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const hub = runs.find((r) => r.round === round && r.target === 'hub');
      const other = runs.find((r) => r.round === round && r.target === ref);
      if (hub && other) rs.push(value(hub) / value(other));
    }
    if (!rs.length) return '-';
    return rs.length === 1 ? fmt(rs[0], 2) : `${fmt(median(rs), 2)} (${fmt(Math.min(...rs), 2)}–${fmt(Math.max(...rs), 2)})`;
  };
  const hRate = (r: HttpRun): number => r.result.requests / r.result.elapsedMs;
  const wRate = (r: WsRun): number => r.result.messages / r.result.elapsedMs;
  const has = (t: Target): boolean => o.targets.includes(t);
  const row = <R extends { round: number; target: Target }>(name: string, runs: readonly R[], value: (r: R) => number, better: string, withDirect = true): string[] => [
    name,
    has('chp') ? paired(runs, value, 'chp') : '-',
    has('floor') ? paired(runs, value, 'floor') : '-',
    withDirect && has('direct') ? paired(runs, value, 'direct') : '-',
    better,
  ];
  const ratios = [
    row('HTTP requests/s', http, hRate, 'higher is better'),
    row('HTTP p50', http, (r) => r.result.latency.p50Us, 'lower is better'),
    row('HTTP p99', http, (r) => r.result.latency.p99Us, 'lower is better'),
    row('HTTP proxy CPU/request', http, (r) => proxyCpuUs(r.target, r.cpu) / r.result.requests, 'lower is better', false),
    row('WS round trips/s', ws, wRate, 'higher is better'),
    row('WS p50', ws, (r) => r.result.latency.p50Us, 'lower is better'),
    row('WS p99', ws, (r) => r.result.latency.p99Us, 'lower is better'),
    row('WS proxy CPU/round trip', ws, (r) => proxyCpuUs(r.target, r.cpu) / r.result.messages, 'lower is better', false),
  ];
  const snap = (name: string, s: ProcessSnapshot): string[] => [name, String(s.fds), String(s.openWebSockets), fmt(s.rssMb, 1), fmt(s.heapUsedMb, 1)];
  const churnRows = [snap('before', churn.baseline), snap('after', churn.after), snap(churn.gcAvailable ? 'after GC' : 'after (no GC available)', churn.afterGc)];

  const load = (l: number[]): string => l.map((x) => fmt(x, 2)).join(' ');
  return [
    `Upstream: ${o.upstream === 'stub' ? 'the stand-in (bench/stub-upstream.ts)' : 'a real Jupyter server'}. Machine: ${machine.cores} cores (${machine.cpuModel}), node ${machine.node}; load average before ${load(machine.loadBefore)}, after ${load(machine.loadAfter)}.`,
    '',
    `### HTTP: \`GET /user/NAME/api/status\`, ${o.connections} keep-alive connections, ${o.rounds} rounds × ${o.seconds} s per target (after ${o.warmup} s warm-up each)`,
    '',
    markdownTable(['target', 'requests/s', 'p50', 'p99', 'proxy CPU µs/req', `${upstream} CPU µs/req`, 'new upstream TCP conns'], httpRows),
    '',
    'Rates pool all rounds; p50, p99 and CPU per request are the median of the rounds. Per round, in the order run:',
    '',
    markdownTable(
      ['round', 'target', 'requests/s', 'p50', 'p99'],
      http.map((r) => [String(r.round + 1), label[r.target], fmt(r.result.requests / (r.result.elapsedMs / 1000), 0), ms(r.result.latency.p50Us), ms(r.result.latency.p99Us)]),
    ),
    '',
    o.upstream === 'stub'
      ? `### WebSocket: a 52-byte text frame → its echo, sequential, ${o.rounds} rounds × ${o.wsCount} per target`
      : `### WebSocket: \`${o.wsMessage === 'execute' ? 'execute_request' : 'kernel_info_request'}\` → its reply on the shell channel, sequential, ${o.rounds} rounds × ${o.wsCount} per target`,
    '',
    markdownTable(['target', 'round trips/s', 'p50', 'p99', 'proxy CPU µs/round trip'], wsRows),
    '',
    `### Ratios (oerhub proxy ÷ reference): median of the ${o.rounds} per-round ratios (range)`,
    '',
    markdownTable(['metric', 'hub / CHP', 'hub / floor', 'hub / direct', ''], ratios),
    '',
    `### Hub process around ${churn.result.opened} WebSocket opens and closes through the hub (\`api/events/subscribe\`, ${o.churnBatch} at a time)`,
    '',
    markdownTable(['when', 'open fds', 'tracked WebSockets', 'RSS MB', 'heapUsed MB'], churnRows),
    '',
    `Peak open fds during the churn: ${churn.peakFds}. Failed opens: ${churn.result.failed}. Took ${fmt(churn.result.elapsedMs / 1000, 1)} s.`,
    '',
    `Verdict: ${churn.flat ? 'FLAT' : 'NOT FLAT'}: ${churn.why}.`,
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function setUp(o: Options, tmp: string, logFile: string, close: { hub?: Hub; chp?: ChildProcess; floor?: ChildProcess }): Promise<Setup> {
  const config = loadConfig({
    overrides: {
      port: 0,
      dataDir: path.join(tmp, 'data'),
      notebookVenv: notebookVenv(),
      adminPassword: ADMIN_PASSWORD,
      logLevel: 'warn',
      stopServersOnExit: true,
      // No warm pool: its servers would start (and cost CPU) during the measurements.
      poolSize: 0,
    },
  });
  // Our own logger at warn: test/helpers' startTestHub logs at debug whatever logLevel says.
  const log = pino({ level: 'warn' }, pino.destination({ dest: logFile, sync: false, append: true }));
  const stub = o.upstream === 'stub' ? new StubSpawner() : undefined;
  const hub = await createHub(config, { log, spawner: stub });
  close.hub = hub;
  await createUsers(hub, { [USER]: PASSWORD });
  const client = await signInAndStart(hub, USER, PASSWORD);
  const user = await hub.users.get(USER);
  if (!user) throw new Error(`no user ${USER}`);
  const escapedName = user.escapedName;
  const route = hub.routes.get(escapedName);
  if (!route) throw new Error(`the hub has no route for ${escapedName}`);
  let jupyterPid: number;
  let kernelId: string | undefined;
  if (stub) {
    jupyterPid = stub.pidOn(Number(route.target.port));
  } else {
    jupyterPid = (JSON.parse(fs.readFileSync(path.join(config.dataDir, 'servers', `${escapedName}.json`), 'utf8')) as { pid: number }).pid;
    // Jupyter sets _xsrf on its pages; the kernel start below needs it, and a browser would send it along.
    await xsrfToken(client, escapedName);
    kernelId = await startKernel(client, escapedName);
  }
  const jupyterPort = Number(route.target.port);
  const { chp, port: chpPort } = await startChp(jupyterPort, escapedName, logFile.replace(/\.log$/, '-chp.log'));
  close.chp = chp;
  const { child: floor, port: floorPort } = await forkListening('floor-proxy.ts', [route.target.origin, String(config.proxyMaxSockets)], logFile.replace(/\.log$/, '-floor.log'), o.profileDir);
  close.floor = floor;
  const hubPort = Number(new URL(hub.url).port);
  return { hub, client, escapedName, hubPort, jupyterPort, jupyterPid, authorization: route.authorization, chpPort, chp, floorPort, floor, kernelId };
}

async function deleteKernel(s: Setup): Promise<void> {
  if (!s.kernelId) return;
  const xsrf = await xsrfToken(s.client, s.escapedName);
  const res = await s.client.request('DELETE', `/user/${s.escapedName}/api/kernels/${s.kernelId}`, { headers: { 'x-xsrftoken': xsrf, accept: 'application/json' } });
  if (res.status !== 204) console.warn(`deleting the kernel answered ${res.status}`);
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-bench-'));
  // The local spawner's per-server accounts must pass through to their homes under data/.
  fs.chmodSync(tmp, 0o711);
  const logFile = path.join(tmp, 'hub.log');
  let failed = false;
  const owned: { hub?: Hub; chp?: ChildProcess; floor?: ChildProcess } = {};
  let setup: Setup | undefined;
  let worker: Worker | undefined;
  let interrupted = false;
  const onSignal = (): void => {
    // A second Ctrl-C while cleaning up: give up at once.
    if (interrupted) process.exit(130);
    interrupted = true;
    failed = true;
    console.error('interrupted: cleaning up');
    void cleanUpOnce().then(() => process.exit(130));
  };
  const cleanUp = async (): Promise<void> => {
    if (setup) await deleteKernel(setup).catch((err: Error) => console.warn(`could not delete the kernel: ${err.message}`));
    await worker?.close().catch(() => undefined);
    await stopChild(owned.chp, 3000).catch(() => undefined);
    await stopChild(owned.floor, 3000).catch(() => undefined);
    await owned.hub?.close().catch((err: Error) => console.warn(`hub.close: ${err.message}`));
    // Logs are kept only when something went wrong.
    if (failed) {
      fs.rmSync(path.join(tmp, 'data'), { recursive: true, force: true });
      console.error(`logs of the hub and CHP kept in ${tmp}`);
    } else {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  };
  // One cleanup, awaited by whoever finishes first (a signal or main), so nobody exits mid-way.
  let cleaning: Promise<void> | undefined;
  const cleanUpOnce = (): Promise<void> => (cleaning ??= cleanUp());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
    // Other work on the machine skews every target; the load average says how busy it was.
    const loadBefore = os.loadavg();
    console.log(`oerhub proxy benchmark: node ${process.version}, ${os.availableParallelism()} cores (${cpuModel}), working in ${tmp}`);
    if (!(globalThis as { gc?: unknown }).gc) console.log('note: run with node --expose-gc to judge the heap after the WebSocket churn');
    console.log(`starting the hub, ${o.upstream === 'stub' ? 'the stand-in upstream' : 'a Jupyter server, a kernel'}, the floor proxy and configurable-http-proxy...`);
    setup = await setUp(o, tmp, logFile, owned);
    worker = new Worker();
    console.log(
      `hub :${setup.hubPort}, CHP :${setup.chpPort} (pid ${setup.chp.pid ?? '?'}), floor :${setup.floorPort} (pid ${setup.floor.pid ?? '?'}), ` +
        `${o.upstream === 'stub' ? 'stand-in' : 'Jupyter'} :${setup.jupyterPort} (pid ${setup.jupyterPid}), load generator pid ${worker.pid}`,
    );

    console.log('\nHTTP load');
    const http = await measureHttp(setup, worker, o);
    console.log('\nWebSocket round trips');
    const ws = await measureWs(setup, worker, o);
    console.log('\nWebSocket churn through the hub');
    const churn = await measureChurn(setup, worker, o);

    const md = report(o, { cores: os.availableParallelism(), cpuModel, node: process.version, loadBefore, loadAfter: os.loadavg() }, http, ws, churn);
    console.log(`\n## Results\n\n${md}\n`);
    failed = !churn.flat;
    return churn.flat ? 0 : 1;
  } catch (err) {
    // After a signal, failures are just the cleanup pulling things away.
    if (!interrupted) console.error(`benchmark failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    failed = true;
    return 1;
  } finally {
    await cleanUpOnce();
  }
}

// Exit explicitly: an HTTP keep-alive socket in the helpers' fetch must not hold the process open.
void main().then((code) => process.exit(code));
