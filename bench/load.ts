/**
 * A load run through nginx: N students, each in a browser-like client of their own, against the
 * real hub program (`node dist/server/main.js`, local spawner, real Jupyter servers) behind a
 * real nginx with the shipped nginx/oerhub.conf (TLS, user origins on NAME.localhost). Each
 * student signs in, starts their server, opens a notebook in JupyterLab, runs a cell over the
 * kernel's WebSocket, idles (JupyterLab's polling), and leaves (shuts the kernel down, stops the
 * server, signs out). Arrivals are spread over --ramp seconds, as a class that starts together.
 *
 *   npm run bench:load                                    (or)
 *   npm run build && node --import tsx bench/load.ts [--students=25,50,100] [--ramp=20]
 *        [--idle=10] [--poll=2] [--step-timeout=240] [--max-seconds=900]
 *
 * Reports, per level, successes, errors and p50/p95/p99 per step. Asserts nothing about speed.
 * Bounded: at most 200 students a level, each step has a timeout, each level a deadline after
 * which nobody new starts; everything is stopped and removed at the end (also on Ctrl-C). All
 * traffic is to 127.0.0.1 (NAME.localhost resolves there inside the client).
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { CookieJar, HubClient, localhostLookup } from '../test/helpers/client.js';
import { ADMIN_PASSWORD, removeServerAccounts } from '../test/helpers/hub.js';
import { hubEnv, reapDataDir, startHubProcess, stopHubProcess, type HubProcess } from '../test/helpers/hub-process.js';
import { spawnSync } from 'node:child_process';
import { frontDoorPath, startNginx, type TestNginx } from '../test/helpers/nginx.js';
import { freePort } from '../test/helpers/ports.js';

const STEPS = ['sign in', 'start server', 'open notebook', 'run a cell', 'idle poll', 'leave'] as const;
type Step = (typeof STEPS)[number];
const PASSWORD = 'load-password-123';
const MAX_STUDENTS = 200;

interface Options {
  levels: number[];
  rampS: number;
  idleS: number;
  pollS: number;
  stepTimeoutS: number;
  maxSeconds: number;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { levels: [25, 50, 100], rampS: 20, idleS: 10, pollS: 2, stepTimeoutS: 240, maxSeconds: 900 };
  for (const arg of argv) {
    const [flag, value = ''] = arg.split('=');
    if (flag === '--students') {
      o.levels = value.split(',').map(Number);
      if (!o.levels.length || o.levels.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_STUDENTS)) throw new Error(`--students takes a list of whole numbers from 1 to ${MAX_STUDENTS}`);
      continue;
    }
    const key = ({ '--ramp': 'rampS', '--idle': 'idleS', '--poll': 'pollS', '--step-timeout': 'stepTimeoutS', '--max-seconds': 'maxSeconds' } as const)[flag];
    const n = Number(value);
    if (!key || !Number.isFinite(n) || n < 0) throw new Error(`unknown or bad option ${arg}; known: --students=25,50,100 --ramp=S --idle=S --poll=S --step-timeout=S --max-seconds=S`);
    o[key] = n;
  }
  // Bounded whatever is asked for: this runs on shared 2-core machines.
  o.maxSeconds = Math.min(o.maxSeconds, 1800);
  o.stepTimeoutS = Math.min(Math.max(o.stepTimeoutS, 5), 600);
  o.idleS = Math.min(o.idleS, 300);
  o.pollS = Math.max(o.pollS, 0.5);
  return o;
}

// ---------------------------------------------------------------- a student's browser

interface Reply {
  status: number;
  body: string;
  location: string | null;
}

/**
 * One student's browser behind nginx: a cookie jar (host-only, path-scoped), keep-alive
 * connections (as a browser keeps them), the hub on https://127.0.0.1:PORT and the student's
 * server on https://NAME.localhost:PORT.
 */
class Browser {
  readonly jar = new CookieJar();
  private readonly agent: https.Agent;
  private readonly port: string;

