import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, createUsers, startTestHub } from '../helpers/hub.js';
import { VisitorClient, loopbackFor } from '../helpers/try.js';

/** Send a request's header line and then one header byte a second, as a slowloris client does. Resolves with what the hub answered once it closes the socket. */
function slowHeaders(url: string): Promise<{ answer: string; bytesSent: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    let bytesSent = 0;
    const header = 'X-Slow: ' + 'a'.repeat(10_000);
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      socket.write('GET /hub/login HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      timer = setInterval(() => {
        if (socket.writable && bytesSent < header.length) socket.write(header[bytesSent++]!);
      }, 1000);
    });
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, bytesSent });
    });
    socket.on('timeout', () => reject(new Error('no answer')));
  });
}

describe('small holes: sockets, cookies, throttles and logs', function () {
  this.timeout(120_000);
  let hub: Hub;
  before(async () => {
    hub = await startTestHub('small-holes', { loginRateLimit: 3, loginAddressFailureLimit: 6 });
    await createUsers(hub, { bob: 'bob-password', carol: 'carol-password', dave: 'dave-password' });
  });
  after(async () => {
    await hub?.close();
  });

  it('a client that sends its headers a byte at a time has its socket closed by the hub, which keeps serving others', async () => {
    const slow = slowHeaders(hub.url);
    // Meanwhile an ordinary visitor is served.
    assert.equal((await fetch(`${hub.url}/hub/login`)).status, 200);
    const { answer, bytesSent } = await slow;
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(bytesSent > 0, 'the client was still sending when it was cut off');
    assert.equal((await fetch(`${hub.url}/hub/login`)).status, 200);
  });

  it('behind an https public address the hub cookie is Secure, with or without X-Forwarded-Proto', async () => {
    const tls = await startTestHub('small-holes-https', { publicUrl: 'https://hub.example.test', tryMaxServers: 0 });
    try {
      const variants: Record<string, string>[] = [{}, { 'x-forwarded-proto': 'http' }, { 'x-forwarded-proto': 'https' }];
      for (const headers of variants) {
        const c = new HubClient(tls.url);
        const page = await c.get('/hub/login', headers);
        const signIn = await c.request('POST', '/hub/login', { headers, form: { _csrf: HubClient.csrfFrom(page.body), username: 'admin', password: ADMIN_PASSWORD } });
        assert.equal(signIn.status, 303, `signed in with ${JSON.stringify(headers)}`);
        const cookie = signIn.headers.getSetCookie().find((l) => l.startsWith('oerhub-session='));
        assert.ok(cookie, 'a session cookie was set');
        assert.match(cookie, /;\s*Secure/i, `Secure with ${JSON.stringify(headers)}`);
        // And the signed-in session works on the next request.
        assert.equal((await c.get('/hub/api/user', { accept: 'application/json', ...headers })).status, 200);
      }
    } finally {
      await tls.close();
    }
  });

  it('wrong passwords typed as ｂｏｂ (full-width) count against bob', async () => {
    const address = '198.51.100.10';
    for (let i = 0; i < 3; i++) assert.equal((await new VisitorClient(hub.url, address).login('ｂｏｂ', 'guess')).status, 401);
    const bob = await new VisitorClient(hub.url, address).login('bob', 'bob-password');
    assert.equal(bob.status, 429);
    assert.match(bob.body, /Too many failed attempts/);
  });

  it('a classmate behind the school\'s one address can\'t lock Carol out of the browser she signed in with before', async () => {
    const school = '198.51.100.20';
    const carolsBrowser = new VisitorClient(hub.url, school);
    assert.equal((await carolsBrowser.login('carol', 'carol-password')).status, 303);
    assert.ok(carolsBrowser.cookie('oerhub-device'), 'her browser is now known');
    await carolsBrowser.endSession();
    const classmate = new VisitorClient(hub.url, school);
    for (let i = 0; i < 3; i++) assert.equal((await classmate.login('carol', 'guess')).status, 401);
    // An unknown browser at that address is throttled for carol, even with her password...
    assert.equal((await new VisitorClient(hub.url, school).login('carol', 'carol-password')).status, 429);
    // ...but her own browser gets her in.
    assert.equal((await carolsBrowser.login('carol', 'carol-password')).status, 303);
    assert.equal((await carolsBrowser.me()).name, 'carol');
  });

  it('a known browser that keeps failing is throttled by itself', async () => {
    const browser = new VisitorClient(hub.url, '198.51.100.25');
    assert.equal((await browser.login('bob', 'bob-password')).status, 303);
    await browser.endSession();
    for (let i = 0; i < 3; i++) assert.equal((await browser.login('bob', 'guess')).status, 401);
    assert.equal((await browser.login('bob', 'bob-password')).status, 429);
  });

  it('password spraying from one address stops unknown browsers there, not students whose browser is known', async () => {
    const school = '198.51.100.30';
    const davesBrowser = new VisitorClient(hub.url, school);
    assert.equal((await davesBrowser.login('dave', 'dave-password')).status, 303);
    await davesBrowser.endSession();
    const sprayer = new VisitorClient(hub.url, school);
    for (const name of ['ann', 'ben', 'cat', 'dan', 'eve', 'fay']) assert.equal((await sprayer.login(name, 'Summer2026!')).status, 401);
    assert.equal((await new VisitorClient(hub.url, school).login('dave', 'dave-password')).status, 429);
    assert.equal((await davesBrowser.login('dave', 'dave-password')).status, 303);
  });

  it('a whole class signing in from one address, first time on each browser, is never refused', async () => {
    const school = '198.51.100.40';
    // More sign-ins than any per-address request limit (the old one allowed 60 a minute).
    for (let i = 0; i < 70; i++) {
      const name = ['bob', 'carol', 'dave'][i % 3]!;
      const r = await new VisitorClient(hub.url, school).login(name, `${name}-password`);
      assert.equal(r.status, 303, `sign-in ${i + 1} of ${name}`);
    }
  });

  it('no secret typed or sent in a URL reaches the log: query strings and mistyped usernames are left out', async () => {
    const secret = (): string => 'S3CRET' + randomBytes(8).toString('hex');
    const secrets = { login: secret(), missing: secret(), saml: secret(), proxy: secret(), typed: secret() };
    // The log file is appended to by every run: read only what this test adds.
    const logFile = path.resolve(__dirname, '../../test-output/small-holes.log');
    const offset = fs.statSync(logFile).size;
    await fetch(`${hub.url}/hub/login?next=%2Fhub%2Fhome&token=${secrets.login}`, { redirect: "manual" });
    await fetch(`${hub.url}/hub/no-such-page?repo_token=${secrets.missing}`, { redirect: "manual" });
    await fetch(`${hub.url}/hub/saml/acs?SAMLResponse=${secrets.saml}&RelayState=x`);
    await fetch(`${hub.url}/user/bob/api/contents?token=${secrets.proxy}`, { redirect: "manual" });
    await fetch(`${hub.url}/user/%2e%2e/x?token=${secrets.proxy}`, { redirect: "manual" });
    // A password typed into the username box, and a wrong password for a real account.
    const v = new VisitorClient(hub.url, '198.51.100.50');
    assert.equal((await v.login(`${secrets.typed} horse battery`, 'x')).status, 401);
    assert.equal((await v.login('bob', 'wrong')).status, 401);

    const log = fs.readFileSync(logFile).subarray(offset).toString('utf8');
    for (const [where, value] of Object.entries(secrets)) assert.ok(!log.includes(value), `the ${where} secret is not in the log`);
    const lines = log.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; username?: string; ip?: string; req?: { url: string } });
    // What was asked is still there, without the values.
    assert.ok(lines.some((l) => l.req?.url === '/hub/login?next=[redacted]&token=[redacted]'), 'the request line names its path and parameters');
    const failures = lines.filter((l) => l.msg.startsWith('sign-in failed') && l.ip === loopbackFor('198.51.100.50'));
    assert.deepEqual(failures.map((l) => l.username?.replace(/ \S+$/, ' #')), ['unknown user #', 'bob']);
  });
});
