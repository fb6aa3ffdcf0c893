import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Hub } from '../../server/index.js';
import { isAnonymousEscapedName } from '../../server/names.js';
import { CookieJar, HubClient } from '../helpers/client.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { createUsers, removeServerAccounts, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor, waitForReadyPool } from '../helpers/try.js';

/** A browser's cookies are per host, not per port: one jar for both hubs on 127.0.0.1. */
class SharedJarClient extends HubClient {
  override readonly jar: CookieJar;
  constructor(baseUrl: string, jar: CookieJar) {
    super(baseUrl);
    this.jar = jar;
  }
}

describe('two hub processes on one Redis', function () {
  this.timeout(180_000);
  let redis: TestRedis;
  let dataDir: string;
  let a: Hub | undefined;
  let b: Hub | undefined;

  before(async function () {
    redis = await startRedis();
    // One machine, one data folder (homes, server logs), as two hub processes behind one nginx would have.
    dataDir = tempDataDir('two-hubs');
    const shared = { store: 'redis', redisUrl: redis.url, redisKeyPrefix: 'two-hubs:', dataDir, poolSize: 1, leaderLockTtlMs: 3000 };
    // Hub A must not stop B's servers when it closes first; B (the last one) stops them all.
    a = await startTestHub('two-hubs-a', { ...shared, stopServersOnExit: false });
    b = await startTestHub('two-hubs-b', shared);
    await createUsers(a, { stu: 'stu-password' });
  });

  after(async function () {
    await a?.close();
    await b?.close();
    await redis?.stop();
    // The data folder is ours, not the helper's: so are the Unix accounts a root hub made in it.
    removeServerAccounts(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('run the warm pool from one of them only: with poolSize 1 there is exactly one ready server, routed by both', async function () {
    assert.equal([a!, b!].filter((h) => h.leader.isLeader()).length, 1, 'exactly one hub process leads');
    await waitForReadyPool(a!, 1);
    // A few more leader renewals: a second refill would have started a second server by now.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const hub of [a!, b!]) {
      const status = await hub.pool.status();
      assert.equal(status.ready + status.starting, 1, 'one warm server, not one per hub process');
      const anonymous = hub.routes.list().filter((r) => isAnonymousEscapedName(r.escapedName));
      assert.equal(anonymous.length, 1, 'both hub processes route the one warm server');
    }
  });

  it('let a student sign in on one, start a server on the other, and work through either; sign-out on one closes WebSockets on the other', async function () {
    const jar = new CookieJar();
    const onA = new SharedJarClient(a!.url, jar);
    const onB = new SharedJarClient(b!.url, jar);
    assert.equal((await onA.login('stu', 'stu-password')).status, 303, 'signed in on A');
    // The sign-in made on A is good on B.
    const homeOnB = await onB.get('/hub/home');
    assert.equal(homeOnB.status, 200);
    assert.match(homeOnB.body, /stu/);

    await onB.get('/hub/spawn');
    await waitForReady(onB, 'stu');
    // B hands the sign-in over to stu's own origin; that origin's cookie is good on A too.
    const { handoff } = await onB.openServer('/lab');
    assert.equal(handoff?.status, 302);
    assert.ok(new URL(handoff?.location ?? '', 'http://x').pathname.startsWith('/user/stu/'), String(handoff?.location));

    // The server started through B is served through both.
    for (const client of [onA, onB]) {
      const status = await client.get('/user/stu/api/status', { accept: 'application/json' });
      assert.equal(status.status, 200, `api/status through ${client.baseUrl}`);
      assert.ok('started' in (JSON.parse(status.body) as object), 'Jupyter answered');
    }
    const homeOnA = await onA.get('/hub/home');
    assert.match(homeOnA.body, /Running\./, 'the home page on A says the server runs');
    assert.match(homeOnA.body, /Open JupyterLab/);

    // A kernel started through A, its WebSocket through B, and one through A.
    const kernelId = await startKernel(onA, 'stu');
    const socketOnB = await KernelSocket.open(onB, 'stu', kernelId);
    assert.equal(await socketOnB.execute('print(6*7)'), '42\n');
    const socketOnA = await KernelSocket.open(onA, 'stu', kernelId);
    assert.equal(await socketOnA.execute('print("hello from A")'), 'hello from A\n');

    const home = await onA.get('/hub/home');
    const out = await onA.request('POST', '/hub/logout', { form: { _csrf: HubClient.csrfFrom(home.body) } });
    assert.equal(out.status, 200, 'signed out on A');
    // Bounded so a missed revocation fails the test instead of hanging it; not a speed check.
    const closed = await Promise.race([socketOnB.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000).unref())]);
    assert.ok(closed, 'the WebSocket through B closed after sign-out on A');
    await socketOnA.closed;
    const after = await onB.get('/user/stu/api/status', { accept: 'application/json' });
    assert.notEqual(after.status, 200, 'B no longer lets the signed-out session in');
  });

  it('hand the pool over when the leading hub process goes away', async function () {
    const [leader, other] = a!.leader.isLeader() ? [a!, b!] : [b!, a!];
    assert.equal(leader, a, 'the first hub to start leads');
    await leader.close();
    a = undefined;
    await waitFor('the other hub process to lead', async () => other.leader.isLeader(), (v) => v, 60_000, 100);
    // The new leader keeps the live warm server rather than starting another.
    await waitForReadyPool(other, 1);
    const status = await other.pool.status();
    assert.equal(status.ready + status.starting, 1);
  });
});

describe('two hub processes on one Redis: sign-in limits', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];

  before(async function () {
    redis = await startRedis();
    // Hubs of their own, with no earlier failure from this address: the window starts with the test.
    for (const label of ['two-hubs-limit-a', 'two-hubs-limit-b']) hubs.push(await startTestHub(label, { store: 'redis', redisUrl: redis.url, redisKeyPrefix: 'two-hubs-limit:' }));
  });

  after(async function () {
    for (const hub of hubs.reverse()) await hub.close();
    await redis?.stop();
  });

  it('count the failed sign-ins of one address across both (loginAddressFailureLimit)', async function () {
    const limit = hubs[0]!.config.loginAddressFailureLimit;
    // Alternating, each hub sees half of them: were the counts per process, neither would refuse
    // the next attempt. Distinct names, so only the per-address count (not the per-user one) fills.
    const clients = await Promise.all(
      hubs.map(async (hub) => {
        const client = new HubClient(hub.url);
        const page = await client.get('/hub/login');
        return { client, csrf: HubClient.csrfFrom(page.body) };
      }),
    );
    const attempt = async (i: number): Promise<number> => {
      const { client, csrf } = clients[i % 2]!;
      return (await client.request('POST', '/hub/login', { form: { _csrf: csrf, username: `nobody-${i}`, password: 'wrong-password' } })).status;
    };
    const statuses: number[] = [];
    for (let i = 0; i < limit; i++) statuses.push(await attempt(i));
    assert.ok(!statuses.includes(429), `the first ${limit} failures are answered, not refused: ${statuses.join(' ')}`);
    assert.equal(await attempt(limit), 429, 'then refused by one hub');
    assert.equal(await attempt(limit + 1), 429, 'and by the other');
  });
});
