import assert from 'node:assert/strict';
import { signServerCookie } from '../../server/auth/server-cookie.js';
import { StoreUnavailable } from '../../server/errors.js';
import { SessionChecker, type SessionLookup } from '../../server/proxy/session-check.js';

const SECRET = 'a-cookie-secret-of-at-least-32-characters';
const TTL_MS = 10_000;
const STALE_MS = 600_000;

/** The store's answers, which the test changes: who is signed in, and whether it is reachable. */
function storeOf(sessions: Record<string, string>): SessionLookup & { down: boolean; asked: number } {
  const store = {
    down: false,
    asked: 0,
    async userOf(sid: string) {
      store.asked++;
      if (store.down) throw new StoreUnavailable('redis down');
      return Object.hasOwn(sessions, sid) ? sessions[sid]! : null;
    },
  };
  return store;
}

describe('the proxy\'s session check during a store outage', () => {
  it('accepts a session checked within the stale bound while the store is down, and not after it', async () => {
    const clock = { now: 0 };
    const store = storeOf({ s1: 'ann' });
    const checker = new SessionChecker(SECRET, store, TTL_MS, { staleWhileErrorMs: STALE_MS, now: () => clock.now });
    const cookie = signServerCookie(SECRET, 's1', 'ann');
    assert.equal((await checker.check(cookie, 'ann'))?.user, 'ann');
    store.down = true;
    clock.now = TTL_MS + 1;
    assert.equal(checker.cached(cookie, 'ann'), undefined, 'past the cache, the store must be asked');
    assert.equal((await checker.check(cookie, 'ann'))?.user, 'ann');
    clock.now = STALE_MS - 1;
    assert.equal((await checker.check(cookie, 'ann'))?.user, 'ann');
    clock.now = STALE_MS + 1;
    await assert.rejects(checker.check(cookie, 'ann'), StoreUnavailable);
  });

  it('never lets a revoked session, a session the store dropped or an unchecked cookie through during an outage', async () => {
    const clock = { now: 0 };
    const sessions: Record<string, string> = { s1: 'ann', s2: 'bo' };
    const store = storeOf(sessions);
    const checker = new SessionChecker(SECRET, store, TTL_MS, { staleWhileErrorMs: STALE_MS, now: () => clock.now });
    const ann = signServerCookie(SECRET, 's1', 'ann');
    const bo = signServerCookie(SECRET, 's2', 'bo');
    await checker.check(ann, 'ann');
    await checker.check(bo, 'bo');
    checker.revoke('s1');
    // Bo's session ends in the store (signed out on another hub) and the next check sees it.
    delete sessions.s2;
    clock.now = TTL_MS + 1;
    assert.equal(await checker.check(bo, 'bo'), null);
    store.down = true;
    await assert.rejects(checker.check(ann, 'ann'), StoreUnavailable);
    await assert.rejects(checker.check(bo, 'bo'), StoreUnavailable);
    await assert.rejects(checker.check(signServerCookie(SECRET, 's3', 'cy'), 'cy'), StoreUnavailable);
    // A cookie for another user's path is refused before the store is asked.
    assert.equal(await checker.check(ann, 'bo'), null);
  });

  it('with no stale bound, refuses as soon as the cache runs out', async () => {
    const clock = { now: 0 };
    const store = storeOf({ s1: 'ann' });
    const checker = new SessionChecker(SECRET, store, TTL_MS, { now: () => clock.now });
    const cookie = signServerCookie(SECRET, 's1', 'ann');
    await checker.check(cookie, 'ann');
    store.down = true;
    clock.now = TTL_MS + 1;
    await assert.rejects(checker.check(cookie, 'ann'), StoreUnavailable);
  });
});
