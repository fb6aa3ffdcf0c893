import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type WebSocket from 'ws';
import type { Hub } from '../../server/index.js';
import { isAnonymousEscapedName } from '../../server/names.js';
import { createUsers, removeServerAccounts, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { frontDoorPath, type TestNginx } from '../helpers/nginx.js';
import { csrfFrom, NginxBrowser, startNginxCluster, type PinnedClient } from '../helpers/nginx-cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitForReadyPool } from '../helpers/try.js';

const LOGS = path.resolve(__dirname, '../../test-output');
const LABELS = ['two-hubs-nginx-a', 'two-hubs-nginx-b'] as const;

/** Run code in a kernel over its WebSocket; resolves with its stdout. */
function execute(ws: WebSocket, code: string): Promise<string> {
  const msgId = randomUUID();
  return new Promise((resolve, reject) => {
    let out = '';
    const onClose = (): void => reject(new Error('kernel socket closed'));
    const onMessage = (data: unknown): void => {
      const msg = JSON.parse(String(data)) as { header: { msg_type: string }; parent_header: { msg_id?: string }; content: { text?: string; execution_state?: string } };
      if (msg.parent_header.msg_id !== msgId) return;
      if (msg.header.msg_type === 'stream') out += msg.content.text ?? '';
      if (msg.header.msg_type === 'status' && msg.content.execution_state === 'idle') {
        ws.off('message', onMessage);
        ws.off('close', onClose);
        resolve(out);
      }
    };
    ws.on('message', onMessage);
    ws.once('close', onClose);
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, msg_type: 'execute_request', username: 'stu', session: randomUUID(), date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        channel: 'shell',
        buffers: [],
      }),
    );
  });
}

