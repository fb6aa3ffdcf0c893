import assert from 'node:assert/strict';
import { StoreUnavailable } from '../../server/errors.js';
import type { AtomicCondition, Store } from '../../server/store/index.js';

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
}

/** Generous bound for things that happen "soon" (expiry, delivery); a bound, never an assertion on speed. */
const EVENTUALLY_MS = 5_000;

/** Poll until check() returns true; fails with `what` after EVENTUALLY_MS. */
async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`expected within ${EVENTUALLY_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sorted = (values: readonly string[]): string[] => [...values].sort();

/** Keys a user can type (course ids, usernames, notebook names) that break naive maps and prefixes. */
const HOSTILE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' ',
  'with space',
  'tab\tand\nnewline',
  'ünïcödé 名前 🙂',
  'a:b',
  'a',
  '*',
  'k'.repeat(10_000),
];

/**
 * What every Store must do, as seen by the repositories built on it. `make` gives a fresh,
 * empty store for each test; cleanup releases it (the store may already be closed).
 */
export function storeContract(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`${name} store (contract)`, function () {
    let store: Store;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async function () {
      ({ store, cleanup } = await make());
    });

    afterEach(async function () {
      await cleanup?.();
      cleanup = undefined;
    });

    describe('values', function () {
      it('reads back what was set, and null for what never was', async function () {
        await store.set('greeting', 'hello');
        assert.equal(await store.get('greeting'), 'hello');
        assert.equal(await store.get('missing'), null);
        await store.set('greeting', 'bye');
        assert.equal(await store.get('greeting'), 'bye');
      });

      it('forgets a value once its ttl has passed, but keeps values without one', async function () {
        await store.set('session', 'alice', 100);
        await store.set('durable', 'bob');
        await store.set('long', 'carol', 60_000);
        await eventually('the 100 ms value expires', async () => (await store.get('session')) === null);
        assert.equal(await store.get('durable'), 'bob');
        assert.equal(await store.get('long'), 'carol');
      });

      it('set without ttl replaces an earlier expiry, so the value stays', async function () {
        await store.set('token', 'first', 100);
        await store.set('token', 'second');
        // Set after 'token', so once this has expired, token's old expiry has certainly passed.
        await store.set('marker', 'x', 100);
        await eventually('the marker expires', async () => (await store.get('marker')) === null);
        assert.equal(await store.get('token'), 'second');
      });

      it('getMany answers in the order asked, null for each missing key', async function () {
        await store.set('a', 'A');
        await store.set('c', 'C');
        assert.deepEqual(await store.getMany(['c', 'missing', 'a', 'c']), ['C', null, 'A', 'C']);
        assert.deepEqual(await store.getMany([]), []);
      });

      it('setIfAbsent lets exactly one of 20 simultaneous callers take a lock', async function () {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.setIfAbsent('lock', `owner-${i}`, 60_000)),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        assert.equal(await store.get('lock'), `owner-${winners[0]}`);
        assert.equal(await store.setIfAbsent('lock', 'late'), false);
      });

      it('setIfAbsent succeeds again once the previous lock has expired', async function () {
        assert.equal(await store.setIfAbsent('lock', 'first', 100), true);
        await eventually('the lock can be taken again', () => store.setIfAbsent('lock', 'second', 60_000));
        assert.equal(await store.get('lock'), 'second');
      });

      it('take hands a one-time token to exactly one of 20 simultaneous callers', async function () {
        await store.set('invite', 'secret');
        const results = await Promise.all(Array.from({ length: 20 }, () => store.take('invite')));
        assert.deepEqual(
          results.filter((r) => r !== null),
          ['secret'],
        );
        assert.equal(await store.get('invite'), null);
        assert.equal(await store.take('never-set'), null);
      });

      it('deleteIfEquals releases a lock only for its owner', async function () {
        await store.set('lock', 'me');
        assert.equal(await store.deleteIfEquals('lock', 'someone-else'), false);
        assert.equal(await store.get('lock'), 'me');
        assert.equal(await store.deleteIfEquals('lock', 'me'), true);
        assert.equal(await store.get('lock'), null);
        assert.equal(await store.deleteIfEquals('lock', 'me'), false);
      });

      it('delete removes keys of every kind and does not mind missing ones', async function () {
        await store.set('s', 'v');
        await store.hashSet('h', { f: 'v' });
        await store.setAdd('set', 'm');
        await store.listPush('l', 'x');
        await store.delete('s', 'h', 'set', 'l', 'missing');
        await store.delete();
        await store.delete('missing');
        assert.equal(await store.get('s'), null);
        assert.deepEqual(Object.keys(await store.hashGetAll('h')), []);
        assert.deepEqual(await store.setMembers('set'), []);
        assert.deepEqual(await store.listRange('l'), []);
      });

      it('expire gives an existing key a new lifetime and reports missing keys', async function () {
        await store.set('k', 'v');
        assert.equal(await store.expire('k', 100), true);
        await eventually('the key expires', async () => (await store.get('k')) === null);
        assert.equal(await store.expire('k', 100), false);
        assert.equal(await store.expire('never-set', 100), false);

        await store.set('extended', 'v', 100);
        assert.equal(await store.expire('extended', 60_000), true);
        await store.set('marker', 'x', 100);
        await eventually('the marker expires', async () => (await store.get('marker')) === null);
        assert.equal(await store.get('extended'), 'v');
      });

      it('increment counts attempts within a window that the first attempt starts', async function () {
        assert.equal(await store.increment('attempts', 60_000), 1);
        assert.equal(await store.increment('attempts', 60_000), 2);
        assert.equal(await store.increment('attempts', 60_000), 3);
        assert.equal(await store.get('attempts'), '3');

        // Later increments must not stretch the window: the 100 ms one still ends it.
        assert.equal(await store.increment('burst', 100), 1);
        assert.equal(await store.increment('burst', 60_000), 2);
        await eventually('the window ends', async () => (await store.get('burst')) === null);
        assert.equal(await store.increment('burst', 60_000), 1);
      });

      it('using a key as the wrong kind is a bug, not an outage', async function () {
        await store.set('plain', 'v');
        await assert.rejects(store.hashGet('plain', 'f'), (err: unknown) => err instanceof Error && !(err instanceof StoreUnavailable));
        await assert.rejects(store.listPush('plain', 'x'), (err: unknown) => err instanceof Error && !(err instanceof StoreUnavailable));
      });
    });

    describe('hashes', function () {
      it('stores fields, reads one or all, and deletes some', async function () {
        await store.hashSet('user:alice', { name: 'Alice', role: 'student' });
        await store.hashSet('user:alice', { role: 'teacher', lang: 'de' });
        assert.equal(await store.hashGet('user:alice', 'role'), 'teacher');
        assert.equal(await store.hashGet('user:alice', 'missing'), null);
        assert.equal(await store.hashGet('user:nobody', 'name'), null);
        await store.hashDelete('user:alice', 'lang', 'missing');
        const all = await store.hashGetAll('user:alice');
        assert.deepEqual(sorted(Object.entries(all).map(([k, v]) => `${k}=${v}`)), ['name=Alice', 'role=teacher']);
      });

      it('hashGetAll of a missing hash is an empty, prototype-free object', async function () {
        const all = await store.hashGetAll('nothing');
        assert.equal(Object.getPrototypeOf(all), null);
        assert.deepEqual(Object.keys(all), []);
      });

      it('fields named __proto__ and constructor are plain fields', async function () {
        // Object.fromEntries makes `__proto__` an own field, as JSON.parse of a request body would.
        const fields = Object.fromEntries([
          ['__proto__', 'p'],
          ['constructor', 'c'],
          ['toString', 't'],
        ]) as Record<string, string>;
        await store.hashSet('h', fields);
        assert.equal(await store.hashGet('h', '__proto__'), 'p');
        assert.equal(await store.hashGet('h', 'constructor'), 'c');
        const all = await store.hashGetAll('h');
        assert.equal(Object.getPrototypeOf(all), null);
        assert.deepEqual(sorted(Object.keys(all)), ['__proto__', 'constructor', 'toString']);
        assert.equal(Object.getOwnPropertyDescriptor(all, '__proto__')?.value, 'p');
        await store.hashDelete('h', '__proto__');
        assert.deepEqual(sorted(Object.keys(await store.hashGetAll('h'))), ['constructor', 'toString']);
        assert.equal(({} as Record<string, unknown>).p, undefined);
      });

      it('a hash whose last field is deleted is gone', async function () {
        await store.hashSet('h', { only: 'v' });
        await store.hashDelete('h', 'only');
        assert.equal(await store.expire('h', 60_000), false);
      });
    });

    describe('sets', function () {
      it('keeps each member once and removes members', async function () {
        await store.setAdd('users', 'alice', 'bob', 'alice');
        await store.setAdd('users', 'carol');
        assert.deepEqual(sorted(await store.setMembers('users')), ['alice', 'bob', 'carol']);
        await store.setRemove('users', 'bob', 'missing');
        assert.deepEqual(sorted(await store.setMembers('users')), ['alice', 'carol']);
        assert.deepEqual(await store.setMembers('nobody'), []);
      });
    });

    describe('lists', function () {
      it('is a first-in, first-out queue', async function () {
        assert.equal(await store.listPush('pool', 'c1', 'c2'), 2);
        assert.equal(await store.listPush('pool', 'c3'), 3);
        assert.deepEqual(await store.listRange('pool'), ['c1', 'c2', 'c3']);
        assert.equal(await store.listShift('pool'), 'c1');
        assert.equal(await store.listShift('pool'), 'c2');
        assert.equal(await store.listShift('pool'), 'c3');
        assert.equal(await store.listShift('pool'), null);
        assert.deepEqual(await store.listRange('pool'), []);
      });

      it('listRemove drops every occurrence and says how many', async function () {
        await store.listPush('queue', 'a', 'b', 'a', 'c', 'a');
        assert.equal(await store.listRemove('queue', 'a'), 3);
        assert.equal(await store.listRemove('queue', 'missing'), 0);
        assert.deepEqual(await store.listRange('queue'), ['b', 'c']);
        assert.equal(await store.listRemove('nothing', 'a'), 0);
      });
    });

    describe('atomic', function () {
      it('makes every write of an operation whose conditions hold, and says so', async function () {
        await store.set('user:alice', 'old');
        await store.hashSet('profile', { lang: 'de' });
        await store.listPush('pool:ready', 'p1', 'p2');
        const committed = await store.atomic({
          if: [
            { type: 'equals', key: 'user:alice', value: 'old' },
            { type: 'absent', key: 'user:bob' },
            { type: 'hashEquals', key: 'profile', field: 'lang', value: 'de' },
            { type: 'hashEquals', key: 'profile', field: 'theme', value: null },
            { type: 'hashEquals', key: 'no-such-hash', field: 'f', value: null },
            { type: 'listIncludes', key: 'pool:ready', value: 'p2' },
          ],
          then: [
            { type: 'set', key: 'user:alice', value: 'new' },
            { type: 'set', key: 'user:bob', value: 'B' },
            { type: 'hashSet', key: 'profile', fields: { theme: 'dark' } },
            { type: 'hashDelete', key: 'profile', fields: ['lang'] },
            { type: 'setAdd', key: 'users', members: ['alice', 'bob'] },
            { type: 'listRemove', key: 'pool:ready', value: 'p2' },
            { type: 'listPush', key: 'pool:in-use', values: ['p2'] },
          ],
        });
        assert.equal(committed, true);
        assert.deepEqual(await store.getMany(['user:alice', 'user:bob']), ['new', 'B']);
        assert.deepEqual(Object.entries(await store.hashGetAll('profile')), [['theme', 'dark']]);
        assert.deepEqual(sorted(await store.setMembers('users')), ['alice', 'bob']);
        assert.deepEqual(await store.listRange('pool:ready'), ['p1']);
        assert.deepEqual(await store.listRange('pool:in-use'), ['p2']);
      });

      it('writes nothing at all when any one condition fails', async function () {
        await store.set('k', 'v');
        await store.hashSet('h', { f: 'v' });
        await store.listPush('l', 'a');
        const failing: AtomicCondition[] = [
          { type: 'equals', key: 'k', value: 'other' },
          { type: 'equals', key: 'missing', value: 'v' },
          { type: 'absent', key: 'k' },
          { type: 'absent', key: 'h' },
          { type: 'hashEquals', key: 'h', field: 'f', value: 'other' },
          { type: 'hashEquals', key: 'h', field: 'f', value: null },
          { type: 'hashEquals', key: 'h', field: 'missing', value: 'v' },
          { type: 'hashEquals', key: 'missing', field: 'f', value: 'v' },
          { type: 'listIncludes', key: 'l', value: 'b' },
          { type: 'listIncludes', key: 'missing', value: 'a' },
        ];
        for (const condition of failing) {
          const committed = await store.atomic({
            if: [{ type: 'equals', key: 'k', value: 'v' }, condition],
            then: [
              { type: 'set', key: 'written', value: 'x' },
              { type: 'setAdd', key: 'index', members: ['x'] },
              { type: 'delete', key: 'k' },
            ],
          });
          assert.equal(committed, false, JSON.stringify(condition));
        }
        assert.equal(await store.get('written'), null);
        assert.deepEqual(await store.setMembers('index'), []);
        assert.equal(await store.get('k'), 'v');
      });

      it('a key of another type never matches a condition, and an expired key is absent', async function () {
        await store.hashSet('a-hash', { f: 'v' });
        await store.set('a-string', 'v');
        await store.setAdd('a-set', 'v');
        const never: AtomicCondition[] = [
          { type: 'equals', key: 'a-hash', value: 'v' },
          { type: 'hashEquals', key: 'a-string', field: 'f', value: null },
          { type: 'hashEquals', key: 'a-set', field: 'v', value: null },
          { type: 'listIncludes', key: 'a-set', value: 'v' },
        ];
        for (const condition of never) assert.equal(await store.atomic({ if: [condition], then: [] }), false, JSON.stringify(condition));

        await store.set('lease', 'old-owner', 100);
        await eventually('the lease expires', async () => (await store.get('lease')) === null);
        assert.equal(await store.atomic({ if: [{ type: 'absent', key: 'lease' }], then: [{ type: 'set', key: 'lease', value: 'new-owner' }] }), true);
        assert.equal(await store.get('lease'), 'new-owner');
      });

      it('a write that meets the wrong kind of key is a bug, and nothing of the operation is written', async function () {
        await store.set('plain', 'v');
        const bug = (err: unknown): boolean => err instanceof Error && !(err instanceof StoreUnavailable);
        await assert.rejects(
          store.atomic({ then: [{ type: 'set', key: 'first', value: '1' }, { type: 'setAdd', key: 'index', members: ['1'] }, { type: 'hashSet', key: 'plain', fields: { f: 'v' } }] }),
          bug,
        );
        // The type an earlier write gives counts: this set makes `fresh` a string before the push.
        await assert.rejects(
          store.atomic({ then: [{ type: 'set', key: 'fresh', value: 's' }, { type: 'listPush', key: 'fresh', values: ['x'] }] }),
          bug,
        );
        assert.deepEqual(await store.getMany(['first', 'fresh']), [null, null]);
        assert.deepEqual(await store.setMembers('index'), []);
        assert.equal(await store.get('plain'), 'v');
        // And a delete makes room for any type.
        assert.equal(await store.atomic({ then: [{ type: 'delete', key: 'plain' }, { type: 'listPush', key: 'plain', values: ['x'] }] }), true);
        assert.deepEqual(await store.listRange('plain'), ['x']);
      });

      it('removes members, drops emptied keys, and gives set writes their expiry', async function () {
        await store.setAdd('servers', 'alice');
        await store.hashSet('activity', { alice: '1' });
        await store.listPush('queue', 't1', 't2', 't1');
        await store.set('token', 'long-lived', 60_000);
        assert.equal(
          await store.atomic({
            then: [
              { type: 'setRemove', key: 'servers', members: ['alice', 'missing'] },
              { type: 'hashDelete', key: 'activity', fields: ['alice'] },
              { type: 'listRemove', key: 'queue', value: 't1' },
              { type: 'set', key: 'session', value: 's', ttlMs: 100 },
              { type: 'set', key: 'token', value: 'forever' },
              { type: 'delete', key: 'never-there' },
            ],
          }),
          true,
        );
        assert.equal(await store.expire('servers', 60_000), false);
        assert.equal(await store.expire('activity', 60_000), false);
        assert.deepEqual(await store.listRange('queue'), ['t2']);
        await store.set('marker', 'x', 100);
        await eventually('the 100 ms session expires', async () => (await store.get('session')) === null && (await store.get('marker')) === null);
        assert.equal(await store.get('token'), 'forever');
        assert.equal(await store.atomic({ then: [] }), true);
      });

      it('of 20 simultaneous callers creating the same record with its index, exactly one wins', async function () {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.atomic({
              if: [{ type: 'absent', key: 'user:carol' }],
              then: [
                { type: 'set', key: 'user:carol', value: `caller-${i}` },
                { type: 'set', key: 'user-escaped:carol', value: `caller-${i}` },
                { type: 'setAdd', key: 'users', members: [`caller-${i}`] },
              ],
            }),
          ),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        const winner = `caller-${winners[0]}`;
        assert.deepEqual(await store.getMany(['user:carol', 'user-escaped:carol']), [winner, winner]);
        assert.deepEqual(await store.setMembers('users'), [winner]);
      });

      it('of 20 simultaneous claims of one pool entry, exactly one moves it', async function () {
        await store.listPush('ready', 'server-1');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.atomic({
              if: [{ type: 'listIncludes', key: 'ready', value: 'server-1' }],
              then: [
                { type: 'listRemove', key: 'ready', value: 'server-1' },
                { type: 'set', key: 'session:server-1', value: `visitor-${i}` },
                { type: 'setAdd', key: 'in-use', members: ['server-1'] },
              ],
            }),
          ),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        assert.equal(await store.get('session:server-1'), `visitor-${winners[0]}`);
        assert.deepEqual(await store.listRange('ready'), []);
        assert.deepEqual(await store.setMembers('in-use'), ['server-1']);
      });

      it('compare-and-set: of 20 callers updating from the same version, exactly one succeeds', async function () {
        await store.set('record', 'v0');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.atomic({ if: [{ type: 'equals', key: 'record', value: 'v0' }], then: [{ type: 'set', key: 'record', value: `v1-by-${i}` }] })),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        assert.equal(await store.get('record'), `v1-by-${winners[0]}`);
      });

      it('hostile keys, fields and values are plain data in conditions and writes', async function () {
        for (const [i, key] of HOSTILE_KEYS.entries()) {
          const fields = Object.fromEntries([
            [key, `field-${i}`],
            ['__proto__', 'p'],
          ]) as Record<string, string>;
          const committed = await store.atomic({
            if: [
              { type: 'absent', key },
              { type: 'hashEquals', key: `h${key}`, field: key, value: null },
            ],
            then: [
              { type: 'set', key, value: key },
              { type: 'hashSet', key: `h${key}`, fields },
              { type: 'setAdd', key: `s${key}`, members: [key, key] },
              { type: 'listPush', key: `l${key}`, values: [key] },
            ],
          });
          assert.equal(committed, true, `key #${i}`);
        }
        for (const [i, key] of HOSTILE_KEYS.entries()) {
          assert.equal(await store.get(key), key);
          assert.equal(await store.hashGet(`h${key}`, key), key === '__proto__' ? 'p' : `field-${i}`);
          assert.equal(await store.hashGet(`h${key}`, '__proto__'), 'p');
          assert.deepEqual(await store.setMembers(`s${key}`), [key]);
          assert.equal(
            await store.atomic({
              if: [
                { type: 'equals', key, value: key },
                { type: 'hashEquals', key: `h${key}`, field: '__proto__', value: 'p' },
                { type: 'listIncludes', key: `l${key}`, value: key },
              ],
              then: [{ type: 'delete', key }, { type: 'setRemove', key: `s${key}`, members: [key] }],
            }),
            true,
            `key #${i}`,
          );
          assert.equal(await store.get(key), null);
          assert.deepEqual(await store.setMembers(`s${key}`), []);
        }
        assert.equal(Object.keys(Object.prototype).length, 0);
        assert.equal(({} as Record<string, unknown>).p, undefined);
      });

      it('refuses with StoreUnavailable once closed', async function () {
        await store.close();
        await assert.rejects(store.atomic({ then: [{ type: 'set', key: 'k', value: 'v' }] }), StoreUnavailable);
      });
    });

    describe('publish/subscribe', function () {
      it('delivers a published message to every subscriber of that channel only', async function () {
        const first: string[] = [];
        const second: string[] = [];
        const other: string[] = [];
        await store.subscribe('servers', (m) => first.push(m));
        await store.subscribe('servers', (m) => second.push(m));
        await store.subscribe('servers-other', (m) => other.push(m));
        await store.publish('servers', 'alice started');
        await store.publish('servers-other', 'unrelated');
        await eventually('both subscribers get the message', () => first.length === 1 && second.length === 1);
        await eventually('the other channel gets its own message', () => other.length === 1);
        assert.deepEqual(first, ['alice started']);
        assert.deepEqual(second, ['alice started']);
        assert.deepEqual(other, ['unrelated']);
      });

      it('never calls a subscriber from inside publish()', async function () {
        const got: string[] = [];
        await store.subscribe('ch', (m) => got.push(m));
        const publishing = store.publish('ch', 'x');
        assert.deepEqual(got, []);
        await publishing;
        await eventually('the message arrives', () => got.length === 1);
      });

      it('unsubscribing stops delivery to that subscriber only, and is safe twice', async function () {
        const gone: string[] = [];
        const staying: string[] = [];
        const unsubscribe = await store.subscribe('ch', (m) => gone.push(m));
        await store.subscribe('ch', (m) => staying.push(m));
        await unsubscribe();
        await unsubscribe();
        await store.publish('ch', 'after');
        // Messages on one channel arrive in order for all subscribers, so once the remaining one
        // has it, the removed one would have had it too.
        await eventually('the remaining subscriber gets it', () => staying.includes('after'));
        assert.deepEqual(gone, []);
      });

      it('a subscriber that throws does not stop the others', async function () {
        const got: string[] = [];
        await store.subscribe('ch', () => {
          throw new Error('subscriber bug');
        });
        await store.subscribe('ch', (m) => got.push(m));
        await store.publish('ch', 'm1');
        await store.publish('ch', 'm2');
        await eventually('both messages arrive', () => got.length === 2);
        assert.deepEqual(got, ['m1', 'm2']);
      });

      it('channels with hostile names work and stay apart', async function () {
        const channels = ['__proto__', 'constructor', 'error', 'newListener', 'ünïcödé 🙂', 'with space'];
        const received = new Map<string, string[]>(channels.map((c) => [c, []]));
        for (const channel of channels) await store.subscribe(channel, (m) => received.get(channel)?.push(m));
        for (const channel of channels) await store.publish(channel, `to ${channel}`);
        await eventually('every channel gets its message', () => channels.every((c) => (received.get(c)?.length ?? 0) >= 1));
        for (const channel of channels) assert.deepEqual(received.get(channel), [`to ${channel}`]);
      });
    });

    describe('hostile keys', function () {
      it('each key keeps its own value and nothing leaks into Object.prototype', async function () {
        for (const [i, key] of HOSTILE_KEYS.entries()) await store.set(key, `value-${i}`);
        assert.deepEqual(
          await store.getMany(HOSTILE_KEYS),
          HOSTILE_KEYS.map((_, i) => `value-${i}`),
        );
        for (const [i, key] of HOSTILE_KEYS.entries()) {
          await store.hashSet(`h${key}`, { [key]: `field-${i}` });
          await store.setAdd(`s${key}`, key);
          await store.listPush(`l${key}`, key);
        }
        for (const [i, key] of HOSTILE_KEYS.entries()) {
          assert.equal(await store.get(key), `value-${i}`);
          assert.equal(await store.hashGet(`h${key}`, key), `field-${i}`);
          assert.deepEqual(await store.setMembers(`s${key}`), [key]);
          assert.deepEqual(await store.listRange(`l${key}`), [key]);
        }
        assert.equal(await store.take('__proto__'), 'value-0');
        assert.equal(await store.get('__proto__'), null);
        assert.equal(await store.increment('constructor-count', 60_000), 1);
        const plain: Record<string, unknown> = {};
        assert.equal(Object.getPrototypeOf(plain), Object.prototype);
        assert.equal(Object.keys(Object.prototype).length, 0);
        assert.equal(typeof plain.toString, 'function');
      });

      it('keys that are never set read as missing, even __proto__ and constructor', async function () {
        assert.equal(await store.get('__proto__'), null);
        assert.equal(await store.get('constructor'), null);
        assert.equal(await store.hashGet('h', '__proto__'), null);
        assert.equal(await store.hashGet('h', 'constructor'), null);
        assert.equal(await store.take('toString'), null);
        assert.equal(await store.listShift('__proto__'), null);
        assert.deepEqual(await store.setMembers('constructor'), []);
      });
    });

    describe('lifecycle', function () {
      it('answers ping', async function () {
        await store.ping();
      });

      it('can be closed twice, and then refuses calls with StoreUnavailable', async function () {
        await store.close();
        await store.close();
        await assert.rejects(store.get('k'), StoreUnavailable);
        await assert.rejects(store.set('k', 'v'), StoreUnavailable);
        await assert.rejects(store.ping(), StoreUnavailable);
      });
    });
  });
}
