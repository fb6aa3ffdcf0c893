import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { StoreUnavailable } from '../../server/errors.js';
import { createLogger, type Logger } from '../../server/log.js';
import { RedisStore } from '../../server/store/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** Bound for "soon"; never an assertion on speed. */
const EVENTUALLY_MS = 15_000;

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`expected within ${EVENTUALLY_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function succeeds(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return true;
  } catch (err) {
    if (err instanceof StoreUnavailable) return false;
    throw err;
  }
}

/** A logger whose records the test can read. */
function recordingLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = createLogger('warn', {
    write(line: string) {
      const record: unknown = JSON.parse(line);
      if (record && typeof record === 'object') records.push(record as Record<string, unknown>);
    },
  });
  return { log, records };
}

describe('the hub while Redis is down', function () {
  let redis: TestRedis;
  let store: RedisStore | undefined;

  beforeEach(async function () {
    redis = await startRedis();
  });

  afterEach(async function () {
    await store?.close();
    store = undefined;
    await redis?.stop();
  });

  it('calls fail with StoreUnavailable during the outage and work again once Redis is back', async function () {
    const { log, records } = recordingLogger();
    store = new RedisStore({ url: redis.url, keyPrefix: `outage:${randomUUID()}:`, log });
    const received: string[] = [];
    await store.subscribe('servers', (m) => received.push(m));
    await store.set('before', 'v');

    await redis.stop();
    const s = store;
    await assert.rejects(s.get('before'), StoreUnavailable);
    await assert.rejects(s.set('k', 'v', 1000), StoreUnavailable);
    await assert.rejects(s.increment('attempts', 1000), StoreUnavailable);
    await assert.rejects(s.hashGetAll('h'), StoreUnavailable);
    await assert.rejects(s.publish('servers', 'lost'), StoreUnavailable);
    await assert.rejects(s.subscribe('other', () => undefined), StoreUnavailable);
    await assert.rejects(s.ping(), StoreUnavailable);
    // Many calls at once during the outage all fail too, rather than piling up.
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => s.get(`k${i}`)));
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof StoreUnavailable));

    await redis.restart();
    await eventually('the store answers again', () => succeeds(() => s.ping()));
    await s.set('after', 'v');
    assert.equal(await s.get('after'), 'v');

    // Pub/sub is fire-and-forget: keep publishing until the restored subscription hears one.
    await eventually('the subscription made before the outage receives messages', async () => {
      await s.publish('servers', 'back');
      return received.includes('back');
    });
    assert.ok(!received.includes('lost'));

    // One line per connection per loss and per recovery, however many calls failed meanwhile.
    const lines = (msg: string, conn: string) => records.filter((r) => r.msg === msg && r.conn === conn).length;
    await eventually('both connections log their recovery', async () =>
      lines('reconnected to Redis', 'commands') === 1 && lines('reconnected to Redis', 'subscriber') === 1,
    );
    assert.equal(lines('lost connection to Redis; reconnecting', 'commands'), 1);
    assert.equal(lines('lost connection to Redis; reconnecting', 'subscriber'), 1);
    assert.ok(records.every((r) => r.level === 40), 'all records are warnings');
    assert.ok(records.every((r) => !('stack' in r) && !JSON.stringify(r).includes(redis.url)), 'no stacks, no URL');
  });

  it('a store created while Redis is down does not throw, fails calls, and works once Redis starts', async function () {
    await redis.stop();
    const { log, records } = recordingLogger();
    store = new RedisStore({ url: redis.url, keyPrefix: `outage:${randomUUID()}:`, log });
    const s = store;
    await assert.rejects(s.ping(), StoreUnavailable);
    await assert.rejects(s.setIfAbsent('lock', 'me', 1000), StoreUnavailable);
    await assert.rejects(s.subscribe('ch', () => undefined), StoreUnavailable);

    await redis.restart();
    await eventually('the store answers', () => succeeds(() => s.ping()));
    assert.equal(await s.setIfAbsent('lock', 'me', 60_000), true);
    const received: string[] = [];
    await s.subscribe('ch', (m) => received.push(m));
    await s.publish('ch', 'hello');
    await eventually('the message arrives', async () => received.includes('hello'));
    assert.equal(records.filter((r) => r.msg === 'cannot reach Redis; retrying' && r.conn === 'commands').length, 1);
  });

  it('closing during an outage is quick and final', async function () {
    store = new RedisStore({ url: redis.url, keyPrefix: `outage:${randomUUID()}:`, log: createLogger('silent') });
    await store.subscribe('ch', () => undefined);
    await redis.stop();
    await store.close();
    await store.close();
    await redis.restart();
    await assert.rejects(store.ping(), StoreUnavailable);
  });
});
