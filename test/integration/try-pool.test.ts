import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hub } from '../../server/index.js';
import { ADMIN_PASSWORD, startTestHub, tempDataDir } from '../helpers/hub.js';
import { startRedis } from '../helpers/redis.js';
import { HubClient } from '../helpers/client.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { VisitorClient, isAlive, localServerOf, poolStatus, processesOf, waitFor, waitForReadyPool } from '../helpers/try.js';

/**
 * "Try it" against a real hub (memory store, local-process spawner, real proxy): issue 5,
 * items 2 to 5. Small pools and short timeouts keep it fast.
 */

/** Assert the ephemeral server is gone with everything in it: folder, state file, processes. */
async function assertDestroyed(hub: Hub, escapedName: string, pid: number | undefined): Promise<void> {
  const where = localServerOf(hub, escapedName);
  // The route goes first, the process and folder a moment later (Jupyter's shutdown grace).
  await waitFor(`${where.home} removed`, async () => fs.existsSync(where.home), (exists) => !exists, 15_000).catch(() => undefined);
  assert.equal(fs.existsSync(where.home), false, `the ephemeral folder ${where.home} is gone`);
  assert.equal(fs.existsSync(where.stateFile), false, 'the spawner forgot the server');
  // Its process group (Jupyter's helpers) may take a moment after the folder to exit on a loaded machine.
  if (pid !== undefined) await waitFor(`Jupyter (pid ${pid}) gone`, async () => isAlive(pid), (alive) => !alive, 10_000).catch(() => undefined);
  if (pid !== undefined) assert.equal(isAlive(pid), false, `Jupyter (pid ${pid}) is gone`);
  // Kernels live in their own sessions; the spawner kills them too. Allow the kernel a moment to be reaped.
  await waitFor('no process of the server', async () => processesOf(escapedName), (p) => p.length === 0, 10_000);
  assert.equal(hub.routes.get(escapedName), undefined, 'no route left');
}

function workspaceReady(w: { status: number; path: string; body: string }): boolean {
  // The visitor's own origin's page, or the hub's (originMode=single).
  return w.status === 200 && (w.path.endsWith('/oerhub/workspace') || w.path === '/hub/try/workspace') && !w.body.includes('data-starting="true"');
}

async function workspaceIsReady(visitor: VisitorClient): Promise<boolean> {
  return workspaceReady(await visitor.openWorkspace());
}

/** Take a warm or on-demand server and open it; returns the visitor's name and escaped name. */
async function takeServer(visitor: VisitorClient): Promise<{ name: string; escapedName: string }> {
  const r = await visitor.tryIt();
  assert.equal(r.status, 303, `"Try it" answered ${r.status}: ${r.body.slice(0, 300)}`);
  const me = await visitor.me();
  // Started on demand: the progress page, or (samples rendered, issue 14) the workspace with its
  // "your own server is starting" banner, until the server is up.
  if (r.location?.startsWith('/hub/spawn-pending/') || !(await workspaceIsReady(visitor))) {
    await waitFor('the on-demand server', async () => visitor.openWorkspace(), workspaceReady, 90_000, 300);
  }
  const lab = await visitor.openLab();
  assert.equal(lab.status, 200, `JupyterLab answered ${lab.status}`);
  return { name: me.name, escapedName: me.escaped_name };
}

