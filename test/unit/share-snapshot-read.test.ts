import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JupyterFolder, SyncFailed } from '../../server/courses/index.js';

/**
 * A share's snapshot is read from the owner's server, which runs the student's code: it may
 * be a program of theirs answering in Jupyter's place. A real HTTP server plays that part
 * here, answering without a length (chunked), far past the cap, for as long as it is read.
 */
describe('sharing: reading a snapshot from a hostile server stops at the cap', function () {
  this.timeout(30_000);
  let server: http.Server;
  let sent = 0;
  let closedEarly = false;
  const MB = 1024 * 1024;

  before(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // no content-length: chunked
      res.write('{"content":"');
      const chunk = Buffer.alloc(256 * 1024, 'A');
      const pump = (): void => {
        while (sent < 200 * MB) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('"}');
      };
      res.on('close', () => (closedEarly = !res.writableFinished));
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('refuses as "larger than" once the answer passes the cap, without reading the rest', async () => {
    const port = (server.address() as AddressInfo).port;
    const folder = new JupyterFolder({ user: 'shv-x', escapedName: 'shv-x', target: new URL(`http://127.0.0.1:${port}`), authorization: 'token t' }, 'shv101', AbortSignal.timeout(20_000));
    await assert.rejects(folder.read('big.ipynb', 1 * MB), (err: unknown) => err instanceof SyncFailed && /larger than/.test(err.message));
    // The hub hung up long before the server's 200 MB: it never held them.
    for (let i = 0; i < 50 && !closedEarly; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(closedEarly, 'the connection was closed before the whole answer');
    assert.ok(sent < 100 * MB, `the server got to send ${Math.round(sent / MB)} MB`);
  });
});
