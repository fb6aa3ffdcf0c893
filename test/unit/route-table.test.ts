import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createLogger } from '../../server/log.js';
import { MemoryStore, RedisStore } from '../../server/store/index.js';
import { ServerRepo, type ServerRecord } from '../../server/store/repos.js';
import { RouteTable, type Route } from '../../server/proxy/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/try.js';

const log = createLogger('silent');

function recordOf(name: string, port: number): ServerRecord {
  return { user: name, escapedName: name, phase: 'running', spawner: 'local', secret: `secret-of-${name}`, ephemeral: false, startedAt: Date.now(), endpoint: { host: '127.0.0.1', port } };
}

function routeOf(r: ServerRecord): Route {
  return { user: r.user, escapedName: r.escapedName, target: new URL(`http://127.0.0.1:${r.endpoint!.port}`), authorization: `token ${r.secret}` };
}

describe('the route table shared by two hub processes on one Redis', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  const closers: (() => Promise<void>)[] = [];

  before(async function () {
    // Durable, so a restart of Redis keeps the server records (as a production Redis would).
    redis = await startRedis({ durable: true });
  });
  after(async function () {
    await redis?.stop();
  });
  afterEach(async function () {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function hubProcess(prefix: string, resyncMs = 0): Promise<{ routes: RouteTable; servers: ServerRepo; store: RedisStore }> {
    const store = new RedisStore({ url: redis.url, keyPrefix: prefix, log });
    closers.push(() => store.close());
    const servers = new ServerRepo(store);
    const routes = new RouteTable({ store, records: servers, log, resyncMs });
    await routes.start();
    closers.push(() => routes.close());
    return { routes, servers, store };
  }

  it('routes a server started through one process in the other, with the secret from the server record only, and drops it when stopped', async function () {
    const prefix = `routes:${randomUUID()}:`;
    const a = await hubProcess(prefix);
    const b = await hubProcess(prefix);
    const record = recordOf('alice', 41000);
    await a.servers.put(record);
    await a.routes.add(routeOf(record));
    const onB = await waitFor('B to route alice', async () => b.routes.get('alice'), (r) => r !== undefined, 20_000, 20);
    assert.equal(onB!.target.origin, 'http://127.0.0.1:41000');
    assert.equal(onB!.authorization, 'token secret-of-alice');
    // The routes hash names the target, never the secret.
    assert.doesNotMatch(JSON.stringify(await a.store.hashGetAll('routes')), /secret-of-alice/);

    // A third process started later reads the routes at start.
    const c = await hubProcess(prefix);
    assert.equal(c.routes.get('alice')?.authorization, 'token secret-of-alice');

    await b.routes.remove('alice');
    await waitFor('A to drop alice', async () => a.routes.get('alice'), (r) => r === undefined, 20_000, 20);
    await waitFor('C to drop alice', async () => c.routes.get('alice'), (r) => r === undefined, 20_000, 20);
  });

  it('keeps routing through a Redis outage, and catches the other process up once Redis is back', async function () {
    const prefix = `routes:${randomUUID()}:`;
    const a = await hubProcess(prefix, 200);
    const b = await hubProcess(prefix, 200);
    const before = recordOf('bob', 41001);
    await a.servers.put(before);
    await a.routes.add(routeOf(before));
    await waitFor('B to route bob', async () => b.routes.get('bob'), (r) => r !== undefined, 20_000, 20);
    const started = recordOf('carol', 41002);
    await a.servers.put(started);

    await redis.stop();
    // A route change during the outage: A routes it at once and never throws.
    await a.routes.add(routeOf(started));
    assert.equal(a.routes.get('carol')?.target.port, '41002');
    assert.ok(b.routes.get('bob'), 'B keeps the routes it had while Redis is down');
    await redis.restart();

    await waitFor('B to route carol after the outage', async () => b.routes.get('carol'), (r) => r !== undefined, 30_000, 50);
    assert.equal(b.routes.get('carol')?.authorization, 'token secret-of-carol');
    assert.ok(b.routes.get('bob'));
  });
});
