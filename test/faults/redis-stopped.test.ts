import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually, readFile, reportFault, saveFile, secondsSince } from './support.js';

/** Well past the default session cache (sessionCacheMs, 10 s); the hub's settings are its defaults. */
const OUTAGE_MS = 30_000;

describe('fault: Redis stopped for 30 s, default session cache', function () {
  this.timeout(300_000);
  let redis: TestRedis | undefined;
  let hub: Hub | undefined;
  const sockets: KernelSocket[] = [];

  after(async () => {
    for (const s of sockets) s.close();
    // The hub stops its servers on close, which needs their records: close it while Redis runs.
    await redis?.restart().catch(() => undefined);
    await hub?.close();
    await redis?.stop();
  });

  it('a student with an open notebook keeps computing and saving through the proxy while Redis is away, and nothing is lost when it is back', async () => {
    // Durable, as a production Redis is: its restart keeps sessions and server records.
    redis = await startRedis({ durable: true });
    hub = await startTestHub('fault-redis-stopped', { store: 'redis', redisUrl: redis.url, redisKeyPrefix: `fault-redis-${randomUUID()}:` });
    await createUsers(hub, { rae: 'rae-password' });
    const rae = await signInAndStart(hub, 'rae', 'rae-password');
    await saveFile(rae, 'rae', 'before.txt', 'written before the outage');
    const kernelId = await startKernel(rae, 'rae');
    const notebook = await KernelSocket.open(rae, 'rae', kernelId);
    sockets.push(notebook);
    assert.equal(await notebook.execute('x = 0\nprint("ready")'), 'ready\n');

    await redis.stop();
    const stoppedAt = Date.now();
    let round = 0;
    let failures = 0;
    while (Date.now() - stoppedAt < OUTAGE_MS) {
      round++;
      // WebSocket: the open notebook computes and keeps its state.
      assert.equal(await notebook.execute('x += 1\nprint(x)'), `${round}\n`);
      // HTTP through the proxy: JupyterLab's calls and saving a file.
      if ((await rae.get('/user/rae/api/status', { accept: 'application/json' })).status !== 200) failures++;
      await saveFile(rae, 'rae', `during-${round}.txt`, `saved in round ${round}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    assert.equal(failures, 0, 'every proxied request of the open notebook was answered');
    // A reconnecting tab, past the session cache, is let in too.
    const reconnected = await KernelSocket.open(rae, 'rae', kernelId);
    sockets.push(reconnected);
    assert.equal(await reconnected.execute('print(x)'), `${round}\n`);
    // The hub's own pages say what is wrong.
    const home = await rae.get('/hub/home');
    assert.equal(home.status, 503);
    assert.match(home.body, /state store is unreachable[\s\S]*running notebooks keep working/);

    await redis.restart();
    const backAt = Date.now();
    await eventually('hub pages work again', async () => (await rae.get('/hub/home')).status === 200, 60_000);
    const recovered = secondsSince(backAt);
    assert.match((await rae.get('/hub/home')).body, /Running\./);
    assert.equal(await readFile(rae, 'rae', 'before.txt'), 'written before the outage');
    for (let r = 1; r <= round; r++) assert.equal(await readFile(rae, 'rae', `during-${r}.txt`), `saved in round ${r}`);
    assert.equal(await notebook.execute('print(x)'), `${round}\n`);
    // Still the same sign-in: no new login needed.
    const fresh = new HubClient(hub.url);
    assert.equal((await fresh.login('rae', 'rae-password')).status, 303);
    reportFault(
      'Redis stopped for 30 s (default session cache)',
      `nothing in the open notebook (${round} cells run, ${round} files saved, a socket reconnected); hub pages said "the state store is unreachable"`,
      'none',
      `${recovered} from Redis back to hub pages working`,
    );
  });
});
