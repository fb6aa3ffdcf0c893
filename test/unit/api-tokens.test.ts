import assert from 'node:assert/strict';
import { createLogger } from '../../server/log.js';
import { MemoryStore } from '../../server/store/memory-store.js';
import type { Role, UserRecord } from '../../server/store/repos.js';
import { TokenRepo, TokenService, allows, expandScopes, hashToken, intersect, roleScopes } from '../../server/api/index.js';
import { tokenFromHeader } from '../../server/api/tokens.js';

const log = createLogger('silent');

function user(name: string, roles: Role[]): UserRecord {
  return { name, escapedName: name, roles, source: 'local', createdAt: 0 };
}

describe('API scopes: JupyterHub\'s names, filters and inclusions', () => {
  it('expands self to the owner\'s own resources only', () => {
    const g = expandScopes(['self'], 'ana');
    assert.ok(allows(g, 'read:servers', 'ana'));
    assert.ok(allows(g, 'access:servers', 'ana'));
    assert.ok(allows(g, 'tokens', 'ana'));
    assert.ok(!allows(g, 'read:servers', 'ben'));
    assert.ok(!allows(g, 'admin:users', 'ana'));
    assert.ok(!allows(g, 'read:metrics'));
  });

  it('includes the narrower scopes: admin:users gives list:users and read:users:name, servers gives delete:servers', () => {
    const g = expandScopes(['admin:users', 'servers!user=ana'], 'x');
    assert.ok(allows(g, 'list:users', 'anyone'));
    assert.ok(allows(g, 'read:users:name', 'anyone'));
    assert.ok(allows(g, 'delete:servers', 'ana'));
    assert.ok(!allows(g, 'delete:servers', 'ben'));
    // !server=NAME/ reads as the user's one server.
    assert.ok(allows(expandScopes(['access:servers!server=ana/'], 'x'), 'access:servers', 'ana'));
  });

  it('cuts a token to its owner: an unfiltered token scope of a student becomes the student\'s own', () => {
    const owner = expandScopes(roleScopes(['student']), 'ana');
    const token = expandScopes(['read:servers', 'admin:users', 'access:servers!user=ben'], 'ana');
    const cut = intersect(token, owner);
    assert.ok(allows(cut, 'read:servers', 'ana'));
    assert.ok(!allows(cut, 'read:servers', 'ben'));
    assert.ok(!allows(cut, 'admin:users'));
    assert.ok(!allows(cut, 'access:servers', 'ben'));
  });

  it('reads token headers only as token or Bearer, never Basic', () => {
    assert.equal(tokenFromHeader('token abc'), 'abc');
    assert.equal(tokenFromHeader('Bearer abc'), 'abc');
    assert.equal(tokenFromHeader('Basic YWxpY2U6cHc='), undefined);
    assert.equal(tokenFromHeader(undefined), undefined);
  });
});