  constructor(private readonly nginx: TestNginx) {
    this.port = new URL(nginx.url).port;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 6 });
  }

  private tlsOptions(): https.RequestOptions {
    // NAME.localhost resolves to 127.0.0.1; the test certificate is made for 127.0.0.1.
    return { ca: this.nginx.ca, lookup: localhostLookup, checkServerIdentity: (_host, cert) => tls.checkServerIdentity('127.0.0.1', cert) };
  }

  urlFor(p: string): URL {
    if (/^https:\/\//.test(p)) return new URL(p);
    const m = /^\/user\/([^/?#]+)/.exec(p);
    return new URL(p, m ? `https://${m[1]}.localhost:${this.port}` : this.nginx.url);
  }

  request(method: string, p: string, init: { headers?: Record<string, string>; form?: Record<string, string>; json?: unknown } = {}): Promise<Reply> {
    const url = this.urlFor(p);
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    const cookie = this.jar.header(url.pathname, url.hostname);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] = 'application/json';
    }
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.agent, ...this.tlsOptions() }, (res) => {
        for (const line of res.headers['set-cookie'] ?? []) this.jar.store(line, url.pathname, url.hostname);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, location: (res.headers.location as string | undefined) ?? null }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  get(p: string, headers?: Record<string, string>): Promise<Reply> {
    return this.request('GET', p, { headers });
  }

  cookie(name: string): string | undefined {
    return this.jar.find(name)?.value;
  }

  websocket(p: string): Promise<WebSocket> {
    const url = this.urlFor(p);
    const ws = new WebSocket(url.href.replace(/^https/, 'wss'), { ...this.tlsOptions(), perMessageDeflate: false, headers: { cookie: this.jar.header(url.pathname, url.hostname), origin: url.origin } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function csrfFrom(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no _csrf field in the page');
  return m[1];
}

function expect(r: Reply, status: number | number[], what: string): Reply {
  const ok = Array.isArray(status) ? status.includes(r.status) : r.status === status;
  if (!ok) throw new Error(`${what} answered ${r.status}${r.location ? ` → ${r.location}` : ''}: ${r.body.slice(0, 120).replace(/\s+/g, ' ')}`);
  return r;
}

/** Run code over the kernel's WebSocket; resolves with its stdout once the kernel is idle again. */
function execute(ws: WebSocket, code: string): Promise<string> {
  const msgId = randomUUID();
  const session = randomUUID();
  return new Promise((resolve, reject) => {
    let out = '';
    const onMessage = (data: WebSocket.RawData): void => {
      const msg = JSON.parse(String(data)) as { header: { msg_type: string }; parent_header: { msg_id?: string }; content: Record<string, unknown>; channel: string };
      if (msg.parent_header?.msg_id !== msgId) return;
      if (msg.header.msg_type === 'stream') out += String(msg.content.text ?? '');
      if (msg.header.msg_type === 'error') out += `ERROR ${String(msg.content.ename)}`;
      if (msg.channel === 'iopub' && msg.header.msg_type === 'status' && msg.content.execution_state === 'idle') {
        ws.off('message', onMessage);
        ws.off('close', onClose);
        resolve(out);
      }
    };
    const onClose = (): void => reject(new Error('the kernel socket closed'));
    ws.on('message', onMessage);
    ws.once('close', onClose);
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, username: 'load', session, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        channel: 'shell',
        buffers: [],
      }),
    );
  });
}

// ---------------------------------------------------------------- recording

class Recorder {
  readonly ok = new Map<Step, number[]>(STEPS.map((s) => [s, []]));
  readonly errors = new Map<Step, number>(STEPS.map((s) => [s, 0]));
  readonly firstError = new Map<Step, string>();
  completed = 0;
  notStarted = 0;

  async step<T>(step: Step, timeoutS: number, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const v = await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutS} s`)), timeoutS * 1000);
        }),
      ]);
      this.ok.get(step)!.push(performance.now() - t0);
      return v;
    } catch (err) {
      this.errors.set(step, this.errors.get(step)! + 1);
      if (!this.firstError.has(step)) this.firstError.set(step, err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : Number.NaN;
}

// ---------------------------------------------------------------- one student

async function student(nginx: TestNginx, name: string, o: Options, rec: Recorder): Promise<void> {
  const b = new Browser(nginx);
  const base = `/user/${name}/`;
  let ws: WebSocket | undefined;
  try {
    await rec.step('sign in', o.stepTimeoutS, async () => {
      const page = expect(await b.get('/hub/login'), 200, 'the login page');
      expect(await b.request('POST', '/hub/login', { form: { _csrf: csrfFrom(page.body), username: name, password: PASSWORD } }), 303, 'signing in');
    });
    await rec.step('start server', o.stepTimeoutS, async () => {
      expect(await b.get('/hub/spawn'), [200, 302, 303], 'the spawn page');
      // The progress stream ends once the server is ready (or failed).
      const progress = expect(await b.get(`/hub/api/users/${name}/server/progress`, { accept: 'text/event-stream' }), 200, 'the progress stream');
      const last = progress.body
        .split('\n\n')
        .filter((e) => e.startsWith('data: '))
        .map((e) => JSON.parse(e.slice(6)) as { ready?: boolean; message?: string })
        .at(-1);
      if (!last?.ready) throw new Error(`the server did not start: ${last?.message ?? 'no events'}`);
      // The link into the server: the hub hands the sign-in over to the server's own origin.
      const hub = expect(await b.get('/hub/user-redirect/lab'), 302, 'user-redirect');
      expect(await b.get(hub.location ?? ''), 302, 'the sign-in handoff');
    });
    const { kernelId, sessionId } = await rec.step('open notebook', o.stepTimeoutS, async () => {
      expect(await b.get(`${base}lab`), 200, 'JupyterLab');
      const xsrf = b.cookie('_xsrf');
      if (!xsrf) throw new Error('Jupyter set no _xsrf cookie');
      const headers = { 'x-xsrftoken': xsrf, accept: 'application/json' };
      const nb = { cells: [{ cell_type: 'code', source: 'print(6*7)', metadata: {}, outputs: [], execution_count: null }], metadata: {}, nbformat: 4, nbformat_minor: 5 };
      expect(await b.request('PUT', `${base}api/contents/load.ipynb`, { headers, json: { type: 'notebook', format: 'json', content: nb } }), [200, 201], 'saving the notebook');
      const s = expect(await b.request('POST', `${base}api/sessions`, { headers, json: { path: 'load.ipynb', name: 'load.ipynb', type: 'notebook', kernel: { name: 'python3' } } }), 201, 'opening a kernel session');
      const session = JSON.parse(s.body) as { id: string; kernel: { id: string } };
      return { kernelId: session.kernel.id, sessionId: session.id };
    });
    await rec.step('run a cell', o.stepTimeoutS, async () => {
      ws = await b.websocket(`${base}api/kernels/${kernelId}/channels`);
      const out = await execute(ws, 'print(6*7)');
      if (out.trim() !== '42') throw new Error(`the cell printed ${JSON.stringify(out.slice(0, 80))}`);
    });
    // Idle with the notebook open: JupyterLab polls the server's kernels and sessions.
    const idleUntil = performance.now() + o.idleS * 1000;
    while (performance.now() < idleUntil) {
      await sleep(o.pollS * 1000);
      await rec.step('idle poll', o.stepTimeoutS, async () => {
        expect(await b.get(`${base}api/kernels`, { accept: 'application/json' }), 200, 'polling the kernels');
      });
    }
    await rec.step('leave', o.stepTimeoutS, async () => {
      ws?.close();
      const xsrf = b.cookie('_xsrf') ?? '';
      expect(await b.request('DELETE', `${base}api/sessions/${sessionId}`, { headers: { 'x-xsrftoken': xsrf, accept: 'application/json' } }), 204, 'shutting the kernel down');
      const home = expect(await b.get('/hub/home'), 200, 'the home page');
      expect(await b.request('POST', '/hub/stop', { form: { _csrf: csrfFrom(home.body) } }), 303, 'stopping the server');
      const out = expect(await b.get('/hub/logout'), 200, 'the sign-out page');
      expect(await b.request('POST', '/hub/logout', { form: { _csrf: csrfFrom(out.body) } }), 200, 'signing out');
    });
    rec.completed++;
  } catch {
    // Counted by the step that failed; this student stops there.
  } finally {
    ws?.terminate();
    b.close();
  }
}

// ---------------------------------------------------------------- one level

interface LevelResult {
  students: number;
  rec: Recorder;
  wallS: number;
  loadBefore: number[];
  loadAfter: number[];
  peakLoad: number;
  hubCpuS: number;
}

/** The local spawner's accounts (oh-NAME) of these students that still exist. */
function leftAccounts(names: readonly string[]): string[] {
  if (!names.length) return [];
  const passwd = fs.readFileSync('/etc/passwd', 'utf8');
  const wanted = new Set(names.map((n) => `oh-${n}`));
  return passwd
    .split('\n')
    .map((line) => line.split(':')[0] ?? '')
    .filter((name) => wanted.has(name));
}

function cpuSecondsOf(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function createStudents(hubUrl: string, names: readonly string[]): Promise<void> {
  // Setup, on the hub's own TCP listener (not measured).
  const admin = new HubClient(hubUrl);
  expect(await admin.login('admin', ADMIN_PASSWORD), 303, 'the admin sign-in');
  const me = JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
  for (const name of names) {
    const r = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token, accept: 'application/json' },
      body: JSON.stringify({ name, password: PASSWORD }),
    });
    expect(r, 201, `creating ${name}`);
  }
}

async function runLevel(n: number, o: Options, owned: Owned): Promise<LevelResult> {
  const door = frontDoorPath();
  owned.door = door;
  const nginx = await startNginx({ site: 'oerhub.conf', hubSocket: door.socket });
  owned.nginx = nginx;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-load-'));
  owned.dataDir = dataDir;
  const port = await freePort();
  const hub = await startHubProcess(
    `bench-load-${n}`,
    hubEnv(port, dataDir, { OERHUB_LOG_LEVEL: 'warn', OERHUB_PUBLIC_URL: nginx.url, OERHUB_FRONT_DOOR_SOCKET: door.socket, OERHUB_STOP_SERVERS_ON_EXIT: 'true' }),
  );
  owned.hub = hub;
  // Names of this level only (prx: this bench's tag), so accounts never clash with a test's; letters and digits only, so the escaped name is the name.
  const names = Array.from({ length: n }, (_, i) => `prxl${n}s${String(i + 1).padStart(3, '0')}`);
  owned.names = names;
  await createStudents(`http://127.0.0.1:${port}`, names);

  const rec = new Recorder();
  const loadBefore = os.loadavg();
  let peakLoad = loadBefore[0];
  const loadPoll = setInterval(() => (peakLoad = Math.max(peakLoad, os.loadavg()[0])), 5000);
  const cpu0 = cpuSecondsOf(hub.child.pid);
  const t0 = performance.now();
  const deadline = t0 + o.maxSeconds * 1000;
  try {
    await Promise.all(
      names.map(async (name, i) => {
        await sleep((o.rampS * 1000 * i) / n);
        if (performance.now() > deadline) {
          rec.notStarted++;
          return;
        }
        await student(nginx, name, o, rec);
      }),
    );
  } finally {
    clearInterval(loadPoll);
  }
  const wallS = (performance.now() - t0) / 1000;
  const hubCpuS = cpuSecondsOf(hub.child.pid) - cpu0;
  const loadAfter = os.loadavg();
  await tearDown(owned);
  return { students: n, rec, wallS, loadBefore, loadAfter, peakLoad, hubCpuS };
}

interface Owned {
  /** The students of the level running now (their Unix accounts are oh-NAME). */
  names: string[];
  hub?: HubProcess;
  nginx?: TestNginx;
  door?: { remove(): void };
  dataDir?: string;
}

async function tearDown(owned: Owned): Promise<void> {
  // The hub stops its servers on exit (stopServersOnExit); anything left is killed by pid.
  if (owned.hub) await stopHubProcess(owned.hub, 'SIGTERM').catch(() => undefined);
  owned.hub = undefined;
  if (owned.dataDir) {
    reapDataDir(owned.dataDir);
    // userdel refuses an account whose processes have not exited yet: try again for a while.
    for (let i = 0; i < 10 && leftAccounts(owned.names).length; i++) {
      removeServerAccounts(owned.dataDir);
      if (leftAccounts(owned.names).length) await sleep(500);
    }
    for (const account of leftAccounts(owned.names)) spawnSync('userdel', [account], { stdio: 'ignore' });
    if (leftAccounts(owned.names).length) console.warn(`could not remove the accounts ${leftAccounts(owned.names).join(', ')}`);
    fs.rmSync(owned.dataDir, { recursive: true, force: true });
  }
  owned.names = [];
  owned.dataDir = undefined;
  await owned.nginx?.stop().catch(() => undefined);
  owned.nginx = undefined;
  owned.door?.remove();
  owned.door = undefined;
}

// ---------------------------------------------------------------- report

function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

function levelTable(r: LevelResult): string {
  const rows = STEPS.map((step) => {
    const ok = [...r.rec.ok.get(step)!].sort((a, b) => a - b);
    const s = (ms: number): string => (Number.isFinite(ms) ? `${fmt(ms / 1000)} s` : '-');
    return `| ${step} | ${ok.length} | ${r.rec.errors.get(step)} | ${s(percentile(ok, 0.5))} | ${s(percentile(ok, 0.95))} | ${s(percentile(ok, 0.99))} |`;
  });
  const errors = [...r.rec.firstError].map(([step, e]) => `- first error in "${step}": ${e}`);
  const load = (l: number[]): string => l.map((x) => fmt(x)).join(' ');
  return [
    `### ${r.students} students`,
    '',
    `${r.rec.completed} of ${r.students} went through every step${r.rec.notStarted ? ` (${r.rec.notStarted} not started: deadline)` : ''}, in ${fmt(r.wallS, 0)} s; ` +
      `hub process CPU ${fmt(r.hubCpuS, 1)} s; load average before ${load(r.loadBefore)}, peak (1 min) ${fmt(r.peakLoad)}, after ${load(r.loadAfter)}.`,
    '',
    '| step | ok | errors | p50 | p95 | p99 |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    ...(errors.length ? ['', ...errors] : []),
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const owned: Owned = { names: [] };
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error('interrupted: cleaning up');
    void tearDown(owned).then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  console.log(`oerhub load run through nginx: node ${process.version}, ${os.availableParallelism()} cores, levels ${o.levels.join(', ')}; ramp ${o.rampS} s, idle ${o.idleS} s (poll every ${o.pollS} s)`);
  const results: LevelResult[] = [];
  try {
    for (const n of o.levels) {
      console.log(`\nlevel: ${n} students...`);
      const r = await runLevel(n, o, owned);
      results.push(r);
      console.log(levelTable(r));
    }
  } catch (err) {
    if (!interrupted) console.error(`load run failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    await tearDown(owned);
    return 1;
  }
  console.log(`\n## Results\n\nRamp ${o.rampS} s, idle ${o.idleS} s with a poll every ${o.pollS} s, step timeout ${o.stepTimeoutS} s.\n`);
  for (const r of results) console.log(`${levelTable(r)}\n`);
  return results.every((r) => r.rec.completed === r.students) ? 0 : 1;
}

void main().then((code) => process.exit(code));
