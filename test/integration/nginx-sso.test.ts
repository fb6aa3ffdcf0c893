import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { startTestHub } from '../helpers/hub.js';
import { launchBrowser } from '../helpers/browser.js';
import { frontDoorPath, HttpsClient, startNginx, type TestNginx } from '../helpers/nginx.js';
import { startSamlHub, TestIdp } from '../helpers/saml-idp.js';

const LOG_DIR = path.resolve(__dirname, '../../test-output');

/** Run code in a kernel over a WebSocket through nginx and the hub; resolves with its stdout. */
function execute(ws: import('ws').WebSocket, code: string): Promise<string> {
  const msgId = randomUUID();
  return new Promise((resolve, reject) => {
    let out = '';
    const onMessage = (data: unknown): void => {
      const msg = JSON.parse(String(data)) as { msg_type?: string; header: { msg_type: string }; parent_header: { msg_id?: string }; content: { name?: string; text?: string; execution_state?: string } };
      if (msg.parent_header.msg_id !== msgId) return;
      if (msg.header.msg_type === 'stream') out += msg.content.text ?? '';
      if (msg.header.msg_type === 'status' && msg.content.execution_state === 'idle') {
        ws.off('message', onMessage);
        resolve(out);
      }
    };
    ws.on('message', onMessage);
    ws.once('close', () => reject(new Error('kernel socket closed')));
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, msg_type: 'execute_request', username: 'test', session: randomUUID(), date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        channel: 'shell',
        buffers: [],
      }),
    );
  });
}