describe('API tokens: hashed, expiring, revocable, never more than the owner', () => {
  let store: MemoryStore;
  let now: number;
  const accounts = new Map<string, UserRecord>();
  const disabled = new Set<string>();
  let tokens: TokenService;

  beforeEach(() => {
    store = new MemoryStore({ log });
    now = 1_000_000;
    accounts.clear();
    disabled.clear();
    accounts.set('ana', user('ana', ['student']));
    accounts.set('boss', user('boss', ['admin']));
    tokens = new TokenService({
      repo: new TokenRepo(store),
      users: { get: async (n) => accounts.get(n) ?? null },
      isDisabled: async (n) => disabled.has(n),
      services: [{ name: 'culler', scopes: ['list:users', 'read:servers', 'delete:servers'] }],
      log,
      cacheMs: 5000,
      maxAgeS: 0,
      now: () => now,
    });
  });

  afterEach(async () => {
    await store.close();
  });

  it('stores the SHA-256 only, and the stored record holds no trace of the token', async () => {
    const { token, record } = await tokens.issue({ kind: 'user', name: 'ana' }, { note: 'n' });
    assert.equal(record.hash, hashToken(token));
    const stored = await store.get(`api-token:${record.hash}`);
    assert.ok(stored);
    assert.ok(!stored.includes(token));
    assert.equal(await store.get(`api-token:${token}`), null);
    assert.equal((await tokens.authenticate(token))?.owner.name, 'ana');
  });

  it('refuses a token after its expiry, even from the cache', async () => {
    const { token } = await tokens.issue({ kind: 'user', name: 'ana' }, { expiresInS: 60 });
    assert.ok(await tokens.authenticate(token));
    now += 61_000;
    assert.equal(tokens.cached(token), undefined);
    assert.equal(await tokens.authenticate(token, { fresh: true }), null);
  });

  it('forgets a revoked token at once in this process, cache included', async () => {
    const { token, record } = await tokens.issue({ kind: 'user', name: 'ana' });
    assert.ok(await tokens.authenticate(token));
    assert.ok(tokens.cached(token));
    await tokens.revoke({ kind: 'user', name: 'ana' }, record.id);
    assert.equal(tokens.cached(token), undefined);
    assert.equal(await tokens.authenticate(token), null);
    await assert.rejects(tokens.revoke({ kind: 'user', name: 'ana' }, record.id), /no such token/);
  });

  it('won\'t let anyone revoke another owner\'s token', async () => {
    const { record } = await tokens.issue({ kind: 'user', name: 'ana' });
    await assert.rejects(tokens.revoke({ kind: 'user', name: 'boss' }, record.id), /no such token/);
  });

  it('refuses to make a token with more than its owner has, and unknown scopes', async () => {
    await assert.rejects(tokens.issue({ kind: 'user', name: 'ana' }, { scopes: ['admin:users'] }), /does not have them/);
    await assert.rejects(tokens.issue({ kind: 'user', name: 'ana' }, { scopes: ['read:servers!user=boss'] }), /does not have them/);
    await assert.rejects(tokens.issue({ kind: 'user', name: 'ana' }, { scopes: ['fly:away'] }), /Unknown scopes/);
    await assert.rejects(tokens.issue({ kind: 'service', name: 'culler' }, { scopes: ['admin:users'] }), /does not have them/);
    await assert.rejects(tokens.issue({ kind: 'service', name: 'ghost' }), /no service named ghost/);
  });

  it('reads the owner\'s powers at each use: a demoted admin\'s token loses admin, a deleted owner\'s token dies', async () => {
    const { token } = await tokens.issue({ kind: 'user', name: 'boss' }, { scopes: ['admin:users'] });
    assert.ok(allows((await tokens.authenticate(token, { fresh: true }))!.grants, 'admin:users'));
    accounts.set('boss', user('boss', ['instructor']));
    const after = await tokens.authenticate(token, { fresh: true });
    assert.ok(after);
    assert.ok(!allows(after.grants, 'admin:users'));
    accounts.delete('boss');
    assert.equal(await tokens.authenticate(token, { fresh: true }), null);
  });

  it('a disabled account\'s tokens are dead while it is disabled, cache included, and live again once enabled; it gets no new ones', async () => {
    const { token } = await tokens.issue({ kind: 'user', name: 'ana' });
    assert.ok(await tokens.authenticate(token));
    disabled.add('ana');
    assert.equal(await tokens.recheckAll({ kind: 'user', name: 'ana' }), 1);
    assert.equal(tokens.cached(token), undefined, 'the cached verdict is dropped at once');
    assert.equal(await tokens.authenticate(token), null);
    assert.equal(tokens.cached(token), null, 'the refusal is cached');
    await assert.rejects(tokens.issue({ kind: 'user', name: 'ana' }), /ana is disabled/);
    disabled.delete('ana');
    await tokens.recheckAll({ kind: 'user', name: 'ana' });
    assert.ok(await tokens.authenticate(token), 'enabled again, the same token works, from the cache too');
  });

  it('gives a service token exactly its service\'s scopes, within what it asked for', async () => {
    const { token } = await tokens.issue({ kind: 'service', name: 'culler' }, { scopes: ['read:servers'] });
    const auth = await tokens.authenticate(token);
    assert.ok(auth && allows(auth.grants, 'read:servers', 'anyone'));
    assert.ok(!allows(auth.grants, 'delete:servers', 'anyone'));
    assert.equal(auth.user, null);
  });

  it('lists an owner\'s tokens and drops expired ones from the list', async () => {
    await tokens.issue({ kind: 'user', name: 'ana' }, { note: 'a' });
    const short = await tokens.issue({ kind: 'user', name: 'ana' }, { note: 'b', expiresInS: 3 });
    assert.deepEqual((await tokens.list({ kind: 'user', name: 'ana' })).map((t) => t.note), ['a', 'b']);
    now += 3001;
    assert.deepEqual((await tokens.list({ kind: 'user', name: 'ana' })).map((t) => t.note), ['a']);
    assert.equal((await tokens.model(short.record)).expires_at, new Date(now - 1).toISOString());
  });
});
