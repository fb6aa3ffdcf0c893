import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { loadConfig, type ConfigKey } from '../../server/config/index.js';
import { createHub, type Hub } from '../../server/index.js';
import { SpawnFailed, StoreUnavailable } from '../../server/errors.js';
import { ActivityTracker, RouteTable } from '../../server/proxy/index.js';
import { ServerManager } from '../../server/servers/server-manager.js';
import type { StartEvent } from '../../server/servers/progress.js';
import type { SpawnSpec, StartOptions, StartedServer } from '../../server/spawner/spawner.js';
import { ServerRepo, type UserRecord } from '../../server/store/repos.js';
import { MemoryStore, RedisStore, type Store } from '../../server/store/index.js';
import type { AtomicOperation } from '../../server/store/store.js';
import { HubClient } from '../helpers/client.js';
import { FakeSpawner, SlowSpawner } from '../helpers/fake-spawners.js';
import { ADMIN_PASSWORD, TEST_COOKIE_SECRET, createUsers, tempDataDir } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/*
 * Two hub processes on one Redis, as behind nginx: a student's start runs on one of them and
 * the progress page may be served by the other. Each "process" here has its own store client,
 * ServerManager and route table (or a whole hub); they share only Redis and, being on one
 * machine, the servers the fake spawner runs.
 */

const OUTPUT = path.resolve(__dirname, '../../test-output');
const silent = pino({ level: 'silent' });
const dana: UserRecord = { name: 'dana', escapedName: 'dana', roles: ['student'], source: 'local', createdAt: 0 };

/** Holds at "starting" like SlowSpawner, then reports one more step once let go: an event that can only reach a late page live. */
class SlowStepsSpawner extends SlowSpawner {
  override async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    return super.start(spec, {
      ...options,
      onProgress: (e) => {
        options.onProgress(e);
        if (e.progress === 10) void this.ready.opened.then(() => options.onProgress({ progress: 60, message: 'Opening your notebooks' }));
      },
    });
  }
}

/** Holds at "starting" until `ready` opens, then fails with a reason a student can read. */
class SlowFailingSpawner extends SlowSpawner {
  protected override async beforeReady(spec: SpawnSpec, signal: AbortSignal): Promise<void> {
    await super.beforeReady(spec, signal);
    throw new SpawnFailed('The notebook image is broken. Please tell your teacher.', 'fake failure');
  }
}

/** Reports many small steps, as an image pull layer by layer would. */
class ChattySpawner extends FakeSpawner {
  override async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    for (let i = 1; i <= 250; i++) options.onProgress({ progress: 10 + Math.floor(i / 5), message: `Pulling layer ${i} of 250` });
    return super.start(spec, options);
  }
}

/** A memory store that can't write start progress (a blip of the store that hits only those writes; it can't be timed for real). */
class ProgressLosingStore extends MemoryStore {
  /** While true, every progress write fails. */
  losing = true;
  override async listPush(key: string, ...values: string[]): Promise<number> {
    if (this.losing && key.startsWith('progress:')) throw new StoreUnavailable('fake outage (progress list)');
    return super.listPush(key, ...values);
  }
  override async atomic(operation: AtomicOperation): Promise<boolean> {
    if (this.losing && operation.then.some((w) => w.key.startsWith('progress:'))) throw new StoreUnavailable('fake outage (progress list)');
    return super.atomic(operation);
  }
  override async publish(channel: string, message: string): Promise<void> {
    if (this.losing && channel.startsWith('progress:')) throw new StoreUnavailable('fake outage (progress channel)');
    return super.publish(channel, message);
  }
}

