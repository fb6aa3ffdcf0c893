import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { frontDoorPath } from '../helpers/nginx.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { HubClient } from '../helpers/client.js';

const LOG_DIR = path.resolve(__dirname, '../../test-output');
const LABEL = 'front-door';

interface Answer {
  status: number;
  body: string;
  cookies: string[];
}

/** One plain HTTP request, over TCP (`port`) or the front door socket (`socketPath`). */
function send(target: { port: number } | { socketPath: string }, method: string, p: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath }), method, path: p, headers: { host: 'hub.test', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, cookies: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The hub's JSON log lines with this message. */
function logLines(msg: string): Record<string, unknown>[] {
  return fs
    .readFileSync(path.join(LOG_DIR, `${LABEL}.log`), 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the front door: identity and forwarded headers count only through the socket nginx uses', function () {
  this.timeout(180_000);
  const door = frontDoorPath();
  let hub: Hub;
  let port: number;

  before(async () => {
    hub = await startTestHub(LABEL, { trustedHeader: 'X-Remote-User', trustedHeaderRoles: 'X-Remote-Groups', frontDoorSocket: door.socket, frontDoorSocketGroup: 'www-data', loginRateLimit: 3 });
    port = Number(new URL(hub.url).port);
    await createUsers(hub, { lee: 'lee-password-1', kim: 'kim-password-1' });
  });

  after(async () => {
    await hub?.close();
    door.remove();
  });

  it("opens the socket for nginx's group only (0660, group www-data)", () => {
    const st = fs.lstatSync(door.socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    const wwwData = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('www-data:'))!.split(':')[2];
    assert.equal(st.gid, Number(wwwData));
  });

  it('signs in the user nginx names on the socket, with the roles it passes', async () => {
    const r = await send({ socketPath: door.socket }, 'GET', '/hub/api/user', { accept: 'application/json', 'x-remote-user': 'Carol', 'x-remote-groups': 'faculty', 'x-forwarded-for': '198.51.100.7' });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual((JSON.parse(r.body) as { name: string; roles: string[] }).roles, ['instructor']);
    assert.ok(r.cookies.some((c) => c.startsWith('oerhub-session=')));
    // Through the door, nginx's X-Forwarded-For is the client's address.
    assert.equal(logLines('signed in from trusted header').at(-1)?.peer, '198.51.100.7');
  });

  it('a header naming a local account, even through the front door, gets the conflict page and changes nothing', async () => {
    const before = await hub.users.get('lee');
    const r = await send({ socketPath: door.socket }, 'GET', '/hub/home', { 'x-remote-user': 'Lee' });
    assert.equal(r.status, 409);
    assert.match(r.body, /This name already belongs to another account/);
    assert.deepEqual(r.cookies.filter((c) => c.startsWith('oerhub-session=')), []);
    assert.deepEqual(await hub.users.get('lee'), before);
  });

  it("doesn't sign anyone in from X-Remote-User: admin sent straight to the TCP port from 127.0.0.1, and logs it", async () => {
    const before = logLines('ignored a sign-in header that did not come through the front door').length;
    const r = await send({ port }, 'GET', '/hub/api/user', { accept: 'application/json', 'x-remote-user': 'admin', 'x-remote-groups': 'faculty' });
    assert.equal(r.status, 401, r.body);
    assert.deepEqual(r.cookies, []);
    const lines = logLines('ignored a sign-in header that did not come through the front door');
    assert.equal(lines.length, before + 1);
    assert.equal(lines.at(-1)?.peer, '127.0.0.1');
    assert.equal((await hub.users.get('admin'))?.source, 'local');
  });

  it('logs and throttles failed sign-ins under the real peer address, whatever X-Forwarded-For claims', async () => {
    const client = new HubClient(hub.url);
    const attempt = async (forged: string): Promise<number> => {
      const page = await client.get('/hub/login');
      const r = await client.request('POST', '/hub/login', {
        headers: { 'x-forwarded-for': forged, 'x-real-ip': forged, forwarded: `for=${forged}` },
        form: { _csrf: HubClient.csrfFrom(page.body), username: 'lee', password: 'not-lees-password' },
      });
      return r.status;
    };
    // A new made-up address each time, as an attacker dodging a per-address limit would send.
    for (const forged of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) assert.equal(await attempt(forged), 401);
    assert.equal(await attempt('203.0.113.4'), 429, 'the limit counts the real peer, not the forged addresses');
    const failed = logLines('sign-in failed: wrong username or password').slice(-3);
    assert.deepEqual(failed.map((l) => l.ip), ['127.0.0.1', '127.0.0.1', '127.0.0.1']);
    assert.doesNotMatch(fs.readFileSync(path.join(LOG_DIR, `${LABEL}.log`), 'utf8').split('\n').filter((l) => l.includes('sign-in')).join('\n'), /203\.0\.113\./);
    assert.ok(logLines('ignored forwarded headers that did not come through the front door').some((l) => JSON.stringify(l.headers) === '["forwarded","x-forwarded-for","x-real-ip"]'));
  });

  it("a student's kernel can't forge a sign-in or a client address by calling the hub's TCP port", async () => {
    const client: HubClient = await signInAndStart(hub, 'kim', 'kim-password-1');
    const kernel = await KernelSocket.open(client, 'kim', await startKernel(client, 'kim'));
    try {
      const code = [
        'import http.client, json',
        `c = http.client.HTTPConnection("127.0.0.1", ${port}, timeout=10)`,
        'c.request("GET", "/hub/api/user", headers={"X-Remote-User": "admin", "X-Remote-Groups": "faculty", "X-Forwarded-For": "10.9.9.9", "Accept": "application/json"})',
        'r = c.getresponse()',
        'print(json.dumps({"status": r.status, "cookie": r.getheader("Set-Cookie")}))',
      ].join('\n');
      const out = JSON.parse(await kernel.execute(code)) as { status: number; cookie: string | null };
      assert.deepEqual(out, { status: 401, cookie: null });
    } finally {
      kernel.close();
    }
    const ignored = logLines('ignored a sign-in header that did not come through the front door').at(-1);
    assert.equal(ignored?.peer, '127.0.0.1');
    assert.equal((await hub.users.get('admin'))?.source, 'local');
  });
});

describe('the front door at start-up', function () {
  this.timeout(60_000);

  it("stops a start whose socket group doesn't exist, naming the key", async () => {
    const door = frontDoorPath();
    try {
      await assert.rejects(startTestHub('front-door-bad-group', { frontDoorSocket: door.socket, frontDoorSocketGroup: 'no-such-group-here' }), /frontDoorSocketGroup no-such-group-here: no such group/);
      assert.ok(!fs.existsSync(door.socket));
    } finally {
      door.remove();
    }
  });

  it('replaces the stale socket a crashed hub left behind, and removes its own on close', async () => {
    const door = frontDoorPath();
    try {
      // A socket file nobody listens on any more, as after a crash (bound, never unlinked).
      execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', door.socket]);
      assert.ok(fs.lstatSync(door.socket).isSocket());
      const hub = await startTestHub('front-door-stale', { frontDoorSocket: door.socket });
      try {
        const r = await send({ socketPath: door.socket }, 'GET', '/hub/health', {});
        assert.equal(r.status, 200);
      } finally {
        await hub.close();
      }
      assert.ok(!fs.existsSync(door.socket), 'socket removed on close');
    } finally {
      door.remove();
    }
  });
});
