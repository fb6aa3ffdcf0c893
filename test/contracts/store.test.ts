import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '../../server/log.js';
import { MemoryStore, RedisStore } from '../../server/store/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const log = createLogger('silent');

storeContract('MemoryStore', async () => {
  const store = new MemoryStore({ log });
  return { store, cleanup: () => store.close() };
});

describe('RedisStore on a real redis-server', function () {
  let redis: TestRedis;

  before(async function () {
    redis = await startRedis();
  });

  after(async function () {
    await redis?.stop();
  });

  // A fresh prefix per test: tests share one server but never see each other's keys or channels.
  storeContract('RedisStore', async () => {
    const store = new RedisStore({ url: redis.url, keyPrefix: `test:${randomUUID()}:`, log });
    return { store, cleanup: () => store.close() };
  });

  describe('key prefix', function () {
    it('puts every key and channel under the prefix, so two hubs can share one Redis', async function () {
      const prefixA = `hubA:${randomUUID()}:`;
      const a = new RedisStore({ url: redis.url, keyPrefix: prefixA, log });
      const b = new RedisStore({ url: redis.url, keyPrefix: `hubB:${randomUUID()}:`, log });
      const raw = new Redis(redis.url);
      try {
        await a.set('user:alice', 'A');
        await a.hashSet('__proto__', { f: 'v' });
        assert.equal(await b.get('user:alice'), null);
        assert.equal(await raw.get(`${prefixA}user:alice`), 'A');
        assert.equal(await raw.hget(`${prefixA}__proto__`, 'f'), 'v');
        assert.equal(await raw.get('user:alice'), null);

        const gotB: string[] = [];
        const gotRaw: string[] = [];
        await b.subscribe('events', (m) => gotB.push(m));
        const rawSub = raw.duplicate();
        try {
          rawSub.on('message', (_channel: string, m: string) => gotRaw.push(m));
          await rawSub.subscribe(`${prefixA}events`);
          await a.publish('events', 'from A');
          const deadline = Date.now() + 5000;
          while (gotRaw.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          assert.deepEqual(gotRaw, ['from A']);
          assert.deepEqual(gotB, []);
        } finally {
          rawSub.disconnect();
        }
      } finally {
        raw.disconnect();
        await a.close();
        await b.close();
      }
    });
  });
});