describe('two hub processes behind one nginx on one Redis', function () {
  this.timeout(240_000);
  let redis: TestRedis;
  let dataDir: string;
  let nginx: TestNginx;
  const doors = [frontDoorPath(), frontDoorPath()];
  const hubs: Hub[] = [];
  /** The X-Test-Hub value that reaches each hub (index as in `hubs`). */
  const pins: string[] = [];

  /** Which hub served a request: its request log (test-output/LABEL.log) has the probe's path. */
  async function hubServing(browser: NginxBrowser, pin: string): Promise<number> {
    const probe = `/hub/nginx-probe-${randomUUID()}`;
    const reply = await browser.via(pin).get(probe);
    assert.equal(reply.status, 404, 'a hub answered the probe');
    const served = LABELS.map((label, i) => (fs.readFileSync(path.join(LOGS, `${label}.log`), 'utf8').includes(probe) ? i : -1)).filter((i) => i >= 0);
    assert.equal(served.length, 1, `one hub served ${probe}`);
    return served[0]!;
  }

  before(async function () {
    redis = await startRedis();
    // One machine, one data folder (homes, server logs), as two hub processes behind one nginx have.
    dataDir = tempDataDir('two-hubs-nginx');
    nginx = await startNginxCluster(doors.map((d) => d.socket));
    const shared = { store: 'redis', redisUrl: redis.url, redisKeyPrefix: 'two-hubs-nginx:', dataDir, publicUrl: nginx.url, poolSize: 1, leaderLockTtlMs: 3000 };
    // Hub A must not stop B's servers when it closes first; B (the last one) stops them all.
    hubs.push(await startTestHub(LABELS[0], { ...shared, frontDoorSocket: doors[0]!.socket, stopServersOnExit: false }));
    hubs.push(await startTestHub(LABELS[1], { ...shared, frontDoorSocket: doors[1]!.socket }));
    await createUsers(hubs[0]!, { stu: 'stu-password' });
    // nginx's hash of X-Test-Hub is fixed: find one value that reaches each hub.
    const finder = new NginxBrowser(nginx);
    for (let i = 0; pins.filter(Boolean).length < 2; i++) {
      if (i > 64) throw new Error('no X-Test-Hub value reached both hubs');
      const served = await hubServing(finder, `hub-${i}`);
      pins[served] ??= `hub-${i}`;
    }
  });

  after(async function () {
    for (const hub of hubs) await hub.close();
    await nginx?.stop();
    await redis?.stop();
    removeServerAccounts(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
    for (const d of doors) d.remove();
  });

  it('reach either hub process through the one nginx, each request to the hub its X-Test-Hub pins', async function () {
    const browser = new NginxBrowser(nginx);
    // Asked again, each value still reaches its own hub: the routing the next test relies on is fixed.
    for (const [i, pin] of pins.entries()) for (let n = 0; n < 3; n++) assert.equal(await hubServing(browser, pin), i);
  });

  it('let a student sign in through A, start through B, use the server through both, and lose the WebSocket on B when signing out on A', async function () {
    const browser = new NginxBrowser(nginx);
    const [onA, onB] = pins.map((p) => browser.via(p)) as [PinnedClient, PinnedClient];
    const login = await onA.login('stu', 'stu-password');
    assert.equal(login.status, 303, 'signed in through A');
    assert.ok(login.setCookies.some((c) => c.startsWith('oerhub-session=') && /;\s*Secure/i.test(c)), 'a Secure session cookie over https');
    const homeOnB = await onB.get('/hub/home');
    assert.equal(homeOnB.status, 200, 'the sign-in made on A is good on B');
    assert.match(homeOnB.body, /stu/);

    const spawn = await onB.get('/hub/spawn');
    assert.ok(spawn.status < 400, `B took the start: ${spawn.status}`);
    const progress = await onB.get('/hub/api/users/stu/server/progress', { accept: 'text/event-stream' });
    assert.match(progress.body, /"ready":true/, 'the progress stream through B ends ready');

    // B hands the sign-in over to stu's own origin behind nginx; that origin's cookie is good on A too.
    const { hub: redirect, handoff } = await onB.openServer('/lab');
    assert.equal(new URL(redirect.location ?? '').origin, `https://stu.localhost:${new URL(nginx.url).port}`, 'the server has its own origin behind nginx');
    assert.equal(handoff?.status, 302);
    assert.equal(handoff?.location, '/user/stu/lab');
    for (const [name, client] of [['A', onA], ['B', onB]] as const) {
      const status = await client.get('/user/stu/api/status', { accept: 'application/json' });
      assert.equal(status.status, 200, `api/status through ${name}: ${status.body.slice(0, 200)}`);
      assert.ok('started' in (JSON.parse(status.body) as object), `Jupyter answered through ${name}`);
    }
    const homeOnA = await onA.get('/hub/home');
    assert.match(homeOnA.body, /Running\./, 'the home page through A says the server runs');

    // A kernel started through A, used over a WebSocket through B.
    assert.equal((await onA.get('/user/stu/lab')).status, 200);
    const xsrf = onA.cookie('_xsrf');
    assert.ok(xsrf, 'Jupyter set its _xsrf cookie');
    const created = await onA.request('POST', '/user/stu/api/kernels', { headers: { accept: 'application/json', 'x-xsrftoken': xsrf } });
    assert.equal(created.status, 201, created.body.slice(0, 300));
    const kernelId = (JSON.parse(created.body) as { id: string }).id;
    const socketOnB = await onB.websocket(`/user/stu/api/kernels/${kernelId}/channels`);
    const closed = new Promise<boolean>((resolve) => socketOnB.once('close', () => resolve(true)));
    assert.equal(await execute(socketOnB, 'print(6*7)'), '42\n');

    const home = await onA.get('/hub/home');
    const out = await onA.request('POST', '/hub/logout', { form: { _csrf: csrfFrom(home.body) } });
    assert.equal(out.status, 200, 'signed out through A');
    // Bounded so a missed revocation fails the test instead of hanging it; not a speed check.
    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000).unref());
    const wasClosed = await Promise.race([closed, timer]);
    if (!wasClosed) socketOnB.terminate();
    assert.ok(wasClosed, 'the kernel WebSocket through B closed after sign-out through A');
    const after = await onB.get('/user/stu/api/status', { accept: 'application/json' });
    assert.notEqual(after.status, 200, 'B no longer lets the signed-out browser in');
  });

  it('run the warm pool from one hub process only: with poolSize 1 there is exactly one warm server', async function () {
    assert.equal(hubs.filter((h) => h.leader.isLeader()).length, 1, 'exactly one hub process leads (pool refill and cullers)');
    await waitForReadyPool(hubs[0]!, 1);
    // A few more leader renewals (leaderLockTtlMs 3000): a second refill would have started a second server by now.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const hub of hubs) {
      const status = await hub.pool.status();
      assert.equal(status.ready + status.starting, 1, 'one warm server, not one per hub process');
      assert.equal(hub.routes.list().filter((r) => isAnonymousEscapedName(r.escapedName)).length, 1, 'both hub processes route the one warm server');
    }
  });
});
