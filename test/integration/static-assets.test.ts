import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Hub } from '../../server/index.js';
import { IMMUTABLE } from '../../server/proxy/static-assets.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { notebookVenv } from '../helpers/venv.js';

/**
 * Issue 14, "static assets at the floor": JupyterLab's content-hashed files come through the
 * proxy cached for a year and compressed; everything else as the server sent it. Real hub,
 * real Jupyter (local spawner), the bytes compared with what Jupyter itself sends.
 */

/** The same file straight from the notebook server, past the proxy (identity encoding). */
function fromServer(hub: Hub, escapedName: string, urlPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const route = hub.routes.get(escapedName);
  assert.ok(route, 'the server is routed');
  return new Promise((resolve, reject) => {
    const req = http.get({ host: route.target.hostname, port: route.target.port, path: urlPath, headers: { authorization: route.authorization, 'accept-encoding': 'identity' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('JupyterLab\'s hashed static files: cached for a year and compressed by the proxy (issue 14)', function () {
  this.timeout(180_000);
  const user = 'tr2-static';
  // escapeName's form, as in the server's paths.
  let name = '';
  let hub: Hub | undefined;
  let client: HubClient | undefined;
  let scripts: string[] = [];

  before(async () => {
    // The proxy's part: what Docker servers (and labStaticFromHub=false) send through it. With the
    // local spawner's default, the hub serves JupyterLab's build itself (lab-static-browser.test.ts).
    hub = await startTestHub('tr2-static', { labStaticFromHub: false });
    await createUsers(hub, { [user]: 'tr2-static-password' });
    client = await signInAndStart(hub, user, 'tr2-static-password');
    name = (await hub.users.get(user))!.escapedName;
    const lab = await client.follow(`/user/${name}/lab`);
    assert.equal(lab.status, 200, `${lab.url}: ${lab.body.slice(0, 300)}`);
    // The scripts JupyterLab's page loads: its hashed bundle, versioned with ?v=.
    scripts = [...lab.body.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]!).filter((src) => src.includes('/static/'));
    assert.ok(scripts.length > 0, `no static script on JupyterLab's page`);
  });

  after(async () => {
    await hub?.close();
  });

  it('a hashed script comes brotli- or gzip-compressed as the browser accepts, immutable, and decompresses to the server\'s bytes', async () => {
    assert.ok(hub && client);
    const src = new URL(scripts[0]!, `http://x/user/${name}/lab`);
    const urlPath = src.pathname + src.search;
    const original = await fromServer(hub, name, urlPath);
    assert.equal(original.status, 200);
    assert.equal(original.headers['content-encoding'], undefined, 'Jupyter sends it uncompressed');
    console.log(`      ${urlPath}: Jupyter's Cache-Control ${original.headers['cache-control'] ?? '(none)'}, ${original.body.length} bytes`);
    assert.ok(original.body.length > 10_000, `a real bundle (${original.body.length} bytes)`);

    const br = await client.get(urlPath, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.status, 200);
    assert.equal(br.headers.get('cache-control'), IMMUTABLE);
    assert.equal(br.headers.get('content-encoding'), 'br');
    assert.match(br.headers.get('vary') ?? '', /accept-encoding/i);
    assert.equal(Number(br.headers.get('content-length')), br.raw.length);
    assert.ok(br.raw.length < original.body.length / 2, `compressed ${original.body.length} → ${br.raw.length} bytes`);
    assert.ok(zlib.brotliDecompressSync(br.raw).equals(original.body), 'the same bytes after brotli');

    const gz = await client.get(urlPath, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers.get('content-encoding'), 'gzip');
    assert.equal(gz.headers.get('cache-control'), IMMUTABLE);
    assert.ok(zlib.gunzipSync(gz.raw).equals(original.body), 'the same bytes after gzip');

    // A browser that takes no compression (or refuses it) gets the bytes as they are, still cached.
    for (const accept of ['identity', 'br;q=0, gzip;q=0']) {
      const plain = await client.get(urlPath, { 'accept-encoding': accept });
      assert.equal(plain.headers.get('content-encoding'), null, accept);
      assert.equal(plain.headers.get('cache-control'), IMMUTABLE);
      assert.ok(plain.raw.equals(original.body), accept);
    }
  });

  it('a hashed font without ?v= is cached for a year too, and not compressed again (woff is compressed already)', async () => {
    assert.ok(hub && client);
    const font = fs.readdirSync(path.join(notebookVenv(), 'share', 'jupyter', 'lab', 'static')).find((f) => /^[0-9a-f]{16}\.woff$/.test(f));
    assert.ok(font, 'JupyterLab ships hashed fonts');
    const url = `/user/${name}/static/lab/${font}`;
    const original = await fromServer(hub, name, url);
    assert.equal(original.status, 200);
    console.log(`      ${font}: Jupyter's Cache-Control ${original.headers['cache-control'] ?? '(none)'}`);
    const got = await client.get(url, { 'accept-encoding': 'br, gzip' });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('cache-control'), IMMUTABLE);
    assert.equal(got.headers.get('content-encoding'), null);
    assert.ok(got.raw.equals(original.body));
  });

  it('every other answer is left as the server sent it: pages, API, a missing file, and no file without the session', async () => {
    assert.ok(hub && client);
    const page = await client.get(`/user/${name}/lab`, { 'accept-encoding': 'br, gzip' });
    assert.equal(page.status, 200);
    assert.notEqual(page.headers.get('cache-control'), IMMUTABLE);
    assert.equal(page.headers.get('content-encoding'), null);
    const api = await client.get(`/user/${name}/api/status`, { 'accept-encoding': 'br, gzip', accept: 'application/json' });
    assert.equal(api.status, 200);
    assert.notEqual(api.headers.get('cache-control'), IMMUTABLE);
    assert.equal(api.headers.get('content-encoding'), null);
    // A missing hashed file: the server's 404, not cached for a year.
    const missing = await client.get(`/user/${name}/static/lab/9999.0123456789abcdef.js`, { 'accept-encoding': 'br' });
    assert.equal(missing.status, 404);
    assert.notEqual(missing.headers.get('cache-control'), IMMUTABLE);
    // Without the session: the proxy's answer as for any page of the server, no file, no cache header.
    const stranger = await new HubClient(hub.url).get(new URL(scripts[0]!, `http://x/user/${name}/lab`).pathname, { 'accept-encoding': 'br' });
    assert.notEqual(stranger.status, 200);
    assert.notEqual(stranger.headers.get('cache-control'), IMMUTABLE);
  });
});
