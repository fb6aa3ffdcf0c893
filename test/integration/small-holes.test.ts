import assert from 'node:assert/strict';
import net from 'node:net';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, startTestHub } from '../helpers/hub.js';

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
    hub = await startTestHub('small-holes');
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
      for (const headers of [{}, { 'x-forwarded-proto': 'http' }, { 'x-forwarded-proto': 'https' }]) {
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
});
