import assert from 'node:assert/strict';
import http from 'node:http';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { KernelSocket, startKernel, xsrfToken } from '../helpers/kernel.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';

/** One raw HTTP request with the path exactly as given (fetch would normalise it). */
function rawRequest(base: string, path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('the hub core: a student working in JupyterLab through the hub', function () {
  this.timeout(120_000);
  let hub: Hub;
  let alice: HubClient;
  let bob: HubClient;
  let kernelId: string;

  before(async () => {
    hub = await startTestHub('hub-core');
    await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
    [alice, bob] = await Promise.all([signInAndStart(hub, 'alice', 'alice-password'), signInAndStart(hub, 'bob', 'bob-password')]);
    kernelId = await startKernel(alice, 'alice');
  });

  after(async () => {
    await hub?.close();
  });

  it('runs print(6*7) in a kernel over the proxied WebSocket and keeps the socket open across 100 messages', async () => {
    const kernel = await KernelSocket.open(alice, 'alice', kernelId);
    try {
      assert.equal(await kernel.execute('print(6*7)'), '42\n');
      for (let i = 0; i < 100; i++) assert.equal(await kernel.execute(`print(${i} * 2)`), `${i * 2}\n`);
      assert.equal(kernel.ws.readyState, kernel.ws.OPEN);
    } finally {
      kernel.close();
    }
  });

  it("serves each student's server on an origin of its own, and hub pages only on the hub's", async () => {
    const aliceOrigin = alice.contentOrigin('alice');
    assert.equal(aliceOrigin, `http://alice.localhost:${new URL(hub.url).port}`);
    // A /user/ link on the hub's origin is sent to the server's own origin.
    const onHub = await alice.get(`${hub.url}/user/alice/lab?reset`);
    assert.equal(onHub.status, 302);
    assert.equal(onHub.location, `${aliceOrigin}/user/alice/lab?reset`);
    // The hub's API is not on a user origin, its pages only redirect back to the hub, and another student's path is not served there.
    assert.equal((await alice.get(`${aliceOrigin}/hub/api/user`, { accept: 'application/json' })).status, 404);
    const home = await alice.get(`${aliceOrigin}/hub/home`);
    assert.equal(home.status, 302);
    assert.equal(home.location, `${hub.url}/hub/home`);
    assert.equal((await bob.get(`${aliceOrigin}/user/bob/api/status`, { accept: 'application/json' })).status, 404);
    // The hub's session cookie stays on the hub's host; the server cookie is alice's host's only.
    const hubHost = new URL(hub.url).hostname;
    assert.deepEqual(
      [...alice.cookies.values()].filter((c) => c.name.startsWith('oerhub-')).map((c) => `${c.name}@${c.host}${c.path}`).sort(),
      // (and the sign-in's device cookie, on the hub's /hub/login only)
      [`oerhub-device@${hubHost}/hub/login`, `oerhub-session@${hubHost}/hub/`, `oerhub-user-alice@${new URL(aliceOrigin).hostname}/user/alice/`],
    );
  });

  it('hands the sign-in over with a code that works once, for one server only', async () => {
    const r = await alice.get('/hub/user-redirect/lab');
    assert.equal(r.status, 302);
    const code = new URL(r.location ?? '').searchParams.get('code') ?? '';
    assert.match(r.location ?? '', /^http:\/\/alice\.localhost:\d+\/user\/alice\/oerhub-login\?code=/);
    // On bob's origin, alice's code is refused (and spent).
    const thief = new HubClient(hub.url);
    const elsewhere = await thief.get(`${bob.contentOrigin('bob')}/user/bob/oerhub-login?code=${code}`);
    assert.equal(elsewhere.status, 302);
    assert.match(elsewhere.location ?? '', /\/hub\/login\?next=/);
    assert.equal(elsewhere.headers.getSetCookie().length, 0);
    const again = await thief.get(r.location ?? '');
    assert.equal(again.headers.getSetCookie().length, 0, 'a spent code gave a cookie');
    // A fresh code works once, and only to this server's own pages.
    const fresh = { hub: await alice.get('/hub/user-redirect/lab') };
    const first = await thief.get((fresh.hub.location ?? '').replace(/next=[^&]*/, 'next=%2F%2Fevil.example%2F'));
    assert.equal(first.status, 302);
    assert.equal(first.location, '/user/alice/');
    assert.equal(first.headers.getSetCookie().length, 1);
    const replay = await new HubClient(hub.url).get(fresh.hub.location ?? '');
    assert.equal(replay.headers.getSetCookie().length, 0, 'a code worked twice');
  });

  it("refuses another student on someone else's server, over HTTP and WebSocket", async () => {
    // As a browser would: no cookie for /user/alice/, so the hub sends bob to sign in, then refuses.
    const page = await bob.follow('/user/alice/lab');
    assert.equal(page.status, 403, `${page.url}: ${page.body.slice(0, 300)}`);
    assert.match(page.body, /someone else&#39;s server|someone else's server/);
    const api = await bob.get('/user/alice/api/contents', { accept: 'application/json' });
    assert.equal(api.status, 403);
    // Bob's own server cookie, renamed for alice's path, is not accepted.
    const own = bob.cookie('oerhub-user-bob');
    assert.ok(own);
    const forged = await bob.get('/user/alice/api/status', { accept: 'application/json', cookie: `oerhub-user-alice=${own.value}` });
    assert.equal(forged.status, 403);
    await assert.rejects(KernelSocket.open(bob, 'alice', kernelId), /upgrade refused: 403/);
    await assert.rejects(KernelSocket.open(bob, 'alice', kernelId, { cookie: `oerhub-user-alice=${own.value}` }), /upgrade refused: 403/);
  });

  it('sends a visitor without a session, or with a forged or tampered cookie, to the login page', async () => {
    const anon = new HubClient(hub.url);
    const r = await anon.get('/user/alice/lab');
    assert.equal(r.status, 302);
    assert.equal(r.location, `${hub.url}/hub/login?next=%2Fuser%2Falice%2Flab`);
    const real = alice.cookie('oerhub-user-alice');
    assert.ok(real);
    const tampered = real.value.slice(0, -2) + (real.value.endsWith('AA') ? 'BB' : 'AA');
    for (const value of ['garbage', 'abc.def', tampered]) {
      const f = await anon.get('/user/alice/lab', { cookie: `oerhub-user-alice=${value}` });
      assert.equal(f.status, 302, value);
      assert.equal(f.location, `${hub.url}/hub/login?next=%2Fuser%2Falice%2Flab`, value);
    }
  });

  it("never sends the server's secret token to the browser", async () => {
    const secret = hub.routes.get('alice')?.authorization.replace(/^token /, '');
    assert.ok(secret && secret.length > 20);
    const seen: string[] = [];
    for (const path of ['/user/alice/lab', '/user/alice/api/status', '/user/alice/lab/api/settings', '/user/alice/api/kernels', '/hub/home', '/hub/api/user', '/hub/user-redirect/lab']) {
      const r = await alice.get(path, { accept: path.includes('/api/') ? 'application/json' : 'text/html' });
      seen.push(`${path} ${r.status}`);
      assert.ok(!r.body.includes(secret), `secret in body of ${path}`);
      for (const [k, v] of r.headers) assert.ok(!v.includes(secret), `secret in header ${k} of ${path}`);
    }
    assert.ok(seen.some((s) => s.startsWith('/user/alice/lab 200')), seen.join(', '));
  });

  it('refuses unsafe requests without a matching XSRF header and cookie', async () => {
    const none = await alice.request('POST', '/user/alice/api/kernels', { headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{}' });
    assert.equal(none.status, 403);
    const wrong = await alice.request('POST', '/user/alice/api/kernels', { headers: { 'content-type': 'application/json', accept: 'application/json', 'x-xsrftoken': 'not-the-cookie' }, body: '{}' });
    assert.equal(wrong.status, 403);
    const token = await xsrfToken(alice, 'alice');
    const ok = await alice.request('PUT', '/user/alice/api/contents/xsrf-ok.txt', {
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-xsrftoken': token },
      body: JSON.stringify({ type: 'file', format: 'text', content: 'hi' }),
    });
    assert.equal(ok.status, 201);
    // Hub forms too: a POST without the form's token is refused.
    const stop = await alice.request('POST', '/hub/stop', { form: {} });
    assert.equal(stop.status, 403);
    assert.equal(hub.routes.get('alice')?.user, 'alice', 'server still running');
  });

  it('refuses a WebSocket upgrade from a foreign Origin', async () => {
    await assert.rejects(KernelSocket.open(alice, 'alice', kernelId, { origin: 'https://evil.example' }), /upgrade refused: 403/);
    // A page of the hub's origin or of a classmate's server can't open alice's kernel either: only alice's own origin can.
    await assert.rejects(KernelSocket.open(alice, 'alice', kernelId, { origin: new URL(hub.url).origin }), /upgrade refused: 403/);
    await assert.rejects(KernelSocket.open(alice, 'alice', kernelId, { origin: alice.contentOrigin('bob') }), /upgrade refused: 403/);
    const k = await KernelSocket.open(alice, 'alice', kernelId);
    k.close();
  });

  it("never lets a path escape into another user's server", async () => {
    const cookie = alice.cookieHeader('/user/alice/');
    const paths = [
      '/user/alice/../bob/api/status',
      '/user/alice/%2e%2e/bob/api/status',
      '/user/alice/%2E%2E/bob/api/status',
      '/user/alice/..%2fbob/api/status',
      '/user/alice/%2F..%2Fbob/api/status',
      '/user/alice//../bob/api/status',
      '/user/alice/..\\bob/api/status',
      '/user/alice/%5c..%5cbob/api/status',
      '/USER/bob/api/status',
      '/user/BOB/api/status',
      '/user//bob/api/status',
      '/user/Alice/../bob/api/status',
    ];
    // On alice's own origin, where her cookie lives; the hub's origin doesn't serve /user/ at all.
    const host = new URL(alice.contentOrigin('alice')).host;
    for (const path of paths) {
      const r = await rawRequest(hub.url, path, { cookie, accept: 'application/json', host });
      assert.ok([400, 403, 404].includes(r.status), `${path} answered ${r.status}`);
      assert.ok(!r.body.includes('"started"'), `${path} reached a notebook server`);
    }
  });

  it('redirects after sign-in only to our own paths', async () => {
    for (const next of ['//e', '///e', '\\\\e', '/\\e', 'https://e', 'javascript:alert(1)', '/%2f%2fe', ' /hub/home']) {
      const r = await alice.get(`/hub/login?next=${encodeURIComponent(next)}`);
      assert.equal(r.status, 303, next);
      assert.equal(r.location, '/hub/home', next);
    }
    const fresh = new HubClient(hub.url);
    const posted = await fresh.login('bob', 'bob-password', '//evil.example/');
    assert.equal(posted.location, '/hub/home');
  });

  it('stays up after a request with a Trailer header or a 1 MB header', async () => {
    const cookie = alice.cookieHeader('/user/alice/');
    const host = new URL(alice.contentOrigin('alice')).host;
    const token = await xsrfToken(alice, 'alice');
    const chunked = await new Promise<number>((resolve, reject) => {
      const u = new URL(hub.url);
      const req = http.request(
        { host: u.hostname, port: u.port, path: '/user/alice/api/contents/trailer.txt', method: 'PUT', headers: { host, cookie: `${cookie}`, 'x-xsrftoken': token, 'content-type': 'application/json', trailer: 'x-checksum', 'transfer-encoding': 'chunked' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(JSON.stringify({ type: 'file', format: 'text', content: 'with trailer' }));
      req.addTrailers({ 'x-checksum': 'abc' });
      req.end();
    });
    assert.ok(chunked < 500, `trailer request answered ${chunked}`);
    const big = await rawRequest(hub.url, '/user/alice/api/status', { host, cookie, 'x-big': 'x'.repeat(1024 * 1024) }).catch((e: Error) => ({ status: 0, body: e.message }));
    assert.ok(big.status === 431 || big.status === 0 || big.status === 400, `1 MB header answered ${big.status}`);
    const bigHub = await rawRequest(hub.url, '/hub/login', { 'x-big': 'x'.repeat(1024 * 1024) }).catch((e: Error) => ({ status: 0, body: e.message }));
    assert.ok(bigHub.status === 431 || bigHub.status === 0 || bigHub.status === 400);
    const health = await fetch(`${hub.url}/hub/health`);
    assert.equal(health.status, 200);
    const status = await alice.get('/user/alice/api/status', { accept: 'application/json' });
    assert.equal(status.status, 200);
  });

  it('shows a page offering to start a stopped server, not a bare 502', async () => {
    const carol = await (async () => {
      await createUsers(hub, { carol: 'carol-password' });
      const c = new HubClient(hub.url);
      await c.login('carol', 'carol-password');
      return c;
    })();
    // Carol has no server: the hub still routes her to a friendly page once signed in.
    const home = await carol.get('/hub/home');
    assert.match(home.body, /Start my server/);
    const user = await hub.users.get('carol');
    assert.ok(user);
    await hub.manager.start(user);
    const { waitForReady } = await import('../helpers/hub.js');
    await waitForReady(carol, 'carol');
    await carol.openServer('/lab');
    await hub.manager.stop(user);
    const page = await carol.get('/user/carol/lab');
    assert.equal(page.status, 503);
    assert.match(page.body, /Your server is not running/);
    assert.match(page.body, /href="\/hub\/spawn\?next=%2Fuser%2Fcarol%2Flab"/);
  });

  it('signs out at once: the hub closes an open kernel WebSocket, and it cannot be reopened', async () => {
    // A second sign-in of alice, so the first session's tests above are unaffected.
    const again = new HubClient(hub.url);
    await again.login('alice', 'alice-password');
    const { handoff } = await again.openServer('/lab');
    assert.equal(handoff?.status, 302);
    const stale = redirectCookie(handoff.headers);
    const kernel = await KernelSocket.open(again, 'alice', kernelId);
    assert.equal(await kernel.execute('print("before")'), 'before\n');
    const home = await again.get('/hub/home');
    const out = await again.request('POST', '/hub/logout', { form: { _csrf: HubClient.csrfFrom(home.body) } });
    assert.equal(out.status, 200);
    // The hub closes it; the client does nothing but wait (the test's timeout bounds the wait).
    await kernel.closed;
    // Even a client that kept the old cookie can't get back in.
    await assert.rejects(KernelSocket.open(again, 'alice', kernelId, { cookie: `oerhub-user-alice=${stale}` }), /upgrade refused: 403/);
    const api = await again.get('/user/alice/api/status', { accept: 'application/json', cookie: `oerhub-user-alice=${stale}` });
    assert.equal(api.status, 403);
    // The other session of alice is untouched.
    assert.equal((await alice.get('/user/alice/api/status', { accept: 'application/json' })).status, 200);
  });
});

function redirectCookie(headers: Headers): string {
  const line = headers.getSetCookie().find((l) => l.startsWith('oerhub-user-alice='));
  if (!line) throw new Error('no server cookie was set');
  return line.slice('oerhub-user-alice='.length).split(';')[0];
}
