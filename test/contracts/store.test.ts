import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { StoreInUse, StoreUnavailable } from '../../server/errors.js';
import { createLogger } from '../../server/log.js';
import { MemoryStore, RedisStore, SqliteStore } from '../../server/store/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const log = createLogger('silent');

storeContract('MemoryStore', async () => {
  const store = new MemoryStore({ log });
  return { store, cleanup: () => store.close() };
});

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-sqlite-'));
}

storeContract('SqliteStore', async () => {
  const dir = tempDir();
  const store = new SqliteStore({ file: path.join(dir, 'oerhub.sqlite'), log });
  return {
    store,
    cleanup: async () => {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore on disk', function () {
  let dir: string;
  let file: string;
  const open: SqliteStore[] = [];

  beforeEach(function () {
    dir = tempDir();
    file = path.join(dir, 'oerhub.sqlite');
  });

  afterEach(async function () {
    for (const store of open.splice(0)) await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function openStore(): SqliteStore {
    const store = new SqliteStore({ file, log });
    open.push(store);
    return store;
  }

  it('keeps values, hashes, sets, lists and expiries when the file is opened again', async function () {
    const first = openStore();
    await first.set('user:alice', '{"name":"alice"}');
    await first.set('session:s1', 'alice', 60_000);
    await first.set('session:gone', 'bob', 100);
    await first.hashSet('__proto__', { constructor: 'c' });
    await first.setAdd('users', 'alice', 'bob');
    await first.listPush('pool:ready', 'p1', 'p2');
    await first.listShift('pool:ready');
    await first.close();
    await new Promise((resolve) => setTimeout(resolve, 150));

    const second = openStore();
    assert.equal(await second.get('user:alice'), '{"name":"alice"}');
    assert.equal(await second.get('session:s1'), 'alice');
    assert.equal(await second.get('session:gone'), null);
    assert.equal(await second.hashGet('__proto__', 'constructor'), 'c');
    assert.deepEqual((await second.setMembers('users')).sort(), ['alice', 'bob']);
    assert.equal(await second.listPush('pool:ready', 'p3'), 2);
    assert.deepEqual(await second.listRange('pool:ready'), ['p2', 'p3']);
  });

  it('keeps every committed write when the process holding it is killed with SIGKILL', async function () {
    // A separate process, so the kill is real: no close(), no exit handlers, the WAL left as it was.
    const script = `
      const Database = require('better-sqlite3');
      const { SqliteStore } = require(${JSON.stringify(path.resolve(__dirname, '../../server/store/sqlite-store.ts'))});
      const pino = require('pino');
      const store = new SqliteStore({ file: ${JSON.stringify(file)}, log: pino({ level: 'silent' }) });
      (async () => {
        for (let i = 0; i < 50; i++) await store.atomic({ then: [{ type: 'set', key: 'user:' + i, value: String(i) }, { type: 'setAdd', key: 'users', members: [String(i)] }] });
        process.stdout.write('written\\n');
        setInterval(() => {}, 1000);
      })();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('written')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`writer exited (${code}) before writing: ${errors}`)));
    });
    // While it runs, the file is its alone.
    assert.throws(() => new SqliteStore({ file, log }), (err: unknown) => err instanceof StoreInUse && err.message.includes(`process ${child.pid}`));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const store = openStore();
    assert.equal((await store.setMembers('users')).length, 50);
    assert.deepEqual(await store.getMany(['user:0', 'user:49']), ['0', '49']);
  });

  it('refuses a second store on the same file, with a message that names the fix, until the first is closed', async function () {
    const first = openStore();
    await first.set('k', 'v');
    assert.throws(
      () => new SqliteStore({ file, log }),
      (err: unknown) => err instanceof StoreInUse && err.message.includes(file) && err.message.includes(`process ${process.pid}`) && /store=redis/.test(err.message),
    );
    // The refused attempt changed nothing for the owner.
    assert.equal(await first.get('k'), 'v');
    await first.close();
    assert.equal(await openStore().get('k'), 'v');
  });

  it('creates the database readable by the hub\'s user only', async function () {
    const store = openStore();
    await store.set('secret', 'v');
    for (const f of fs.readdirSync(dir).filter((name) => name.startsWith('oerhub.sqlite'))) {
      assert.equal(fs.statSync(path.join(dir, f)).mode & 0o077, 0, `${f} is readable by others`);
    }
  });

  it('fails with StoreUnavailable, naming the file, when the folder is not there', function () {
    assert.throws(
      () => new SqliteStore({ file: path.join(dir, 'no-such-folder', 'oerhub.sqlite'), log }),
      (err: unknown) => err instanceof StoreUnavailable && err.message.includes('no-such-folder'),
    );
  });
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

  describe('atomic across connections', function () {
    it('of 10 hub processes (connections) claiming one pool entry at once, exactly one gets it', async function () {
      const prefix = `race:${randomUUID()}:`;
      const stores = Array.from({ length: 10 }, () => new RedisStore({ url: redis.url, keyPrefix: prefix, log }));
      try {
        await stores[0]!.listPush('ready', 'server-1');
        await Promise.all(stores.map((s) => s.ping()));
        const results = await Promise.all(
          stores.map((s, i) =>
            s.atomic({
              if: [{ type: 'listIncludes', key: 'ready', value: 'server-1' }, { type: 'absent', key: 'session:server-1' }],
              then: [
                { type: 'listRemove', key: 'ready', value: 'server-1' },
                { type: 'set', key: 'session:server-1', value: `hub-${i}` },
                { type: 'setAdd', key: 'in-use', members: ['server-1'] },
              ],
            }),
          ),
        );
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await stores[0]!.get('session:server-1'), `hub-${results.indexOf(true)}`);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });
  });

  describe('password', function () {
    it('a client without the password is refused by the test Redis, as by a production one', async function () {
      const store = new RedisStore({ url: redis.urlWithoutPassword, keyPrefix: `nopass:${randomUUID()}:`, log });
      try {
        await assert.rejects(store.set('k', 'v'), (err: unknown) => err instanceof StoreUnavailable && /NOAUTH|auth/i.test(err.message));
      } finally {
        await store.close();
      }
    });

    it('the password can come from the redisPassword option instead of the URL', async function () {
      const store = new RedisStore({ url: redis.urlWithoutPassword, password: redis.password, keyPrefix: `pass:${randomUUID()}:`, log });
      try {
        await store.set('k', 'v');
        assert.equal(await store.get('k'), 'v');
      } finally {
        await store.close();
      }
    });
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
