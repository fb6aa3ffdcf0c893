import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type ConfigKey } from '../../server/config/index.js';
import { createHub, type Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { FakeSpawner, Gate } from '../helpers/fake-spawners.js';
import { ADMIN_PASSWORD, TEST_COOKIE_SECRET, createUsers, tempDataDir, waitForReady } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/*
 * The server lifecycle as a student meets it through the hub's pages and real proxy. The
 * servers come from a fake spawner (small real HTTP servers) so that a slow reconcile and a
 * server dying by itself can be arranged exactly; the hub, store and proxy are the real ones.
 */

const OUTPUT = path.resolve(__dirname, '../../test-output');

describe('the server lifecycle through the hub: restarts, clicks during reconcile, servers that die', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];
  const spawners: FakeSpawner[] = [];
  const dataDirs: string[] = [];

  before(async () => {
    redis = await startRedis();
  });

  after(async () => {
    for (const h of hubs.reverse()) await h.close().catch(() => undefined);
    for (const s of spawners) await s.destroy();
    for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
    await redis?.stop();
  });

  function hubConfig(label: string, dataDir: string, overrides: Partial<Record<ConfigKey, unknown>> = {}) {
    return loadConfig({
      overrides: {
        port: 0,
        dataDir,
        adminPassword: ADMIN_PASSWORD,
        store: 'redis',
        redisUrl: redis.url,
        cookieSecret: TEST_COOKIE_SECRET,
        redisKeyPrefix: `${label}-${process.pid}:`,
        poolSize: 0,
        stopServersOnExit: false,
        logLevel: 'debug',
        ...overrides,
      },
    });
  }

  function logFor(label: string) {
    fs.mkdirSync(OUTPUT, { recursive: true });
    return pino({ level: 'debug' }, pino.destination({ dest: path.join(OUTPUT, `${label}.log`), sync: true, append: true }));
  }

  async function closeHub(hub: Hub): Promise<void> {
    hubs.splice(hubs.indexOf(hub), 1);
    await hub.close();
  }

  it('a course link clicked while the restarted hub reconciles gets "the hub is starting" (503, no Start button), and the running server is adopted, not replaced', async () => {
    const spawner = new FakeSpawner();
    spawners.push(spawner);
    const dataDir = tempDataDir('lifecycle-reconcile');
    dataDirs.push(dataDir);
    const first = await createHub(hubConfig('reconcile', dataDir), { spawner, log: logFor('lifecycle-reconcile-1') });
    hubs.push(first);
    await createUsers(first, { dana: 'dana-password' });
    const dana = new HubClient(first.url);
    assert.equal((await dana.login('dana', 'dana-password')).status, 303);
    await dana.get('/hub/spawn');
    await waitForReady(dana, 'dana');
    const [server] = spawner.serversOf('dana');
    await closeHub(first);

    // The restarted hub finds its servers slowly (a busy engine): hold its reconcile.
    spawner.listing = new Gate();
    const port = await freePort();
    const starting = createHub(hubConfig('reconcile', dataDir, { port }), { spawner, log: logFor('lifecycle-reconcile-2') });
    const client = Object.assign(new HubClient(`http://127.0.0.1:${port}`), { jar: dana.jar });
    for (;;) {
      const health = await client.get('/hub/health', { accept: 'application/json' }).catch(() => undefined);
      if (health?.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const url of ['/hub/user-redirect/lab', '/hub/spawn', '/user/dana/lab']) {
      const page = await client.get(url);
      assert.equal(page.status, 503, url);
      assert.equal(page.headers.get('retry-after'), '5', url);
      assert.match(page.body, /The hub is starting/, url);
      assert.match(page.body, /Your server and your files are safe/, url);
      assert.doesNotMatch(page.body, /Start my server/, url);
    }
    assert.equal(spawner.starts, 1);
    assert.equal(spawner.stops, 0);

    spawner.listing.open();
    const second = await starting;
    hubs.push(second);
    const link = await client.openServer('/lab');
    assert.equal(link.hub.status, 302);
    assert.equal(new URL(link.handoff?.location ?? '', 'http://x').pathname, '/user/dana/lab');
    assert.equal((await client.get('/user/dana/api/status', { accept: 'application/json' })).status, 200);
    assert.equal(spawner.starts, 1, 'the running server was adopted, not replaced');
    assert.equal(spawner.stops, 0);
    assert.equal(spawner.serversOf('dana')[0]?.id, server?.id);
    await closeHub(second);
  });

  it('a server that dies by itself: the 502 page leads home, where it says "not running" with a Start button, and the API agrees', async () => {
    const spawner = new FakeSpawner();
    spawners.push(spawner);
    const dataDir = tempDataDir('lifecycle-dead');
    dataDirs.push(dataDir);
    // Polling off: the pages must notice on their own, not wait for the next round.
    const hub = await createHub(hubConfig('dead', dataDir, { serverPollIntervalS: 0 }), { spawner, log: logFor('lifecycle-dead') });
    hubs.push(hub);
    await createUsers(hub, { erin: 'erin-password' });
    const erin = new HubClient(hub.url);
    assert.equal((await erin.login('erin', 'erin-password')).status, 303);
    await erin.get('/hub/spawn');
    await waitForReady(erin, 'erin');
    assert.equal((await erin.openServer('/lab')).handoff?.status, 302);
    assert.equal((await erin.get('/user/erin/api/status', { accept: 'application/json' })).status, 200);

    await spawner.crash('erin');
    // The student's open tab reloads: the proxy finds nobody answering.
    const gone = await erin.get('/user/erin/lab');
    assert.equal(gone.status, 502);
    assert.match(gone.body, /href="\/hub\/home"/);
    const home = await erin.get('/hub/home');
    assert.match(home.body, /Not running/);
    assert.match(home.body, /Start my server/);
    // JupyterHub's user model: no server URL and nothing pending once it is gone.
    const me = JSON.parse((await erin.get('/hub/api/user', { accept: 'application/json' })).body) as { server: string | null; pending: string | null };
    assert.equal(me.server, null);
    assert.equal(me.pending, null);
    // The route went with it: the proxy now answers with the "not running" page and its Start button.
    const notRunning = await erin.get('/user/erin/lab');
    assert.equal(notRunning.status, 503);
    assert.match(notRunning.body, /Your server is not running/);
    assert.match(notRunning.body, /href="\/hub\/spawn\?next=/);
    // And Start works again.
    await erin.get('/hub/spawn');
    await waitForReady(erin, 'erin');
    assert.equal(spawner.serversOf('erin').length, 1);
  });

  it('a dead server is noticed by the hub\'s own polling: the proxy sends the student to the "not running" page', async () => {
    const spawner = new FakeSpawner();
    spawners.push(spawner);
    const dataDir = tempDataDir('lifecycle-poll');
    dataDirs.push(dataDir);
    const hub = await createHub(hubConfig('poll', dataDir, { serverPollIntervalS: 1 }), { spawner, log: logFor('lifecycle-poll') });
    hubs.push(hub);
    await createUsers(hub, { finn: 'finn-password' });
    const finn = new HubClient(hub.url);
    assert.equal((await finn.login('finn', 'finn-password')).status, 303);
    await finn.get('/hub/spawn');
    await waitForReady(finn, 'finn');
    assert.equal((await finn.openServer('/lab')).handoff?.status, 302);

    await spawner.crash('finn');
    // Nobody asks the hub about finn meanwhile; only its poller can notice.
    while (hub.routes.get('finn')) await new Promise((resolve) => setTimeout(resolve, 100));
    const page = await finn.get('/user/finn/lab');
    assert.equal(page.status, 503);
    assert.match(page.body, /Start my server/);
  });
});