describe('behind nginx over HTTPS: SAML sign-in, a kernel WebSocket and the live spawn progress stream', function () {
  this.timeout(180_000);
  let idp: TestIdp;
  let nginx: TestNginx;
  let hub: Hub;
  const door = frontDoorPath();

  before(async () => {
    idp = await TestIdp.start();
    idp.addUser('stu', { password: 'stu-pw', attributes: { uid: 'stu', displayName: 'Stu Dent', eduPersonAffiliation: 'student' } });
    idp.addUser('prof', { password: 'prof-pw', attributes: { uid: 'prof', displayName: 'Pro Fessor', eduPersonAffiliation: 'faculty' } });
    nginx = await startNginx({ site: 'oerhub.conf', hubSocket: door.socket });
    hub = await startSamlHub('nginx-sso', idp, { publicUrl: nginx.url, frontDoorSocket: door.socket });
  });

  after(async () => {
    await hub?.close();
    await nginx?.stop();
    await idp?.close();
    door.remove();
  });

  it('sends plain HTTP to HTTPS and sets HSTS', async () => {
    const r = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${nginx.httpUrl}/hub/login?x=1`, resolve).on('error', reject));
    r.resume();
    assert.equal(r.statusCode, 301);
    assert.equal(r.headers.location, `${nginx.url}/hub/login?x=1`);
    const page = await new HttpsClient(nginx.url, nginx.ca).get('/hub/login');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['strict-transport-security']), /max-age=\d+/);
  });

  it('signs in with SAML over HTTPS, streams spawn progress live, and runs a kernel over a WebSocket through nginx', async () => {
    const client = new HttpsClient(nginx.url, nginx.ca);
    const start = await client.get('/hub/saml/login?next=%2Fhub%2Fhome');
    assert.equal(start.status, 302);
    const response = await idp.answer(start.location!, 'stu');
    assert.equal(response.acsUrl, `${nginx.url}/hub/saml/acs`);
    const acs = await client.request('POST', '/hub/saml/acs', { form: { SAMLResponse: response.SAMLResponse, RelayState: response.RelayState } });
    assert.equal(acs.status, 303, acs.body);
    assert.equal(acs.location, '/hub/home');
    const sessionCookie = acs.setCookies.find((c) => c.startsWith('oerhub-session='));
    assert.ok(sessionCookie && /;\s*Secure/i.test(sessionCookie) && /SameSite=Lax/i.test(sessionCookie), sessionCookie);
    const me = JSON.parse((await client.get('/hub/api/user', { accept: 'application/json' })).body) as { name: string; roles: string[] };
    assert.deepEqual([me.name, me.roles], ['stu', ['student']]);

    // Spawn, and read the progress stream through nginx: the first event must arrive while the
    // server is still starting (a buffering proxy would hold everything until the end).
    await client.get('/hub/spawn');
    const seenWhileStarting: boolean[] = [];
    const progress = await client.request('GET', '/hub/api/users/stu/server/progress', {
      headers: { accept: 'text/event-stream' },
      onData: (chunk) => {
        if (chunk.includes('data: ')) seenWhileStarting.push(!hub.routes.get('stu'));
      },
    });
    assert.equal(progress.status, 200);
    assert.match(progress.body, /"ready":true/);
    assert.ok(seenWhileStarting.length >= 2, `events arrived in ${seenWhileStarting.length} chunk(s)`);
    assert.equal(seenWhileStarting[0], true, 'the first event arrived before the server was ready');

    const redirect = await client.get('/hub/user-redirect/lab');
    assert.equal(redirect.status, 302);
    const lab = await client.get('/user/stu/lab');
    assert.equal(lab.status, 200);
    const xsrf = [...client.cookies.values()].find((c) => c.name === '_xsrf');
    assert.ok(xsrf, 'Jupyter set its _xsrf cookie');
    const created = await client.request('POST', '/user/stu/api/kernels', { headers: { accept: 'application/json', 'content-type': 'application/json', 'x-xsrftoken': xsrf.value } });
    // The HttpsClient sends no body with this request; Jupyter then starts the default kernel.
    assert.equal(created.status, 201, created.body.slice(0, 300));
    const kernelId = (JSON.parse(created.body) as { id: string }).id;
    const ws = await client.websocket(`/user/stu/api/kernels/${kernelId}/channels`);
    try {
      assert.equal(await execute(ws, 'print(6*7)'), '42\n');
      assert.equal(await execute(ws, 'print(sum(range(10)))'), '45\n');
    } finally {
      ws.close();
    }
  });
});

describe('trusted-header sign-on: nginx does the SSO and passes the user', function () {
  this.timeout(120_000);
  let agent: http.Server;
  let nginx: TestNginx;
  let hub: Hub;
  const door = frontDoorPath();

  before(async () => {
    // The SSO agent nginx asks on every request (auth_request): a small real program.
    agent = http.createServer((req, res) => {
      const cookie = req.headers.cookie ?? '';
      const who = /(?:^|;\s*)sso=(alice|bob)-ticket/.exec(cookie)?.[1];
      if (!who) return res.writeHead(401).end();
      res.writeHead(200, { 'x-remote-user': who === 'alice' ? 'Alice' : 'bob', 'x-remote-groups': who === 'alice' ? 'faculty;staff' : 'student' }).end();
    });
    await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve));
    nginx = await startNginx({ site: 'oerhub-trusted-header.conf', hubSocket: door.socket, ssoAgentPort: (agent.address() as AddressInfo).port });
    hub = await startTestHub('nginx-trusted-header', {
      publicUrl: nginx.url,
      trustedHeader: 'X-Remote-User',
      trustedHeaderRoles: 'X-Remote-Groups',
      frontDoorSocket: door.socket,
    });
  });

  after(async () => {
    await hub?.close();
    await nginx?.stop();
    await new Promise((resolve) => agent?.close(resolve));
    door.remove();
  });

  it('signs the user in from the header nginx sets, and ignores a client-sent copy', async () => {
    const alice = new HttpsClient(nginx.url, nginx.ca);
    const r = await alice.get('/hub/api/user', { accept: 'application/json', cookie: 'sso=alice-ticket', 'x-remote-user': 'admin' });
    assert.equal(r.status, 200, r.body);
    const me = JSON.parse(r.body) as { name: string; roles: string[] };
    assert.equal(me.name, 'alice');
    assert.deepEqual(me.roles, ['instructor']);
    assert.equal((await hub.users.get('alice'))?.source, 'header');
    const admin = await hub.users.get('admin');
    assert.equal(admin?.source, 'local', 'the client-sent X-Remote-User: admin changed nothing');
  });

  it('sends a browser without an SSO session to the SSO login, even if it sends the header itself', async () => {
    const anon = new HttpsClient(nginx.url, nginx.ca);
    const r = await anon.get('/hub/home', { 'x-remote-user': 'admin' });
    assert.equal(r.status, 302);
    assert.match(r.location ?? '', /^https:\/\/sso\.example\.edu\/login\?target=/);
  });

  it("ignores the same header sent straight to the hub's TCP port from 127.0.0.1 (as a kernel on this machine would), and logs it", async () => {
    const log = path.join(LOG_DIR, 'nginx-trusted-header.log');
    const before = fs.readFileSync(log, 'utf8').split('ignored a sign-in header').length;
    const url = new URL(hub.url);
    const reply = await new Promise<{ status: number; body: string; cookies: string[] }>((resolve, reject) => {
      // From 127.0.0.1, nginx's own address: a TCP peer address proves nothing.
      const req = http.request({ host: url.hostname, port: url.port, path: '/hub/api/user', headers: { 'x-remote-user': 'alice', accept: 'application/json' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cookies: res.headers['set-cookie'] ?? [] }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(reply.status, 401, reply.body);
    assert.deepEqual(reply.cookies, []);
    assert.equal(fs.readFileSync(log, 'utf8').split('ignored a sign-in header').length, before + 1);
  });
});

describe('Chromium through nginx over HTTPS: students and instructors sign in at their institution', function () {
  this.timeout(180_000);
  let idp: TestIdp;
  let nginx: TestNginx;
  let hub: Hub;
  let browser: Browser;
  const door = frontDoorPath();

  before(async () => {
    idp = await TestIdp.start();
    idp.addUser('stu', { password: 'stu-pw', attributes: { uid: 'stu', displayName: 'Stu Dent', eduPersonAffiliation: ['student', 'member'] } });
    idp.addUser('prof', { password: 'prof-pw', attributes: { uid: 'prof', displayName: 'Pro Fessor', eduPersonAffiliation: ['faculty', 'member'] } });
    nginx = await startNginx({ site: 'oerhub.conf', hubSocket: door.socket });
    hub = await startSamlHub('nginx-chromium', idp, { publicUrl: nginx.url, frontDoorSocket: door.socket });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.close();
    await nginx?.stop();
    await idp?.close();
    door.remove();
  });

  async function signIn(username: string, password: string): Promise<import('playwright-core').Page> {
    // The trial certificate is self-signed; a real deployment uses a trusted one.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${nginx.url}/hub/home`);
    assert.match(page.url(), /\/hub\/login\?next=%2Fhub%2Fhome$/);
    await page.click('#saml-login');
    await page.waitForURL(`${idp.url}/sso?**`);
    await page.fill('#idp-username', username);
    await page.fill('#idp-password', password);
    await page.click('#idp-login');
    await page.waitForURL(`${nginx.url}/hub/home`);
    return page;
  }

  it('a student clicks sign-in, completes the IdP login page and lands on their home', async () => {
    const page = await signIn('stu', 'stu-pw');
    assert.equal(await page.textContent('.who'), 'Stu Dent');
    assert.equal(await page.getAttribute('.who', 'title'), 'student');
    const cookies = await page.context().cookies(`${nginx.url}/hub/home`);
    const session = cookies.find((c) => c.name === 'oerhub-session');
    assert.ok(session?.secure && session.httpOnly && session.sameSite === 'Lax');
    await page.context().close();
  });

  it('an instructor gets the instructor role', async () => {
    const page = await signIn('prof', 'prof-pw');
    assert.equal(await page.textContent('.who'), 'Pro Fessor');
    assert.equal(await page.getAttribute('.who', 'title'), 'instructor');
    const api = await page.evaluate(async () => (await fetch('/hub/api/user', { headers: { accept: 'application/json' } })).json() as Promise<{ roles: string[] }>);
    assert.deepEqual(api.roles, ['instructor']);
    await page.context().close();
  });
});
