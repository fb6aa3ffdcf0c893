import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../server/log.js';
import { MemoryStore, RedisStore, SqliteStore, type Store } from '../../server/store/index.js';
import { LeaderDuties, LeaderLock } from '../../server/cluster/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/try.js';

const log = createLogger('silent');
// Short, so takeovers happen quickly; the tests wait for them, never time them.
const TTL_MS = 1500;
const RENEW_MS = 250;
const KEY = 'leader';

/** Two "hub processes" on one store: each gets its own connection where the backend has connections. */
interface Backend {
  name: string;
  open(): Promise<{ first: Store; second: Store; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'memory',
    async open() {
      const store = new MemoryStore({ log });
      return { first: store, second: store, cleanup: () => store.close() };
    },
  },
  {
    name: 'SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-leader-'));
      const store = new SqliteStore({ file: path.join(dir, 'oerhub.sqlite'), log });
      return {
        first: store,
        second: store,
        cleanup: async () => {
          await store.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'Redis',
    async open() {
      const prefix = `leader:${randomUUID()}:`;
      const first = new RedisStore({ url: redis!.url, keyPrefix: prefix, log });
      const second = new RedisStore({ url: redis!.url, keyPrefix: prefix, log });
      return {
        first,
        second,
        cleanup: async () => {
          await first.close();
          await second.close();
        },
      };
    },
  },
];

let redis: TestRedis | undefined;

describe('the leader lock', function () {
  this.timeout(60_000);
  const locks: LeaderLock[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  before(async function () {
    redis = await startRedis();
  });
  after(async function () {
    await redis?.stop();
  });
  afterEach(async function () {
    for (const lock of locks.splice(0)) await lock.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  function lockOn(store: Store): LeaderLock {
    const lock = new LeaderLock({ store, log, key: KEY, ttlMs: TTL_MS, renewMs: RENEW_MS, shared: true });
    locks.push(lock);
    return lock;
  }

  /** Records what a lock's listeners heard. */
  function heard(lock: LeaderLock): boolean[] {
    const changes: boolean[] = [];
    lock.onChange((leader) => changes.push(leader));
    return changes;
  }

  for (const backend of backends) {
    describe(`on ${backend.name}`, function () {
      async function twoLocks(): Promise<{ a: LeaderLock; b: LeaderLock; first: Store; second: Store }> {
        const { first, second, cleanup } = await backend.open();
        cleanups.push(cleanup);
        const a = lockOn(first);
        const b = lockOn(second);
        await Promise.all([a.start(), b.start()]);
        return { a, b, first, second };
      }

      it('of two hub processes sharing the store, exactly one leads, and keeps leading while it renews', async function () {
        const { a, b } = await twoLocks();
        assert.equal([a, b].filter((l) => l.isLeader()).length, 1, 'exactly one leader at start');
        // Several renewal periods and a whole TTL later, still one leader, and the same one.
        const leaderBefore = a.isLeader() ? a : b;
        await new Promise((resolve) => setTimeout(resolve, TTL_MS * 2));
        assert.equal([a, b].filter((l) => l.isLeader()).length, 1, 'still exactly one leader');
        assert.ok(leaderBefore.isLeader(), 'the leader renewed its lock rather than losing it');
      });

      it('when the leader closes, the other process takes over, and listeners hear both changes', async function () {
        const { a, b } = await twoLocks();
        const [leader, other] = a.isLeader() ? [a, b] : [b, a];
        const leaderHeard = heard(leader);
        const otherHeard = heard(other);
        await leader.close();
        assert.deepEqual(leaderHeard, [false], 'the closing leader steps down');
        await waitFor('the other process to take over', async () => other.isLeader(), (v) => v, 20_000, 50);
        assert.deepEqual(otherHeard, [true]);
      });

      it('when a renewal finds another owner, the leader steps down at once and the other takes over after the key goes', async function () {
        const { a, b, first } = await twoLocks();
        const [leader, other] = a.isLeader() ? [a, b] : [b, a];
        const leaderHeard = heard(leader);
        await first.set(KEY, 'an-intruder', TTL_MS);
        await waitFor('the leader to step down', async () => leader.isLeader(), (v) => !v, 20_000, 50);
        assert.deepEqual(leaderHeard, [false]);
        // The intruder never renews: once its key expires, one of the two leads again.
        await waitFor('a leader again', async () => [leader, other].filter((l) => l.isLeader()).length, (n) => n === 1, 20_000, 50);
      });
    });
  }

  it('on Redis, when the leader loses its connection (renewals fail), it stops leading and the other takes over within the TTL', async function () {
    const { first, second, cleanup } = await backends[2]!.open();
    cleanups.push(cleanup);
    const a = lockOn(first);
    await a.start();
    assert.ok(a.isLeader(), 'the first lock leads');
    const b = lockOn(second);
    await b.start();
    assert.ok(!b.isLeader(), 'the second one waits');
    const aHeard = heard(a);
    // The leader's connection goes away for good without releasing the lock, as in a crash.
    await first.close();
    await waitFor('the old leader to step down', async () => a.isLeader(), (v) => !v, 20_000, 50);
    assert.deepEqual(aHeard, [false]);
    await waitFor('the other process to take over', async () => b.isLeader(), (v) => v, 20_000, 50);
  });

  it('with SQLite or memory (one hub process), the hub leads at once and writes no lock', async function () {
    const store = new MemoryStore({ log });
    cleanups.push(() => store.close());
    const lock = new LeaderLock({ store, log, ttlMs: TTL_MS });
    locks.push(lock);
    await lock.start();
    assert.ok(lock.isLeader());
    assert.equal(await store.get('leader'), null, 'no key that a SIGKILLed hub could leave behind');
    await lock.close();
    assert.ok(!lock.isLeader(), 'closed: leads no more');
  });

  it('runs the leader duties (pool refill, cullers) in exactly one process, and moves them when the leader goes', async function () {
    const { first, second, cleanup } = await backends[2]!.open();
    cleanups.push(cleanup);
    const running = new Map<string, number>();
    const duty = (who: string) => ({
      name: `refill on ${who}`,
      start: () => void running.set(who, (running.get(who) ?? 0) + 1),
      stop: () => void running.set(who, (running.get(who) ?? 0) - 1),
    });
    const a = lockOn(first);
    const b = lockOn(second);
    await Promise.all([a.start(), b.start()]);
    const dutiesA = new LeaderDuties(a, [duty('a')], log);
    const dutiesB = new LeaderDuties(b, [duty('b')], log);
    await Promise.all([dutiesA.settled(), dutiesB.settled()]);
    const total = (): number => [...running.values()].reduce((x, y) => x + y, 0);
    assert.equal(total(), 1, 'the duty runs once among the two');
    const [leaderName, otherName] = a.isLeader() ? ['a', 'b'] : ['b', 'a'];
    assert.equal(running.get(leaderName), 1, 'on the leader');
    await (leaderName === 'a' ? dutiesA : dutiesB).close();
    await (leaderName === 'a' ? a : b).close();
    assert.equal(running.get(leaderName), 0, 'stopped where leadership ended');
    await waitFor('the duty to run on the other process', async () => running.get(otherName) ?? 0, (n) => n === 1, 20_000, 50);
    assert.equal(total(), 1);
    await (leaderName === 'a' ? dutiesB : dutiesA).close();
  });
});
