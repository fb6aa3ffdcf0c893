import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { StartupError } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, signInAndStart, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { startRedis } from '../helpers/redis.js';

describe('bad input and failing parts get a clear answer', function () {
  this.timeout(120_000);
  const hubs: Hub[] = [];
  after(async () => {
    for (const h of hubs) await h.close().catch(() => undefined);
  });

  it('a wrong password gets the login page again with a message; repeated failures are throttled', async () => {
    const hub = await startTestHub('bad-login', { loginRateLimit: 3 });
    hubs.push(hub);
    await createUsers(hub, { erin: 'erin-password' });
    const c = new HubClient(hub.url);
    const wrong = await c.login('erin', 'nope');
    assert.equal(wrong.status, 401);
    assert.match(wrong.body, /Wrong username or password/);
    assert.equal(c.cookie('oerhub-user-erin'), undefined);
    const unknown = await c.login('nobody', 'nope');
    assert.equal(unknown.status, 401);
    assert.match(unknown.body, /Wrong username or password/);
    await c.login('erin', 'nope');
    await c.login('erin', 'nope');
    const blocked = await c.login('erin', 'erin-password');
    assert.equal(blocked.status, 429);
    assert.match(blocked.body, /Too many failed attempts/);
    // Another username from the same address is not locked out by erin's failures.
    await createUsers(hub, { finn: 'finn-password' });
    assert.equal((await new HubClient(hub.url).login('finn', 'finn-password')).status, 303);
  });

  it('a login form posted without its XSRF token is refused', async () => {
    const hub = hubs[0];
    const c = new HubClient(hub.url);
    await c.get('/hub/login');
    const r = await c.request('POST', '/hub/login', { form: { username: 'erin', password: 'erin-password' } });
    assert.equal(r.status, 403);
    assert.match(r.body, /form has expired/);
  });

  it('an unwritable data folder stops the start with a message naming it', async () => {
    const file = path.join(tempDataDir('not-a-dir'), 'plain-file');
    fs.writeFileSync(file, 'x');
    await assert.rejects(startTestHub('bad-datadir', { dataDir: path.join(file, 'sub') }), (err: Error) => err instanceof StartupError && /data folder .*plain-file\/sub.*OERHUB_DATA_DIR/.test(err.message));
  });

  it('a port in use stops the start with a message naming the port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startTestHub('bad-port', { port }), (err: Error) => err instanceof StartupError && err.message.includes(`Port ${port}`));
    } finally {
      blocker.close();
    }
  });

  it('an unreachable Redis at start stops the start with a message naming the URL', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    probe.close();
    // Named with its password hidden: start-up messages end up in logs and terminals.
    await assert.rejects(
      startTestHub('bad-redis', { store: 'redis', redisUrl: `redis://:hunter2@127.0.0.1:${port}/0` }),
      (err: Error) => err instanceof StartupError && err.message.includes(`redis://:***@127.0.0.1:${port}/0`) && !err.message.includes('hunter2'),
    );
  });

  it('a missing Jupyter in the notebook environment fails the start with a clear message on the progress page', async () => {
    const hub = await startTestHub('bad-venv', { notebookVenv: tempDataDir('empty-venv') });
    hubs.push(hub);
    await createUsers(hub, { gus: 'gus-password' });
    const c = new HubClient(hub.url);
    await c.login('gus', 'gus-password');
    await c.get('/hub/spawn');
    await assert.rejects(waitForReady(c, 'gus'), /not installed/);
    const home = await c.get('/hub/home');
    assert.match(home.body, /Not running/);
  });

  it('Redis going away: pages answer 503, running servers keep working, and the hub recovers', async () => {
    const redis = await startRedis({ durable: true });
    let hub: Hub | undefined;
    try {
      hub = await startTestHub('redis-away', { store: 'redis', redisUrl: redis.url, redisKeyPrefix: `away-${Date.now()}:` });
      await createUsers(hub, { hana: 'hana-password' });
      const hana = await signInAndStart(hub, 'hana', 'hana-password');
      assert.equal((await hana.get('/user/hana/api/status', { accept: 'application/json' })).status, 200);
      await redis.stop();
      const home = await hana.get('/hub/home');
      assert.equal(home.status, 503);
      assert.match(home.body, /state store is unreachable/);
      const health = await fetch(`${hub.url}/hub/health`);
      assert.equal(health.status, 503);
      // The student's server is not lost: the proxy still serves it from its cache.
      assert.equal((await hana.get('/user/hana/api/status', { accept: 'application/json' })).status, 200);
      await redis.restart();
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = (await hana.get('/hub/home')).status === 200;
        if (!ok) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(ok, 'hub pages work again once Redis is back');
      assert.match((await hana.get('/hub/home')).body, /Running/);
    } finally {
      // Close the hub while Redis runs, so it can stop the servers it recorded there.
      await redis.restart().catch(() => undefined);
      await hub?.close();
      await redis.stop().catch(() => undefined);
    }
  });
});
