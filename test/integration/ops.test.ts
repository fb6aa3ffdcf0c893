import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pino from 'pino';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { loadConfig, type ConfigKey } from '../../server/config/index.js';
import { createHub, type Hub, type HubOptions } from '../../server/index.js';
import { FailingSpawner } from '../helpers/fake-spawners.js';
import { createLogger } from '../../server/log.js';
import { ADMIN_PASSWORD, TEST_COOKIE_SECRET, createUsers, removeServerAccounts, signInAndStart, tempDataDir } from '../helpers/hub.js';
import { HubClient } from '../helpers/client.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/hub-process.js';
import { notebookVenv } from '../helpers/venv.js';

/*
 * What the people who run the hub see of it: a Prometheus scrape, health checks for a load
 * balancer, and log files that keep no secret. Hubs here log through the hub's own logger
 * (createLogger: its redaction), into test-output/<label>.log.
 */

const OUTPUT = path.resolve(__dirname, '../../test-output');

interface OpsHub {
  hub: Hub;
  logFile: string;
  close(): Promise<void>;
}

async function startOpsHub(label: string, overrides: Partial<Record<ConfigKey, unknown>> = {}, options: Omit<HubOptions, 'log'> = {}): Promise<OpsHub> {
  fs.mkdirSync(OUTPUT, { recursive: true });
  const dataDir = tempDataDir(label);
  const logFile = path.join(OUTPUT, `${label}.log`);
  fs.rmSync(logFile, { force: true });
  const config = loadConfig({
    overrides: {
      port: 0,
      dataDir,
      notebookVenv: notebookVenv(),
      adminPassword: ADMIN_PASSWORD,
      // The most talkative level: whatever a part logs, a secret must not be in it.
      logLevel: 'trace',
      stopServersOnExit: true,
      poolSize: 0,
      ...(overrides.store === 'redis' ? { cookieSecret: TEST_COOKIE_SECRET } : {}),
      ...overrides,
    },
  });
  const hub = await createHub(config, { ...options, log: createLogger(config.logLevel, pino.destination({ dest: logFile, sync: true })) });
  return {
    hub,
    logFile,
    close: async () => {
      await hub.close();
      removeServerAccounts(dataDir);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Families = ReturnType<typeof parsePrometheusTextFormat>;

/** Scrape /hub/metrics as the given client, check it is well-formed Prometheus text, and parse it. */
async function scrape(client: HubClient): Promise<Families & { text: string }> {
  const res = await client.get('/hub/metrics', { accept: 'text/plain' });
  assert.equal(res.status, 200, res.body.slice(0, 300));
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  // Every sample line is NAME{LABELS} VALUE, and every family has HELP and TYPE (what Prometheus requires).
  for (const line of res.body.split('\n').filter((l) => l && !l.startsWith('#'))) {
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?([0-9.e+-]+|\+Inf|NaN)$/, `not a Prometheus sample line: ${line}`);
  }
  const families = parsePrometheusTextFormat(res.body);
  assert.ok(families.length > 5);
  for (const f of families) assert.ok(f.help && f.type, `${f.name} has HELP and TYPE`);
  return Object.assign(families, { text: res.body });
}

/** A histogram's count for one label set, read from its _count line (the parser drops histograms' labels). */
function histogramCount(scraped: { text: string }, name: string, labels: string): number | undefined {
  const line = scraped.text.split('\n').find((l) => l.startsWith(`${name}_count${labels} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

function sample(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.find((f) => f.name === name);
  const s = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!s) return undefined;
  return Number(s.value ?? s.count);
}

describe('operating the hub: metrics, health checks and logs', function () {
  this.timeout(180_000);
  let running: OpsHub | undefined;
  let redis: TestRedis | undefined;

  afterEach(async () => {
    await running?.close();
    running = undefined;
    await redis?.stop();
    redis = undefined;
  });

  it('an admin scrapes /hub/metrics as Prometheus text; the running-servers gauge, spawns, sign-ins and proxy counts move when a student starts a server; others get 401 or 403', async () => {
    running = await startOpsHub('ops-metrics');
    const { hub } = running;
    await createUsers(hub, { 'opsmia': 'opsmia-password' });

    // Signed out: 401; a student: 403. Neither sees a number.
    const anonymous = await new HubClient(hub.url).get('/hub/metrics', { accept: 'application/json' });
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(anonymous.body, /oerhub_/);
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);

    const before = await scrape(admin);
    assert.equal(sample(before, 'oerhub_servers', { state: 'running' }), 0);
    assert.equal(histogramCount(before, 'oerhub_spawn_duration_seconds', '{outcome="ready"}') ?? 0, 0);
    const signInsBefore = sample(before, 'oerhub_sign_ins_total', { method: 'local' }) ?? 0;
    assert.ok(signInsBefore >= 1, 'the admin\'s own sign-ins are counted');
    assert.equal(sample(before, 'oerhub_pool_servers', { state: 'ready' }), 0);

    const mia = await signInAndStart(hub, 'opsmia', 'opsmia-password');
    const student = await mia.get('/hub/metrics', { accept: 'application/json' });
    assert.equal(student.status, 403);
    assert.doesNotMatch(student.body, /oerhub_/);
    assert.equal((await mia.get('/user/opsmia/api/status', { accept: 'application/json' })).status, 200);

    const after = await scrape(admin);
    assert.equal(sample(after, 'oerhub_servers', { state: 'running' }), 1);
    assert.equal(histogramCount(after, 'oerhub_spawn_duration_seconds', '{outcome="ready"}'), 1);
    assert.equal(sample(after, 'oerhub_sign_ins_total', { method: 'local' }), signInsBefore + 1);
    assert.ok((sample(after, 'oerhub_proxy_requests_total', { status_class: '2xx' }) ?? 0) >= 1, 'the proxied request is counted');
    assert.ok((histogramCount(after, 'oerhub_proxy_request_duration_seconds', '') ?? 0) >= 1);
    assert.equal(sample(after, 'oerhub_proxy_websockets_open'), 0);

    // Stopped: the gauge goes back down.
    await hub.manager.stop((await hub.users.get('opsmia'))!);
    assert.equal(sample(await scrape(admin), 'oerhub_servers', { state: 'running' }), 0);
    // No user name ever becomes a label: cardinality stays bounded however many students come.
    const text = (await admin.get('/hub/metrics')).body;
    assert.doesNotMatch(text, /opsmia/);
  });

  it('a start that fails is counted by its reason, and a server the culler stops by the culler\'s reason', async () => {
    // A spawner whose first start fails (a broken image, as a student would be told); the culler stops servers 1 s after their start.
    running = await startOpsHub('ops-metrics-fail', { cullerMaxAgeS: 1 }, { spawner: new FailingSpawner(1), hasBusyKernel: async () => false });
    const { hub } = running;
    await createUsers(hub, { opsfay: 'opsfay-password' });
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const fay = (await hub.users.get('opsfay'))!;
    const startAndSettle = async (): Promise<string> => {
      await hub.manager.start(fay);
      let state = 'starting';
      await eventually('the start ends', async () => (state = (await hub.manager.state(fay)).state) !== 'starting', 30_000, 20);
      return state;
    };

    assert.equal(await startAndSettle(), 'failed');
    let m = await scrape(admin);
    assert.equal(sample(m, 'oerhub_spawn_failures_total', { reason: 'SPAWN_FAILED' }), 1);
    assert.equal(histogramCount(m, 'oerhub_spawn_duration_seconds', '{outcome="failed"}'), 1);
    assert.equal(sample(m, 'oerhub_servers', { state: 'failed' }), 1);

    assert.equal(await startAndSettle(), 'running');
    await eventually('the culler stops it at its maximum age', async () => (await hub.persistentCuller.cullOnce()).length === 1, 30_000, 250);
    m = await scrape(admin);
    assert.equal(sample(m, 'oerhub_culls_total', { kind: 'persistent', reason: 'max-age' }), 1);
    assert.equal(sample(m, 'oerhub_servers', { state: 'running' }), 0);
    assert.equal(sample(m, 'oerhub_spawn_failures_total', { reason: 'SPAWN_FAILED' }), 1, 'the later success is not a failure');
  });

  it('with its Redis stopped, liveness still answers 200 and readiness 503 naming the store; once Redis is back, ready again', async () => {
    redis = await startRedis();
    running = await startOpsHub('ops-health', { store: 'redis', redisUrl: redis.url });
    const { hub } = running;
    const get = async (p: string): Promise<{ status: number; body: Record<string, string> }> => {
      const res = await fetch(`${hub.url}${p}`);
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    assert.deepEqual(await get('/hub/health/live'), { status: 200, body: { status: 'ok' } });
    assert.deepEqual(await get('/hub/health/ready'), { status: 200, body: { status: 'ok', store: 'ok', servers: 'ok', shutdown: 'no' } });
    assert.equal((await get('/hub/health')).status, 200);

    await redis.stop();
    assert.deepEqual(await get('/hub/health/live'), { status: 200, body: { status: 'ok' } });
    const ready = await get('/hub/health/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.store, 'unavailable');
    assert.equal(ready.body.servers, 'ok');
    // The old address keeps its meaning (the store check) for monitors set up before the split.
    assert.equal((await get('/hub/health')).status, 503);
    // The outage shows in the metrics (read in-process: signing in needs the store): store errors
    // counted, and no server counts at all rather than zeros that would read as "all stopped".
    const during = (await hub.metrics.exposition()).body;
    const errors = /^oerhub_store_errors_total\{operation="ping"\} (\d+)$/m.exec(during);
    assert.ok(errors && Number(errors[1]) >= 1, 'failed pings are counted');
    assert.doesNotMatch(during, /^oerhub_servers\{/m);

    await redis.restart();
    await eventually('the hub is ready again', async () => (await get('/hub/health/ready')).status === 200, 60_000, 250);
    assert.equal((await get('/hub/health/live')).status, 200);
  });

  it('a sign-in with a password and requests with an Authorization header, a session cookie and ?token= leave no secret in the log; each request line carries the id sent back in X-Request-Id', async () => {
    const socketDir = tempDataDir('ops-door');
    const socketPath = path.join(socketDir, 'hub.sock');
    try {
      running = await startOpsHub('ops-logs', { frontDoorSocket: socketPath });
      const { hub, logFile } = running;
      const password = 'opslou-Secret-Passw0rd';
      await createUsers(hub, { 'opslou': password });
      const lou = await signInAndStart(hub, 'opslou', password);
      const sessionCookie = lou.cookie('oerhub-session')?.value;
      assert.ok(sessionCookie, 'the browser has a session cookie');
      // A token the hub never made: refused on the API and on the proxy (never a fall-back to the
      // session cookie sent with it), and, like any secret, never logged.
      const token = 'oh_3f9a1c0d2b7e4a5f9c8d7e6f5a4b3c2d3f9a1c0d2b7e';
      const me = await lou.get('/hub/api/user', { accept: 'application/json', authorization: `token ${token}` });
      assert.equal(me.status, 403);
      assert.equal((await lou.get('/user/opslou/api/status', { accept: 'application/json', authorization: `Bearer ${token}` })).status, 403);
      const queryToken = 'qtok-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
      await lou.get(`/hub/home?token=${queryToken}`);
      // A failed sign-in is logged too (a warning): with the password typed, still not in the log.
      const wrong = 'opslou-Wrong-Passw0rd';
      assert.notEqual((await new HubClient(hub.url).login('opslou', wrong)).status, 303);

      // Request ids: a new one per request, sent back; X-Request-Id from the TCP port is anyone's
      // say-so and ignored; through the front door (nginx) it is kept, so both logs line up.
      const home = await lou.get('/hub/home');
      const id = home.headers.get('x-request-id');
      assert.match(id ?? '', /^[0-9a-f-]{36}$/);
      const forged = await lou.get('/hub/home', { 'x-request-id': 'forged-by-a-notebook-0001' });
      assert.notEqual(forged.headers.get('x-request-id'), 'forged-by-a-notebook-0001');
      const viaDoor = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get({ socketPath, path: '/hub/login', headers: { host: 'hub.example.org', 'x-request-id': 'nginx-4d3c2b1a0f9e8d7c' } }, resolve);
        req.on('error', reject);
      });
      viaDoor.resume();
      assert.equal(viaDoor.headers['x-request-id'], 'nginx-4d3c2b1a0f9e8d7c');
      const badId = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get({ socketPath, path: '/hub/login', headers: { host: 'hub.example.org', 'x-request-id': 'bad id\twith "quotes"' } }, resolve);
        req.on('error', reject);
      });
      badId.resume();
      assert.match(String(badId.headers['x-request-id']), /^[0-9a-f-]{36}$/);

      const log = fs.readFileSync(logFile, 'utf8');
      for (const secret of [password, wrong, token, queryToken, sessionCookie!, decodeURIComponent(sessionCookie!)]) assert.ok(!log.includes(secret), `the log contains a secret: ${secret.slice(0, 12)}…`);
      assert.ok(!log.includes(TEST_COOKIE_SECRET));
      const lines = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { req?: { id?: string; url?: string }; msg?: string });
      // Not vacuous: the requests were logged, each with its id.
      const homeLine = lines.find((l) => l.req?.id === id);
      assert.equal(homeLine?.req?.url, '/hub/home');
      assert.ok(lines.some((l) => l.req?.url === '/hub/home?token=[redacted]'), 'the query string is logged by parameter name only');
      assert.ok(lines.some((l) => l.req?.id === 'nginx-4d3c2b1a0f9e8d7c'));
      const logins = lines.filter((l) => l.req?.url === '/hub/login' && l.req?.id);
      assert.ok(logins.length >= 2);
    } finally {
      await running?.close();
      running = undefined;
      fs.rmSync(socketDir, { recursive: true, force: true });
    }
  });
});
