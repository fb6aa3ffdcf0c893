import assert from 'node:assert/strict';
import pino from 'pino';
import { loadConfig, type ConfigKey } from '../../server/config/index.js';
import { ActivityTracker, RouteTable } from '../../server/proxy/index.js';
import { ServerManager } from '../../server/servers/server-manager.js';
import { HubStarting, ServerBusy } from '../../server/servers/lifecycle-errors.js';
import { ServerRepo, type UserRecord } from '../../server/store/repos.js';
import { MemoryStore, type Store } from '../../server/store/index.js';
import { FailingSpawner, FakeSpawner, FlakyStore, NeverSpawner, SlowSpawner, SlowStopSpawner } from '../helpers/fake-spawners.js';

const log = pino({ level: 'silent' });

const dana: UserRecord = { name: 'dana', escapedName: 'dana', roles: ['student'], source: 'local', createdAt: 0 };

/** One hub process's lifecycle parts: its own manager and route table, on a store that may be shared with other "hubs". */
interface TestHub {
  manager: ServerManager;
  routes: RouteTable;
  servers: ServerRepo;
}

describe('the server lifecycle (ServerManager with fake spawners on the memory store)', function () {
  const hubs: ServerManager[] = [];
  const spawners: FakeSpawner[] = [];

  async function hub(store: Store, spawner: FakeSpawner, overrides: Partial<Record<ConfigKey, unknown>> = {}): Promise<TestHub> {
    const config = loadConfig({ overrides: { serverPollIntervalS: 0, startTimeoutS: 10, serverStopWaitS: 10, ...overrides } });
    const routes = new RouteTable();
    const servers = new ServerRepo(store);
    const manager = new ServerManager({ config, servers, store, spawner, routes, activity: new ActivityTracker(), log });
    hubs.push(manager);
    if (!spawners.includes(spawner)) spawners.push(spawner);
    await manager.reconcile();
    return { manager, routes, servers };
  }

  /** Resolves with the last event of the user's current start. */
  function outcome(manager: ServerManager, user = dana): Promise<{ ready?: boolean; failed?: boolean; message: string }> {
    return new Promise((resolve) => {
      manager.watch(user, (e) => {
        if (e.ready || e.failed) resolve(e);
      });
    });
  }

  afterEach(async () => {
    for (const m of hubs.splice(0)) await m.close(false);
    for (const s of spawners.splice(0)) await s.destroy();
  });

  it('a double-clicked start joins the first: one server starts, both clicks see it', async () => {
    const spawner = new SlowSpawner();
    const { manager, routes } = await hub(new MemoryStore(), spawner);
    const [a, b] = await Promise.all([manager.start(dana), manager.start(dana)]);
    assert.deepEqual([a, b], ['starting', 'starting']);
    assert.equal(await manager.start(dana), 'starting');
    spawner.ready.open();
    assert.equal((await outcome(manager)).ready, true);
    assert.equal(spawner.starts, 1);
    assert.equal(spawner.serversOf('dana').length, 1);
    assert.ok(routes.get('dana'));
    assert.equal(await manager.status(dana), 'running');
  });

  it('a start clicked on two hub processes sharing one store starts one server', async () => {
    const store = new MemoryStore();
    const spawner = new SlowSpawner();
    const one = await hub(store, spawner);
    const two = await hub(store, spawner);
    assert.equal(await one.manager.start(dana), 'starting');
    await spawner.reached.opened;
    // The second hub sees the first one's start in the store and joins it.
    assert.equal(await two.manager.start(dana), 'starting');
    spawner.ready.open();
    assert.equal((await outcome(one.manager)).ready, true);
    assert.equal(spawner.starts, 1);
    // Asked afterwards, the second hub adopts the running server instead of starting another.
    assert.equal(await two.manager.start(dana), 'running');
    assert.equal(spawner.starts, 1);
    assert.equal(Number(two.routes.get('dana')?.target.port), spawner.serversOf('dana')[0]?.port);
  });

  it('stop during a start cancels it: nothing is left running and the user can start again', async () => {
    const spawner = new SlowSpawner();
    const { manager, routes, servers } = await hub(new MemoryStore(), spawner);
    assert.equal(await manager.start(dana), 'starting');
    await spawner.reached.opened;
    const ended = outcome(manager);
    await manager.stop(dana);
    assert.equal((await ended).failed, true);
    assert.equal(spawner.serversOf('dana').length, 0);
    assert.equal(routes.get('dana'), undefined);
    assert.equal(await servers.get('dana'), null);
    assert.equal(await manager.status(dana), 'stopped');

    spawner.ready.open();
    assert.equal(await manager.start(dana), 'starting');
    assert.equal((await outcome(manager)).ready, true);
    assert.equal(spawner.serversOf('dana').length, 1);
  });

  it('a stop on another hub process waits for the start there, then stops the server: it never erases a start', async () => {
    const store = new MemoryStore();
    const spawner = new SlowSpawner();
    const one = await hub(store, spawner);
    const two = await hub(store, spawner);
    assert.equal(await one.manager.start(dana), 'starting');
    await spawner.reached.opened;
    const stopping = two.manager.stop(dana);
    spawner.ready.open();
    assert.equal((await outcome(one.manager)).ready, true);
    await stopping;
    assert.equal(spawner.serversOf('dana').length, 0, 'the server that start made was stopped, not orphaned');
    assert.equal(await one.servers.get('dana'), null);
    assert.equal(await two.manager.status(dana), 'stopped');
  });

  it('a start while the server is stopping waits for the stop, then starts a fresh one', async () => {
    const spawner = new SlowStopSpawner();
    const { manager, servers } = await hub(new MemoryStore(), spawner);
    await manager.start(dana);
    assert.equal((await outcome(manager)).ready, true);
    const first = spawner.serversOf('dana')[0]?.id;

    const stopping = manager.stop(dana);
    await spawner.stopping.opened;
    assert.equal((await servers.get('dana'))?.phase, 'stopping');
    assert.equal((await manager.state(dana)).state, 'stopping');
    const starting = manager.start(dana);
    spawner.stopped.open();
    await stopping;
    assert.equal(await starting, 'starting');
    assert.equal((await outcome(manager)).ready, true);
    const now = spawner.serversOf('dana');
    assert.equal(now.length, 1);
    assert.notEqual(now[0]?.id, first);
  });

  it('a start while the server is stopping for too long is refused with "still stopping", and nothing changes', async () => {
    const spawner = new SlowStopSpawner();
    const { manager, servers } = await hub(new MemoryStore(), spawner, { serverStopWaitS: 0 });
    await manager.start(dana);
    assert.equal((await outcome(manager)).ready, true);
    const stopping = manager.stop(dana);
    await spawner.stopping.opened;
    await assert.rejects(manager.start(dana), (err: unknown) => err instanceof ServerBusy && err.status === 503 && /still stopping/.test(err.userMessage));
    spawner.stopped.open();
    await stopping;
    assert.equal(spawner.starts, 1);
    assert.equal(await servers.get('dana'), null);
  });

  it('a start that finds the server running adopts it and never restarts it (a new hub on the same store)', async () => {
    const store = new MemoryStore();
    const spawner = new FakeSpawner();
    const one = await hub(store, spawner);
    await one.manager.start(dana);
    assert.equal((await outcome(one.manager)).ready, true);
    const id = spawner.serversOf('dana')[0]?.id;
    await one.manager.close(false);

    const two = await hub(store, spawner);
    assert.ok(two.routes.get('dana'), 'reconcile routed the server that kept running');
    assert.equal(await two.manager.start(dana), 'running');
    assert.equal(await two.manager.start(dana), 'running');
    assert.equal(spawner.starts, 1);
    assert.equal(spawner.stops, 0);
    assert.equal(spawner.serversOf('dana')[0]?.id, id);
  });

  it('a failed write of the "running" record stops the new server instead of leaving an untracked one', async () => {
    const store = new FlakyStore();
    const spawner = new FakeSpawner();
    const { manager, routes } = await hub(store, spawner);
    store.failWrites((key, value) => key === 'server:dana' && value.includes('"phase":"running"'));
    await manager.start(dana);
    const end = await outcome(manager);
    assert.equal(end.failed, true);
    assert.match(end.message, /lost its database/);
    assert.equal(spawner.serversOf('dana').length, 0);
    assert.equal(routes.get('dana'), undefined);
    const state = await manager.state(dana);
    assert.equal(state.state, 'failed');
    assert.match(state.reason ?? '', /lost its database/);
    // The lock was released: the next start works.
    assert.equal(await manager.start(dana), 'starting');
    assert.equal((await outcome(manager)).ready, true);
  });

  it('a failed write of the "starting" record refuses the start clearly and starts nothing', async () => {
    const store = new FlakyStore();
    const spawner = new FakeSpawner();
    const { manager } = await hub(store, spawner);
    store.failWrites((key) => key === 'server:dana');
    await assert.rejects(manager.start(dana), (err: unknown) => err instanceof Error && /lost its database/.test(err.message));
    assert.equal(spawner.starts, 0);
    assert.equal(await manager.start(dana), 'starting');
    assert.equal((await outcome(manager)).ready, true);
  });

  it('a server that never gets ready fails at the start timeout with a reason the student is shown', async () => {
    const spawner = new NeverSpawner();
    const { manager } = await hub(new MemoryStore(), spawner, { startTimeoutS: 1 });
    await manager.start(dana);
    const end = await outcome(manager);
    assert.equal(end.failed, true);
    assert.match(end.message, /did not become ready within 1 seconds/);
    assert.deepEqual(await manager.state(dana), { state: 'failed', reason: end.message });
    assert.equal(spawner.running.size, 0);
  });

  it('a failing start keeps its reason until the next start, which works', async () => {
    const spawner = new FailingSpawner(1);
    const { manager } = await hub(new MemoryStore(), spawner);
    await manager.start(dana);
    assert.equal((await outcome(manager)).failed, true);
    assert.deepEqual(await manager.state(dana), { state: 'failed', reason: 'The notebook image is broken. Please tell your teacher.' });
    assert.equal(await manager.status(dana), 'stopped');
    await manager.start(dana);
    assert.equal((await outcome(manager)).ready, true);
    assert.equal(await manager.status(dana), 'running');
  });

  it('a server that dies by itself loses its route and record, and the user is told it is not running', async () => {
    const spawner = new FakeSpawner();
    const { manager, routes, servers } = await hub(new MemoryStore(), spawner);
    await manager.start(dana);
    assert.equal((await outcome(manager)).ready, true);
    await spawner.crash('dana');
    assert.deepEqual(await manager.pollOnce(), ['dana']);
    assert.equal(routes.get('dana'), undefined);
    assert.equal(await servers.get('dana'), null);
    assert.equal(await manager.status(dana), 'stopped');
  });

  it('the home page and API notice a dead server without waiting for the next poll', async () => {
    const spawner = new FakeSpawner();
    const { manager, routes } = await hub(new MemoryStore(), spawner);
    await manager.start(dana);
    assert.equal((await outcome(manager)).ready, true);
    await spawner.crash('dana');
    assert.equal(await manager.status(dana), 'stopped');
    assert.equal(routes.get('dana'), undefined);
  });

  it('servers polled on an interval: a crashed one is noticed by the poller alone', async () => {
    const spawner = new FakeSpawner();
    const { manager, routes } = await hub(new MemoryStore(), spawner, { serverPollIntervalS: 1 });
    await manager.start(dana);
    assert.equal((await outcome(manager)).ready, true);
    await spawner.crash('dana');
    while (routes.get('dana')) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(routes.get('dana'), undefined);
  });

  it('reconcile stops an orphan the store does not know, though the hub has no secret for it', async () => {
    const spawner = new FakeSpawner();
    const store = new MemoryStore();
    const one = await hub(store, spawner);
    await one.manager.start(dana);
    assert.equal((await outcome(one.manager)).ready, true);
    await one.manager.close(false);

    // A new hub on an empty store (the memory store after a restart): dana's server is an orphan.
    const two = await hub(new MemoryStore(), spawner);
    assert.equal(spawner.running.size, 0);
    assert.equal(spawner.stopSpecs.at(-1)?.secret, '');
    assert.equal(two.routes.get('dana'), undefined);
  });

  it('a start interrupted by a hub crash ends as failed, and its half-started server is stopped once the dead hub\'s lock expires', async () => {
    const store = new MemoryStore();
    const spawner = new FakeSpawner();
    const servers = new ServerRepo(store);
    // What a hub killed mid-start leaves: a `starting` record, a server the spawner runs, and its lock.
    const secret = 'secret-of-the-dead-hub';
    const spec = { user: 'dana', escapedName: 'dana', baseUrl: '/user/dana/', secret, defaultUrl: '/lab', ephemeral: false, env: {} };
    await spawner.start(spec, { signal: new AbortController().signal, onProgress: () => undefined, log });
    await servers.put({ user: 'dana', escapedName: 'dana', phase: 'starting', spawner: 'fake', secret, ephemeral: false, startedAt: Date.now() });
    await store.set('lock:server:dana', 'the-dead-hub', 300);

    const { manager } = await hub(store, spawner);
    // The lock may still be a live start on another hub: left alone for now.
    assert.equal(spawner.running.size, 1);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await manager.pollOnce();
    assert.equal(spawner.running.size, 0);
    const state = await manager.state(dana);
    assert.equal(state.state, 'failed');
    assert.match(state.reason ?? '', /interrupted/);
    assert.equal(await manager.start(dana), 'starting');
    assert.equal((await outcome(manager)).ready, true);
  });

  it('nothing starts or stops before reconcile: a click during a hub restart gets "the hub is starting"', async () => {
    const store = new MemoryStore();
    const spawner = new FakeSpawner();
    const config = loadConfig({ overrides: { serverPollIntervalS: 0 } });
    const manager = new ServerManager({ config, servers: new ServerRepo(store), store, spawner, routes: new RouteTable(), activity: new ActivityTracker(), log });
    hubs.push(manager);
    spawners.push(spawner);
    assert.equal(manager.ready, false);
    await assert.rejects(manager.start(dana), HubStarting);
    await assert.rejects(manager.stop(dana), HubStarting);
    assert.equal(spawner.starts, 0);
    await manager.reconcile();
    assert.equal(manager.ready, true);
  });
});