/** Every event a watch delivers, and the moment it has delivered `n` of them or its last one. */
function collect(manager: ServerManager, user = dana) {
  const events: StartEvent[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let endNow: () => void = () => undefined;
  const ended = new Promise<StartEvent>((resolve) => (endNow = () => resolve(events.at(-1) as StartEvent)));
  const stop = manager.watch(user, (e) => {
    events.push(e);
    for (const w of waiters) if (events.length >= w.n) w.resolve();
    if (e.ready || e.failed) endNow();
  });
  return {
    events,
    ended,
    stop,
    /** Resolves once `n` events have arrived. */
    got: (n: number) => new Promise<void>((resolve) => (events.length >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

describe('start progress on two hub processes sharing one Redis', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  const managers: ServerManager[] = [];
  const stores: Store[] = [];
  const spawners: FakeSpawner[] = [];
  const hubs: Hub[] = [];
  const dataDirs: string[] = [];

  before(async () => {
    redis = await startRedis();
  });

  afterEach(async () => {
    for (const h of hubs.splice(0).reverse()) await h.close();
    for (const m of managers.splice(0)) await m.close(false);
    for (const s of stores.splice(0)) await s.close();
    for (const s of spawners.splice(0)) await s.destroy();
    for (const d of dataDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  after(async () => {
    await redis?.stop();
  });

  /** One hub process's lifecycle: its own Redis client, manager and route table. */
  async function hubProcess(prefix: string, spawner: FakeSpawner, store?: Store): Promise<ServerManager> {
    const own = store ?? new RedisStore({ url: redis.url, keyPrefix: prefix, log: silent });
    if (!store) stores.push(own);
    if (!spawners.includes(spawner)) spawners.push(spawner);
    const config = loadConfig({ overrides: { serverPollIntervalS: 0, startTimeoutS: 30, serverStopWaitS: 10 } });
    // Explicit, so that two managers on one memory store (two "processes" in one) share progress as on Redis.
    const manager = new ServerManager({ config, servers: new ServerRepo(own), store: own, spawner, routes: new RouteTable(), activity: new ActivityTracker(), log: silent, shareProgress: true });
    managers.push(manager);
    await manager.reconcile();
    return manager;
  }

  it('a page on the other hub process, opened mid-start, shows every step of the start from the beginning, ending in ready', async () => {
    const prefix = `progress-${randomUUID()}:`;
    const spawner = new SlowStepsSpawner();
    const a = await hubProcess(prefix, spawner);
    const b = await hubProcess(prefix, spawner);
    assert.equal(await a.start(dana), 'starting');
    const onA = collect(a);
    await spawner.reached.opened;

    // The page on B joins while the start on A still waits: it gets the steps so far from the store...
    const onB = collect(b);
    await onB.got(2);
    assert.deepEqual(onB.events.map((e) => e.message), ['Asking for a server', 'Starting a fake server']);
    // ...and the rest live, as they happen on A.
    spawner.ready.open();
    const last = await onB.ended;
    assert.equal(last.ready, true);
    assert.equal(last.url, '/user/dana/lab');
    await onA.ended;
    assert.deepEqual(onB.events, onA.events, 'the other process shows exactly what the starting one shows');
    assert.deepEqual(onB.events.map((e) => e.message), ['Asking for a server', 'Starting a fake server', 'Opening your notebooks', 'Your server is ready']);

    // A page opened on B after the start (a reload) replays the whole start, then ends.
    const late = collect(b);
    await late.ended;
    assert.deepEqual(late.events, onA.events);
    assert.equal(spawner.starts, 1);
  });

  it("a failed start's reason reaches the page on the other hub process, and a page opened there later still shows it", async () => {
    const prefix = `progress-${randomUUID()}:`;
    const spawner = new SlowFailingSpawner();
    const a = await hubProcess(prefix, spawner);
    const b = await hubProcess(prefix, spawner);
    assert.equal(await a.start(dana), 'starting');
    await spawner.reached.opened;
    const onB = collect(b);
    await onB.got(2);
    spawner.ready.open();
    const last = await onB.ended;
    assert.equal(last.failed, true);
    assert.equal(last.message, 'The notebook image is broken. Please tell your teacher.');

    const late = collect(b);
    assert.equal((await late.ended).message, 'The notebook image is broken. Please tell your teacher.');
    assert.equal(late.events.length, onB.events.length);
    assert.equal(await b.status(dana), 'stopped');
  });

  it('a second start replaces the first one\'s steps: the other process never shows the old failure for the new start', async () => {
    const prefix = `progress-${randomUUID()}:`;
    const failing = new SlowFailingSpawner();
    const a = await hubProcess(prefix, failing);
    await a.start(dana);
    failing.ready.open();
    assert.equal((await collect(a).ended).failed, true);

    // The student clicks Start again; this time the start runs on B, and the page is on A.
    const spawner = new SlowSpawner();
    const b = await hubProcess(prefix, spawner);
    assert.equal(await b.start(dana), 'starting');
    await spawner.reached.opened;
    const onA = collect(a);
    await onA.got(2);
    assert.ok(onA.events.every((e) => !e.failed), JSON.stringify(onA.events));
    spawner.ready.open();
    assert.equal((await onA.ended).ready, true);
  });

  it('a start goes on when its progress cannot be written to the store: the server starts, and a page on the other process still ends in ready', async () => {
    const store = new ProgressLosingStore();
    const spawner = new SlowSpawner();
    const a = await hubProcess('', spawner, store);
    const b = await hubProcess('', spawner, store);
    assert.equal(await a.start(dana), 'starting');
    await spawner.reached.opened;
    const onA = collect(a);
    const onB = collect(b);
    // Nothing of the start is in the store: B says it is starting rather than "not running".
    await onB.got(1);
    assert.equal(onB.events[0]?.message, 'Your server is starting');
    spawner.ready.open();
    assert.equal((await onA.ended).ready, true);
    assert.deepEqual(onA.events.map((e) => e.message), ['Asking for a server', 'Starting a fake server', 'Your server is ready']);
    // B learns the end from the server's state once no event comes.
    const last = await onB.ended;
    assert.equal(last.ready, true);
    assert.equal(last.url, '/user/dana/lab');
    assert.equal(await a.status(dana), 'running');
    assert.equal(spawner.starts, 1);
  });

  it('after a blip of the store during a start, a page opened on the other process shows every step again', async () => {
    const store = new ProgressLosingStore();
    const spawner = new SlowSpawner();
    const a = await hubProcess('', spawner, store);
    const b = await hubProcess('', spawner, store);
    assert.equal(await a.start(dana), 'starting');
    await spawner.reached.opened;
    // The store is back before the start ends: its last write puts the steps it missed back too.
    const onA = collect(a);
    store.losing = false;
    spawner.ready.open();
    assert.equal((await onA.ended).ready, true);
    const onB = collect(b);
    await onB.ended;
    assert.deepEqual(onB.events, onA.events);
    assert.deepEqual(onB.events.map((e) => e.message), ['Asking for a server', 'Starting a fake server', 'Your server is ready']);
  });

  it('a start with hundreds of steps keeps a bounded record in Redis, and a late page on the other process still ends in ready', async () => {
    const prefix = `progress-${randomUUID()}:`;
    const spawner = new ChattySpawner();
    const a = await hubProcess(prefix, spawner);
    const b = await hubProcess(prefix, spawner);
    await a.start(dana);
    const own = collect(a);
    assert.equal((await own.ended).ready, true);
    const late = collect(b);
    const last = await late.ended;
    assert.equal(last.ready, true);
    assert.equal(late.events[0]?.message, 'Asking for a server');
    const stored = await stores[0].listRange('progress:dana');
    assert.ok(stored.length <= 101, `${stored.length} events stored`);
    assert.ok(own.events.length > 250);
  });

  describe('over HTTP: two hubs behind one address', function () {
    function hubConfig(prefix: string, label: string, overrides: Partial<Record<ConfigKey, unknown>> = {}) {
      const dataDir = tempDataDir(label);
      dataDirs.push(dataDir);
      return loadConfig({
        overrides: {
          port: 0,
          dataDir,
          adminPassword: ADMIN_PASSWORD,
          store: 'redis',
          redisUrl: redis.url,
          redisKeyPrefix: prefix,
          cookieSecret: TEST_COOKIE_SECRET,
          poolSize: 0,
          stopServersOnExit: false,
          logLevel: 'debug',
          ...overrides,
        },
      });
    }

    function logFor(label: string) {
      fs.mkdirSync(OUTPUT, { recursive: true });
      return pino({ level: 'debug' }, pino.destination({ dest: path.join(OUTPUT, `${label}.log`), sync: true, append: true }));
    }

    it('a student who starts on hub A and whose progress page is served by hub B sees the start to the end there, then reaches the server through B', async () => {
      const prefix = `progress-http-${randomUUID()}:`;
      const spawner = new SlowSpawner();
      spawners.push(spawner);
      const hubA = await createHub(hubConfig(prefix, 'progress-hub-a'), { spawner, log: logFor('progress-hub-a') });
      hubs.push(hubA);
      const hubB = await createHub(hubConfig(prefix, 'progress-hub-b'), { spawner, log: logFor('progress-hub-b') });
      hubs.push(hubB);
      await createUsers(hubA, { dana: 'dana-password' });

      const onA = new HubClient(hubA.url);
      assert.equal((await onA.login('dana', 'dana-password')).status, 303);
      const spawn = await onA.get('/hub/spawn');
      assert.equal(spawn.status, 303);
      assert.match(spawn.location ?? '', /^\/hub\/spawn-pending\/dana\?next=/);
      await spawner.reached.opened;

      // The next request goes to B, with the same cookies (one browser behind one address).
      const onB = Object.assign(new HubClient(hubB.url), { jar: onA.jar });
      const pending = await onB.get(spawn.location ?? '');
      assert.equal(pending.status, 200);

      const streamPath = '/hub/api/users/dana/server/progress';
      const res = await fetch(hubB.url + streamPath, { headers: { accept: 'text/event-stream', cookie: onB.cookieHeader(streamPath) } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      const events = (): StartEvent[] =>
        text
          .split('\n\n')
          .filter((b) => b.startsWith('data: '))
          .map((b) => JSON.parse(b.slice(6)) as StartEvent);
      // Read the steps replayed so far, while the start on A still waits.
      while (events().length < 2) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      assert.deepEqual(events().map((e) => e.message), ['Asking for a server', 'Starting a fake server']);
      spawner.ready.open();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      const last = events().at(-1);
      assert.equal(last?.ready, true, JSON.stringify(events()));
      assert.equal(last?.url, '/user/dana/lab');

      // The page's next step, on B: the server, through B's proxy.
      const { hub: redirect, handoff } = await onB.openServer('/lab');
      assert.equal(redirect.status, 302);
      assert.equal(handoff?.status, 302, 'B hands the sign-in over to dana\'s own origin');
      assert.equal(new URL(handoff?.location ?? '', 'http://x').pathname, '/user/dana/lab');
      assert.equal((await onB.get('/user/dana/api/status', { accept: 'application/json' })).status, 200);
      assert.equal(spawner.starts, 1);
    });
  });
});