describe('"Try it": the warm pool, limits and the waiting page', function () {
  this.timeout(300_000);
  let hub: Hub | undefined;
  const admin = (): HubClient => adminClient!;
  let adminClient: HubClient | undefined;
  const visitors: VisitorClient[] = [];
  const visitor = (address: string): VisitorClient => {
    assert.ok(hub);
    const v = new VisitorClient(hub.url, address);
    visitors.push(v);
    return v;
  };

  before(async () => {
    hub = await startTestHub('try-pool', {
      poolSize: 2,
      poolMaxStarting: 2,
      tryMaxServers: 3,
      tryMaxPerAddress: 2,
      tryRetryAfterS: 1,
      cullerIntervalMs: 300,
      activityFlushMs: 200,
    });
    adminClient = new HubClient(hub.url);
    assert.equal((await adminClient.login('admin', ADMIN_PASSWORD)).status, 303);
    await waitForReadyPool(hub, 2);
    await hub.samples.prepare();
  });

  after(async () => {
    await hub?.close();
  });

  let first: { name: string; escapedName: string; pid: number | undefined } | undefined;
  let firstVisitor: VisitorClient | undefined;
  let second: { name: string; escapedName: string } | undefined;
  let secondVisitor: VisitorClient | undefined;

  it('a visitor clicking "Try it" gets a warm server at once, lands in the samples, and the pool is back to N', async () => {
    assert.ok(hub);
    const before = await poolStatus(admin());
    assert.deepEqual({ ready: before.ready, inUse: before.inUse, size: before.size }, { ready: 2, inUse: 0, size: 2 });
    const warmNames = await hub.pool.readyNames();

    const v = visitor('10.0.0.1');
    const page = await v.get('/hub/try');
    assert.match(page.body, /This is temporary/);
    const r = await v.request('POST', '/hub/try', { form: { _csrf: HubClient.csrfFrom(page.body) } });
    // Straight to the workspace: no progress page, no start to wait for.
    assert.equal(r.status, 303);
    assert.equal(r.location, '/hub/try/workspace');
    const me = await v.me();
    assert.deepEqual(me.roles, ['anonymous']);
    assert.ok(me.name.startsWith('~'));
    assert.ok(warmNames.includes(me.name), 'the server came from the ready list');
    assert.equal(await hub.manager.status((await hub.users.get(me.name))!), 'running');

    // The workspace page is served on the visitor's own origin, so JupyterLab's frame is same-origin.
    const workspace = await v.openWorkspace();
    assert.equal(workspace.status, 200);
    assert.equal(workspace.url, `${v.contentOrigin(me.escaped_name)}/user/${me.escaped_name}/oerhub/workspace`);
    // The frame opens on the rendered index (issue 14), served on that origin without the server.
    assert.match(workspace.body, new RegExp(`<iframe[^>]+src="/user/${me.escaped_name}/oerhub/samples/index"`));
    const rendered = await v.get(`${v.contentOrigin(me.escaped_name)}/user/${me.escaped_name}/oerhub/samples/index`);
    assert.equal(rendered.status, 200);
    assert.match(rendered.body, /Welcome! Sample notebooks/);
    assert.match(rendered.body, new RegExp(`href="/user/${me.escaped_name}/lab/tree/samples/index\\.ipynb">Edit and run`));
    assert.match(workspace.body, new RegExp(`href="/user/${me.escaped_name}/oerhub/download" download>Download my work`));
    assert.match(workspace.body, /End session/);
    // Its scripts and styles come from the hub, and nothing else may run there.
    const hubOrigin = new URL(hub.url).origin;
    assert.match(workspace.body, new RegExp(`<script src="${hubOrigin}/hub/static/try-workspace\\.js">`));
    assert.match(workspace.headers.get('content-security-policy') ?? '', new RegExp(`script-src ${hubOrigin}/hub/static/try-workspace\\.js;`));
    const lab = await v.openLab();
    assert.equal(lab.status, 200);
    assert.equal(lab.path, `/user/${me.escaped_name}/lab/tree/samples/index.ipynb`);
    const heatmap = await v.get(`/user/${me.escaped_name}/api/contents/samples/bokeh_heatmap.ipynb?content=0`, { accept: 'application/json' });
    assert.equal(heatmap.status, 200, 'the samples were copied in');
    const data = await v.get(`/user/${me.escaped_name}/api/contents/samples/data`, { accept: 'application/json' });
    assert.ok(JSON.parse(data.body).content.some((e: { name: string }) => e.name === 'europe_countries.geojson'));
    const session = JSON.parse((await v.get('/hub/try/session', { accept: 'application/json' })).body) as { state: string; expiresAt: number; idleAt: number };
    assert.equal(session.state, 'active');
    assert.ok(session.expiresAt > Date.now() + 3000_000 && session.idleAt > Date.now(), JSON.stringify(session));
    // The page's own origin tells the same deadlines.
    const there = JSON.parse((await v.get(`/user/${me.escaped_name}/oerhub/session`, { accept: 'application/json' })).body) as { state: string; expiresAt: number };
    assert.deepEqual({ state: there.state, expiresAt: there.expiresAt }, { state: 'active', expiresAt: session.expiresAt });

    const where = localServerOf(hub, me.escaped_name);
    assert.ok(fs.existsSync(where.home) && where.pid !== undefined);
    first = { name: me.name, escapedName: me.escaped_name, pid: where.pid };
    firstVisitor = v;

    const after = await waitFor('the pool back to 2 ready', () => poolStatus(admin()), (s) => s.ready === 2 && s.starting === 0, 90_000);
    assert.equal(after.inUse, 1);
  });

  it('downloads everything the visitor has as a zip, with one click', async () => {
    assert.ok(firstVisitor && first);
    const res = await fetch(`${hub!.url}/hub/try/download`, { headers: { cookie: firstVisitor.cookieHeader('/hub/try/download') } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/zip');
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="oerhub-workspace-[\d-]+\.zip"$/);
    const zip = Buffer.from(await res.arrayBuffer());
    assert.equal(zip.subarray(0, 4).toString('hex'), '504b0304', 'a zip file');
    for (const name of ['samples/index.ipynb', 'samples/bokeh_heatmap.ipynb', 'samples/data/places.csv']) assert.ok(zip.includes(Buffer.from(name)), `the zip has ${name}`);
    // The same from the button of the page on the visitor's own origin.
    const own = await firstVisitor.get(`/user/${first.escapedName}/oerhub/download`);
    assert.equal(own.status, 200);
    assert.equal(own.headers.get('content-type'), 'application/zip');
    assert.ok(own.body.startsWith('PK') && own.body.includes('samples/bokeh_heatmap.ipynb'), 'a zip with the samples');
    // Someone else can't download it, from the hub or from that origin.
    const stranger = new VisitorClient(hub!.url, '10.9.9.9');
    assert.equal((await stranger.get('/hub/try/download')).status, 404);
    assert.equal((await stranger.get(`/user/${first.escapedName}/oerhub/download`, { accept: 'application/json' })).status, 403);
  });

  it('two visitors never share a server, and neither can reach the other\'s', async () => {
    assert.ok(hub && first && firstVisitor);
    const v = visitor('10.0.0.1');
    second = await takeServer(v);
    secondVisitor = v;
    assert.notEqual(second.name, first.name);
    assert.notEqual(localServerOf(hub, second.escapedName).home, localServerOf(hub, first.escapedName).home);

    // Their own links lead to their own server.
    const mine = await v.get('/hub/user-redirect/lab');
    assert.equal(new URL(mine.location ?? '').origin, v.contentOrigin(second.escapedName));
    assert.equal(new URL(mine.location ?? '').searchParams.get('next'), `/user/${second.escapedName}/lab`);
    // Without the other's cookie: refused (a page sends them to sign in, the API says 403).
    const api = await v.get(`/user/${first.escapedName}/api/contents`, { accept: 'application/json' });
    assert.equal(api.status, 403);
    const page = await v.get(`/user/${first.escapedName}/lab`);
    assert.equal(page.status, 302);
    // Their own server cookie renamed for the other's path fails its signature.
    const own = v.cookie(`oerhub-user-${second.escapedName}`);
    assert.ok(own);
    const forged = await v.get(`/user/${first.escapedName}/api/contents`, { accept: 'application/json', cookie: `oerhub-user-${first.escapedName}=${own.value}` });
    assert.equal(forged.status, 403);
    // Through the hub, a sign-in as the other is impossible: ~ names are refused.
    const login = await new VisitorClient(hub.url, '10.0.0.9').login(first.name, 'anything');
    assert.equal(login.status, 401);
  });

  it('one address holds at most tryMaxPerAddress servers', async () => {
    const v = visitor('10.0.0.1');
    const r = await v.tryIt();
    assert.equal(r.status, 429);
    assert.match(r.body, /already holds 2 temporary workspaces/);
  });

  it('"End session" destroys the server and its files: no folder, no process', async () => {
    assert.ok(hub && first && firstVisitor);
    const page = await firstVisitor.openWorkspace();
    // Without the page's token the form is refused.
    const forged = await firstVisitor.request('POST', `/user/${first.escapedName}/oerhub/end`, { form: { _csrf: 'x' } });
    assert.equal(forged.status, 403);
    const r = await firstVisitor.endFromWorkspace(page);
    assert.equal(r.status, 303);
    assert.equal(r.location, `${new URL(hub.url).origin}/hub/try/ended`);
    assert.match((await firstVisitor.follow(r.location ?? '')).body, /Your session ended/);
    // Signed out on the hub too.
    assert.equal((await firstVisitor.get('/hub/api/user', { accept: 'application/json' })).status, 401);
    await assertDestroyed(hub, first.escapedName, first.pid);
    assert.equal(await hub.users.get(first.name), null, 'the anonymous user is forgotten');
    const status = await poolStatus(admin());
    assert.equal(status.inUse, 1);
    // The old address: signed out, so the proxy sends them to sign in; a new "Try it" is one click away.
    const again = await firstVisitor.get('/hub/try');
    assert.match(again.body, /id="try-button"/);
  });

  it('more visitors than the cap get the waiting page (503, Retry-After, their place), and a server once others leave', async () => {
    assert.ok(hub && second && secondVisitor);
    // 1 in use + 2 warm = the cap of 3: two more visitors take the warm ones, then it's full.
    await waitForReadyPool(hub, 2);
    const c = visitor('10.0.1.1');
    const d = visitor('10.0.1.2');
    const cServer = await takeServer(c);
    const dServer = await takeServer(d);
    const full = await poolStatus(admin());
    assert.deepEqual({ ready: full.ready, inUse: full.inUse, starting: full.starting }, { ready: 0, inUse: 3, starting: 0 });

    const e = visitor('10.0.2.1');
    const f = visitor('10.0.2.2');
    const eWait = await e.tryIt();
    assert.equal(eWait.status, 503);
    assert.equal(eWait.headers.get('retry-after'), '1');
    assert.match(eWait.body, /You are number <strong id="try-position">1<\/strong> in line/);
    assert.match(eWait.body, /<script src="\/hub\/static\/try-waiting\.js"><\/script>/);
    const fWait = await f.tryIt();
    assert.equal(fWait.status, 503);
    assert.match(fWait.body, /number <strong id="try-position">2<\/strong>/);
    const place = JSON.parse((await e.get('/hub/try/queue', { accept: 'application/json' })).body) as { position: number; available: boolean };
    assert.deepEqual({ position: place.position, available: place.available }, { position: 1, available: false });
    // Asking again keeps their place; nothing else breaks.
    assert.match((await f.retry(fWait.body)).body, /number <strong id="try-position">2<\/strong>/);
    assert.equal((await fetch(`${hub.url}/hub/health`)).status, 200);
    assert.equal((await poolStatus(admin())).waiting, 2);
    assert.equal((await admin().get('/hub/home')).status, 200);

    // One leaves: the first in line gets the freed place, the second moves up.
    await secondVisitor.endSession();
    await assertDestroyed(hub, second.escapedName, undefined);
    const eIn = await waitFor(
      'a place for the first in line',
      async () => JSON.parse((await e.get('/hub/try/queue', { accept: 'application/json' })).body) as { available: boolean },
      (p) => p.available,
      60_000,
      500,
    );
    assert.ok(eIn.available);
    const fStill = await f.retry(fWait.body);
    assert.equal(fStill.status, 503, 'the second in line still waits');
    const eServer = await takeServer(e);
    const fNext = await f.retry(fWait.body);
    assert.equal(fNext.status, 503);
    assert.match(fNext.body, /number <strong id="try-position">1<\/strong>/, 'the second in line moved up');
    assert.ok(![cServer.name, dServer.name].includes(eServer.name));

    await c.endSession();
    const fIn = await waitFor(
      'a place for the second in line',
      async () => JSON.parse((await f.get('/hub/try/queue', { accept: 'application/json' })).body) as { available: boolean },
      (p) => p.available,
      60_000,
      500,
    );
    assert.ok(fIn.available);
    const fServer = await takeServer(f);
    assert.equal(new Set([dServer.name, eServer.name, fServer.name]).size, 3);
    assert.equal((await poolStatus(admin())).waiting, 0);
    for (const v of [d, e, f]) await v.endSession();
    const end = await waitFor('everyone gone', () => poolStatus(admin()), (s) => s.inUse === 0, 30_000);
    assert.ok(end.ready + end.starting <= 2);
  });

  it('pool counts are for admins only', async () => {
    const v = visitor('10.0.3.1');
    assert.equal((await v.get('/hub/api/pool', { accept: 'application/json' })).status, 401);
    await v.tryIt();
    assert.equal((await v.get('/hub/api/pool', { accept: 'application/json' })).status, 403);
    await v.endSession();
  });
});

describe('"Try it": idle and max-age culling', function () {
  this.timeout(300_000);
  let hub: Hub | undefined;

  before(async () => {
    hub = await startTestHub('try-cull', {
      poolSize: 1,
      tryMaxServers: 3,
      tryIdleTimeoutS: 2,
      tryMaxAgeS: 20,
      cullerIntervalMs: 250,
      activityFlushMs: 200,
    });
    await waitForReadyPool(hub, 1);
  });

  after(async () => {
    await hub?.close();
  });

  it('an idle workspace is destroyed after the idle timeout, but not while a kernel computes with the tab closed', async () => {
    assert.ok(hub);
    const v = new VisitorClient(hub.url, '10.1.0.1');
    const { name, escapedName } = await takeServer(v);
    const { pid, home } = localServerOf(hub, escapedName);
    const kernelId = await startKernel(v, escapedName);
    const kernel = await KernelSocket.open(v, escapedName, kernelId);
    assert.equal((await kernel.execute('print("warm")')).trim(), 'warm');
    // The kernel computes until the test says stop (a file appears), not for a fixed time: on a
    // loaded machine a timed computation could end before the culler looks.
    const stop = path.join(home, 'stop-computing');
    const computing = kernel.execute(`import os, time\nwhile not os.path.exists(${JSON.stringify(stop)}): time.sleep(0.1)\nprint("done")`, 120_000).catch(() => undefined);
    await waitFor('the kernel computing', async () => JSON.parse((await v.get(`/user/${escapedName}/api/kernels/${kernelId}`, { accept: 'application/json' })).body) as { execution_state: string }, (k) => k.execution_state === 'busy', 30_000);
    // The visitor closes the tab: no HTTP, no WebSocket, only the kernel computing.
    kernel.ws.close();
    await kernel.closed;
    void computing;
    // Past the idle timeout (2 s) the culler looks, finds the kernel busy and keeps the server.
    await waitFor('the culler keeping the idle server for its busy kernel', async () => hub!.culler.keptBusyAt(name), (at) => at !== undefined, 60_000);
    assert.ok(pid !== undefined && isAlive(pid), 'still running while the kernel computes');
    assert.ok(hub.routes.get(escapedName), 'still routed while the kernel computes');
    // The computation ends; then the idle timeout runs out and the culler acts.
    fs.writeFileSync(stop, '');
    await waitFor('the idle server destroyed', async () => hub!.routes.get(escapedName), (r) => r === undefined, 60_000);
    await assertDestroyed(hub, escapedName, pid);
    assert.equal((await hub.pool.status()).culled, 1);
    // Its old address shows the friendly page, not an error.
    const ended = await v.get(`/user/${escapedName}/lab`);
    assert.equal(ended.status, 410);
    assert.match(ended.body, /Your session ended/);
    assert.match(ended.body, /href="\/hub\/try"/);
    assert.equal(JSON.parse((await v.get('/hub/try/session', { accept: 'application/json' })).body).state, 'ended');
    assert.equal((await v.get('/hub/try/workspace')).location, '/hub/try/ended');
    // The page on the visitor's origin says so too.
    const page = await v.get(`/user/${escapedName}/oerhub/workspace`);
    assert.equal(page.location, `${new URL(hub.url).origin}/hub/try/ended`);
  });

  it('a busy visitor is still stopped at the maximum age', async () => {
    assert.ok(hub);
    await waitForReadyPool(hub, 1);
    const v = new VisitorClient(hub.url, '10.1.0.2');
    const { name, escapedName } = await takeServer(v);
    const claimedAt = (await hub.pool.session((await hub.users.get(name))!))!.claimedAt;
    const { pid } = localServerOf(hub, escapedName);
    // Keep working: a request every 300 ms, far inside the idle timeout, until it is destroyed
    // (the bound only stops a broken culler from looping forever).
    while (hub.routes.get(escapedName) && Date.now() - claimedAt < 120_000) {
      await v.get(`/user/${escapedName}/api/status`, { accept: 'application/json' });
      await sleep(300);
    }
    assert.equal(hub.routes.get(escapedName), undefined, 'destroyed although the visitor kept working');
    const livedMs = Date.now() - claimedAt;
    assert.ok(livedMs >= 19_500, `destroyed ${livedMs} ms after it was taken, before its maximum age of 20 s`);
    await assertDestroyed(hub, escapedName, pid);
    assert.equal((await hub.pool.status()).culled, 2);
  });
});

describe('"Try it": a flood from one address', function () {
  this.timeout(300_000);
  let hub: Hub | undefined;
  const flooder = '203.0.113.66';

  before(async () => {
    hub = await startTestHub('try-flood', { poolSize: 1, tryMaxServers: 2, tryMaxPerAddress: 2, tryRetryAfterS: 1, tryQueueMax: 3 });
    await waitForReadyPool(hub, 1);
  });

  after(async () => {
    await hub?.close();
  });

  it('25 page loads every second from one address do not keep a real visitor waiting while a server sits ready', async () => {
    assert.ok(hub);
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 25 }, async () => {
          const bot = new VisitorClient(hub!.url, flooder);
          await bot.get('/hub/try');
          await bot.get('/hub/try/queue', { accept: 'application/json' });
        }),
      );
      await sleep(1000);
    }
    assert.equal((await hub.pool.status()).waiting, 0, 'asking for a place puts nobody in line');
    const real = new VisitorClient(hub.url, '203.0.113.7');
    const r = await real.tryIt();
    assert.equal(r.status, 303, `the visitor got ${r.status}: ${r.body.slice(0, 200)}`);
    assert.equal(r.location, '/hub/try/workspace', 'straight to a warm workspace');
    await real.endSession();
  });

  it('with every workspace taken, one address gets at most tryMaxPerAddress places in line, and the line has a cap', async () => {
    assert.ok(hub);
    const holders: VisitorClient[] = [];
    for (const address of ['203.0.113.1', '203.0.113.2']) {
      await waitForReadyPool(hub, 1);
      const v: VisitorClient = new VisitorClient(hub.url, address);
      assert.equal((await v.tryIt()).status, 303);
      holders.push(v);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await new VisitorClient(hub.url, flooder).tryIt()).status);
    assert.deepEqual(statuses, [503, 503, 429, 429, 429, 429, 429, 429, 429, 429], 'two places in line, then refused');
    assert.equal((await hub.pool.status()).waiting, 2);
    const third = await new VisitorClient(hub.url, '203.0.113.3').tryIt();
    assert.equal(third.status, 503);
    assert.match(third.body, /number <strong id="try-position">3<\/strong>/);
    const fourth = await new VisitorClient(hub.url, '203.0.113.4').tryIt();
    assert.equal(fourth.status, 503);
    assert.match(fourth.body, /waiting line is full/);
    assert.equal((await hub.pool.status()).waiting, 3, 'the line is capped at tryQueueMax');
    for (const v of holders) await v.endSession();
  });
});

