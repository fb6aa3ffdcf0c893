import assert from 'node:assert/strict';
import net from 'node:net';
import type { Hub } from '../../server/index.js';
import { startTestHub } from '../helpers/hub.js';

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
});
