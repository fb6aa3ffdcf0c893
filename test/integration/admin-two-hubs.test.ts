import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Hub } from '../../server/index.js';
import { CookieJar, HubClient } from '../helpers/client.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { ADMIN_PASSWORD, createUsers, removeServerAccounts, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/try.js';

/** A browser's cookies are per host, not per port: one jar for both hubs on 127.0.0.1. */
class SharedJarClient extends HubClient {
  override readonly jar: CookieJar;
  constructor(baseUrl: string, jar: CookieJar) {
    super(baseUrl);
    this.jar = jar;
  }
}

describe('an admin disabling an account with two hub processes on one Redis', function () {
  this.timeout(180_000);
  let redis: TestRedis;
  let dataDir: string;
  let a: Hub | undefined;
  let b: Hub | undefined;

  before(async () => {
    redis = await startRedis();
    dataDir = tempDataDir('adm-two-hubs');
    const shared = { store: 'redis', redisUrl: redis.url, redisKeyPrefix: 'adm-two-hubs:', dataDir, poolSize: 0 };
    a = await startTestHub('adm-two-hubs-a', { ...shared, stopServersOnExit: false });
    // B trusts a checked session for 10 minutes: only the revocation sent through Redis can end it sooner.
    b = await startTestHub('adm-two-hubs-b', { ...shared, sessionCacheMs: 600_000 });
    await createUsers(a, { 'adm-ines': 'ines-password' });
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
    removeServerAccounts(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('ends the student\'s sessions and WebSockets on the other hub process at once, and both refuse the sign-in', async () => {
    const jar = new CookieJar();
    const onB = new SharedJarClient(b!.url, jar);
    assert.equal((await onB.login('adm-ines', 'ines-password')).status, 303);
    const ines = (await b!.users.get('adm-ines'))!;
    await onB.get('/hub/spawn');
    await waitForReady(onB, ines.escapedName);
    await onB.openServer('/lab');
    const kernelId = await startKernel(onB, ines.escapedName);
    const socket = await KernelSocket.open(onB, ines.escapedName, kernelId);
    assert.equal(await socket.execute('print(6*7)'), '42\n');

    // The admin works on A.
    const admin = new HubClient(a!.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const page = await admin.get(`/hub/admin/users/${ines.escapedName}`);
    const r = await admin.request('POST', `/hub/admin/users/${ines.escapedName}/disable`, { form: { _csrf: HubClient.csrfFrom(page.body) } });
    assert.equal(r.status, 303);

    // Bounded so a missed revocation fails instead of hanging; not a speed check.
    const closed = await Promise.race([socket.closed.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 15_000).unref())]);
    assert.ok(closed, 'the WebSocket through B closed');
    const home = await onB.get('/hub/home');
    assert.equal(home.status, 302, 'B signed the student out');
    for (const hub of [a!, b!]) {
      const refused = await new HubClient(hub.url).login('adm-ines', 'ines-password');
      assert.equal(refused.status, 403, `sign-in on ${hub.url}`);
      assert.match(refused.body, /disabled by an administrator/);
    }

    // Enabled again: the old sessions stay ended (destroyed, not merely refused while disabled).
    const page2 = await admin.get(`/hub/admin/users/${ines.escapedName}`);
    assert.equal((await admin.request('POST', `/hub/admin/users/${ines.escapedName}/enable`, { form: { _csrf: HubClient.csrfFrom(page2.body) } })).status, 303);
    assert.equal((await onB.get('/hub/home')).status, 302);
    // Even with her server running again, B's proxy lets the old server cookie in no more,
    // although it would have trusted its cached check for ten minutes.
    assert.equal(await a!.manager.start(ines), 'starting');
    await waitFor('the server to run again', () => a!.manager.status(ines), (s) => s === 'running', 60_000, 200);
    await waitFor('B to route it', async () => b!.routes.get(ines.escapedName), (route) => route !== undefined, 30_000, 100);
    const proxied = await onB.get(`/user/${ines.escapedName}/api/status`, { accept: 'application/json' });
    assert.notEqual(proxied.status, 200);
    await a!.manager.stop(ines);
  });
});