describe('"Try it": a restart with a smaller poolSize', function () {
  this.timeout(300_000);
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  const hubs: Hub[] = [];
  const dataDir = tempDataDir('try-shrink');

  before(async () => {
    redis = await startRedis();
  });

  after(async () => {
    for (const h of hubs.reverse()) await h.close().catch(() => undefined);
    await redis?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('shrinks the warm pool: the extra ready servers are stopped, the rest are kept', async () => {
    assert.ok(redis);
    const settings = { store: 'redis', redisUrl: redis.url, redisKeyPrefix: `shrink-${Date.now()}:`, dataDir, tryMaxServers: 5, poolMaxStarting: 3 };
    const first = await startTestHub('try-shrink-1', { ...settings, poolSize: 3, stopServersOnExit: false });
    hubs.push(first);
    await waitForReadyPool(first, 3);
    const before = await first.pool.readyNames();
    const processes = new Map(await Promise.all(before.map(async (name) => [name, localServerOf(first, (await first.users.get(name))!.escapedName)] as const)));
    await first.close();

    const second = await startTestHub('try-shrink-2', { ...settings, poolSize: 1, stopServersOnExit: true });
    hubs.push(second);
    const status = await second.pool.status();
    assert.deepEqual({ size: status.size, ready: status.ready, starting: status.starting }, { size: 1, ready: 1, starting: 0 });
    const kept = await second.pool.readyNames();
    assert.equal(kept.length, 1);
    assert.ok(before.includes(kept[0]!), 'the kept server is one of the warm ones, not a new start');
    for (const [name, where] of processes) {
      if (name === kept[0]) {
        assert.ok(where.pid !== undefined && isAlive(where.pid), 'the kept server still runs');
        continue;
      }
      assert.equal(await second.users.get(name), null, `${name} is forgotten`);
      await waitFor(`${name} stopped`, async () => (where.pid !== undefined && isAlive(where.pid)) || fs.existsSync(where.home), (alive) => !alive, 20_000);
    }
    // A visitor still gets the kept one at once.
    const v = new VisitorClient(second.url, '10.2.0.1');
    const r = await v.tryIt();
    assert.equal(r.location, '/hub/try/workspace');
    assert.equal((await v.me()).name, kept[0]);
    await v.endSession();
  });
});

describe('"Try it" on a single-origin hub', function () {
  this.timeout(300_000);
  let hub: Hub | undefined;

  before(async () => {
    hub = await startTestHub('try-single', { originMode: 'single', poolSize: 1, tryMaxServers: 2 });
    await waitForReadyPool(hub, 1);
  });

  after(async () => {
    await hub?.close();
  });

  it('with originMode=single the workspace page stays on the hub, and its End session signs out there', async () => {
    assert.ok(hub);
    const v = new VisitorClient(hub.url, '10.2.0.1', { contentOrigin: () => new URL(hub!.url).origin });
    const { escapedName } = await takeServer(v);
    const workspace = await v.openWorkspace();
    assert.equal(workspace.status, 200);
    assert.equal(workspace.path, '/hub/try/workspace');
    assert.match(workspace.body, /<iframe[^>]+src="\/hub\/user-redirect\/lab\/tree\/samples\/index\.ipynb"/);
    assert.match(workspace.body, /href="\/hub\/try\/download" download>/);
    assert.match(workspace.body, /<script src="\/hub\/static\/try-workspace\.js">/);
    // The proxy leaves the server's paths to the server here: no hub page under /user/.
    assert.equal((await v.get(`/user/${escapedName}/oerhub/workspace`)).status, 404);
    const ended = await v.endFromWorkspace(workspace);
    assert.equal(ended.status, 303);
    assert.equal(ended.location, '/hub/try/ended');
    assert.match((await v.get('/hub/try/ended')).body, /Your session ended/);
    await waitFor('the server gone', async () => hub!.routes.get(escapedName), (r) => r === undefined, 30_000);
  });
});
