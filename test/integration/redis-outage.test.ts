import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { StoreUnavailable } from '../../server/errors.js';
import { createLogger, type Logger } from '../../server/log.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hub } from '../../server/index.js';
import { RedisStore } from '../../server/store/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { KernelSocket, startKernel, xsrfToken } from '../helpers/kernel.js';
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
    // Subscriptions have a connection of their own, which may come back a moment after the
    // commands' one: a refused subscribe registers nothing, so asking again is safe.
    await eventually('the store takes a subscription', () => succeeds(() => s.subscribe('ch', (m) => received.push(m))));
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

/** How long Redis stays down: well past the default session cache (sessionCacheMs, 10 s). */
const OUTAGE_MS = 30_000;
const STORE_OUTAGE_PAGE = /state store is unreachable[\s\S]*running notebooks keep working/;

describe('a student\'s notebook while Redis is down, with the default settings', function () {
  this.timeout(300_000);
  let redis: TestRedis | undefined;
  let hub: Hub | undefined;
  const sockets: KernelSocket[] = [];

  afterEach(async function () {
    for (const s of sockets) s.close();
    // Close the hub while Redis runs, so it can stop the servers it recorded there.
    await redis?.restart().catch(() => undefined);
    await hub?.close();
    await redis?.stop();
  });

  it('keeps working over HTTP and WebSocket for 30 s without Redis, while a new sign-in gets a clear 503 page, and all works once Redis is back', async () => {
    // A durable Redis, as in production: sessions and server records survive its restart.
    redis = await startRedis({ durable: true });
    // No tuning of sessionCacheMs or sessionStaleWhileErrorS: the defaults must carry a student through.
    hub = await startTestHub('redis-outage-hub', { store: 'redis', redisUrl: redis.url, redisKeyPrefix: `outage-hub-${randomUUID()}:` });
    await createUsers(hub, { hana: 'hana-password', ivan: 'ivan-password' });
    const hana = await signInAndStart(hub, 'hana', 'hana-password');
    const kernelId = await startKernel(hana, 'hana');
    const notebook = await KernelSocket.open(hana, 'hana', kernelId);
    sockets.push(notebook);
    assert.equal(await notebook.execute('x = 41\nprint("ready")'), 'ready\n');

    await redis.stop();
    const stoppedAt = Date.now();
    let round = 0;
    while (Date.now() - stoppedAt < OUTAGE_MS) {
      round++;
      // The open notebook computes, and keeps its state.
      assert.equal(await notebook.execute('x += 1\nprint(x)'), `${41 + round}\n`);
      // Plain HTTP through the proxy: JupyterLab's own calls, and saving a file.
      assert.equal((await hana.get('/user/hana/api/status', { accept: 'application/json' })).status, 200);
      const save = await hana.request('PUT', `/user/hana/api/contents/during-outage-${round}.txt`, {
        headers: { 'content-type': 'application/json', 'x-xsrftoken': await xsrfToken(hana, 'hana'), accept: 'application/json' },
        body: JSON.stringify({ type: 'file', format: 'text', content: `saved in round ${round}` }),
      });
      assert.ok(save.status === 200 || save.status === 201, `saving during the outage answered ${save.status}`);
      await sleep(3000);
    }
    // Past the session cache: a new WebSocket (a reconnecting kernel, a new notebook tab) is let in too.
    const reconnected = await KernelSocket.open(hana, 'hana', kernelId);
    sockets.push(reconnected);
    assert.equal(await reconnected.execute('print(x)'), `${41 + round}\n`);

    // Hub pages say what is wrong; nobody can sign in, and the page says why.
    const home = await hana.get('/hub/home');
    assert.equal(home.status, 503);
    assert.match(home.body, STORE_OUTAGE_PAGE);
    const ivan = new HubClient(hub.url);
    const signIn = await ivan.get('/hub/login');
    const refused = signIn.status === 503 ? signIn : await ivan.request('POST', '/hub/login', { form: { _csrf: HubClient.csrfFrom(signIn.body), username: 'ivan', password: 'ivan-password' } });
    assert.equal(refused.status, 503);
    assert.match(refused.body, STORE_OUTAGE_PAGE);

    await redis.restart();
    await eventually('hub pages work again once Redis is back', async () => (await hana.get('/hub/home')).status === 200);
    assert.match((await hana.get('/hub/home')).body, /Running\./);
    assert.equal(await notebook.execute('print(x)'), `${41 + round}\n`);
    const listing = await hana.get('/user/hana/api/contents/during-outage-1.txt?content=1&format=text', { accept: 'application/json' });
    assert.equal(JSON.parse(listing.body).content, 'saved in round 1');
    // A new sign-in works again, up to a running server of one's own.
    const ivanAfter = await signInAndStart(hub, 'ivan', 'ivan-password');
    assert.equal((await ivanAfter.get('/user/ivan/api/status', { accept: 'application/json' })).status, 200);
  });

  it('refuses, during the outage, a session signed out on this hub before it', async () => {
    redis = await startRedis({ durable: true });
    hub = await startTestHub('redis-outage-revoked', { store: 'redis', redisUrl: redis.url, redisKeyPrefix: `outage-revoked-${randomUUID()}:` });
    await createUsers(hub, { jo: 'jo-password' });
    const jo = await signInAndStart(hub, 'jo', 'jo-password');
    assert.equal((await jo.get('/user/jo/api/status', { accept: 'application/json' })).status, 200);
    // A copy of jo's cookies, as an attacker who took them would hold.
    const stolen = new HubClient(hub.url);
    for (const [id, c] of jo.cookies) stolen.cookies.set(id, { ...c });
    assert.equal((await stolen.get('/user/jo/api/status', { accept: 'application/json' })).status, 200);

    const page = await jo.get('/hub/home');
    const logout = await jo.request('POST', '/hub/logout', { form: { _csrf: HubClient.csrfFrom(page.body) } });
    assert.equal(logout.status, 200);
    await redis.stop();
    const res = await stolen.get('/user/jo/api/status', { accept: 'application/json' });
    assert.notEqual(res.status, 200, 'a signed-out session must not come back from the stale cache');
  });
});
