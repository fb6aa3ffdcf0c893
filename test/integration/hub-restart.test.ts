import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { createUsers, signInAndStart, startTestHub, tempDataDir } from '../helpers/hub.js';
import { startRedis } from '../helpers/redis.js';

describe('a hub restart with Redis', function () {
  this.timeout(120_000);
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const hubs: Hub[] = [];

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const h of hubs.reverse()) await h.close().catch(() => undefined);
    await redis?.stop();
  });

  it('keeps running servers: the signed-in student reaches the same server and kernel afterwards', async () => {
    const dataDir = tempDataDir('restart');
    const settings = { store: 'redis', redisUrl: redis.url, redisKeyPrefix: `restart-${Date.now()}:`, dataDir };
    const first = await startTestHub('hub-restart-1', { ...settings, stopServersOnExit: false });
    hubs.push(first);
    await createUsers(first, { dana: 'dana-password' });
    const dana = await signInAndStart(first, 'dana', 'dana-password');
    const kernelId = await startKernel(dana, 'dana');
    const before = await KernelSocket.open(dana, 'dana', kernelId);
    await before.execute('x = 41');
    before.close();
    await first.close();

    const second = await startTestHub('hub-restart-2', { ...settings, stopServersOnExit: true });
    hubs.push(second);
    // Same browser, same cookies, new hub process (on another port).
    const client = Object.assign(Object.create(Object.getPrototypeOf(dana) as object) as typeof dana, dana, { baseUrl: second.url });
    const status = await client.get('/user/dana/api/status', { accept: 'application/json' });
    assert.equal(status.status, 200);
    const home = await client.get('/hub/home');
    assert.match(home.body, /Running/);
    const after = await KernelSocket.open(client, 'dana', kernelId);
    assert.equal(await after.execute('print(x + 1)'), '42\n');
    after.close();
  });
});
