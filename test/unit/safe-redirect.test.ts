import assert from 'node:assert/strict';
import { safeNext } from '../../server/web/safe-redirect.js';
import { parseUserPath } from '../../server/proxy/user-path.js';
import { readCookie, signServerCookie, stripOurCookies, verifyServerCookie } from '../../server/auth/server-cookie.js';

describe('redirect targets (next=)', () => {
  it('accept our own paths', () => {
    assert.equal(safeNext('/hub/home'), '/hub/home');
    assert.equal(safeNext('/user/alice/lab?x=1#y'), '/user/alice/lab?x=1#y');
  });

  it('refuse anything a browser could read as another site or another place', () => {
    for (const bad of ['//e', '///e', '\\\\e', '/\\e', 'https://e', 'javascript:alert(1)', '/\te', '/hub/../e', '/user/a/%2e%2e/b', 'e', '', '/other', '/%2f%2fe', '/hub/\u0000']) {
      assert.equal(safeNext(bad), null, JSON.stringify(bad));
    }
    assert.equal(safeNext(42), null);
  });
});

describe('user paths', () => {
  it('route only the exact escaped name', () => {
    assert.deepEqual(parseUserPath('/user/alice/lab?x=/../b'), { kind: 'user', escapedName: 'alice' });
    assert.deepEqual(parseUserPath('/user/alice'), { kind: 'add-slash', location: '/user/alice/' });
    for (const bad of ['/user/Alice/', '/user//alice/', '/user/alice/../bob/', '/user/alice/%2e%2e/bob/', '/user/alice/%2E%2E/bob', '/user/alice/..%2fbob/', '/user/alice//x', '/user/alice/a\\..\\b', '/user/alice/%5c..', '/user/alice/.', '/user/%61lice/']) {
      assert.equal(parseUserPath(bad).kind, 'bad', bad);
    }
  });
});

describe('server cookies', () => {
  it('open only the server they were made for, and only untampered', () => {
    const v = signServerCookie('s'.repeat(32), 'sid123', 'alice');
    assert.equal(verifyServerCookie('s'.repeat(32), v, 'alice'), 'sid123');
    assert.equal(verifyServerCookie('s'.repeat(32), v, 'bob'), null);
    assert.equal(verifyServerCookie('t'.repeat(32), v, 'alice'), null);
    assert.equal(verifyServerCookie('s'.repeat(32), v.slice(0, -1) + (v.endsWith('A') ? 'B' : 'A'), 'alice'), null);
    assert.equal(verifyServerCookie('s'.repeat(32), 'garbage', 'alice'), null);
  });

  it('are read without parsing the whole header and stripped before reaching a server', () => {
    const header = 'a=1; oerhub-user-alice=v.x; _xsrf=2|abc; oerhub-session=zzz';
    assert.equal(readCookie(header, 'oerhub-user-alice'), 'v.x');
    assert.equal(readCookie(header, '_xsrf'), '2|abc');
    assert.equal(readCookie(header, 'missing'), undefined);
    assert.equal(stripOurCookies(header), 'a=1; _xsrf=2|abc');
    assert.equal(stripOurCookies('oerhub-session=1'), undefined);
  });
});
