import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser } from '../helpers/browser.js';
import { HubClient } from '../helpers/client.js';
import { SAME_SITE, tryVisitInLab, type LabFileSeen } from '../helpers/lab-visit.js';
import { notebookVenv } from '../helpers/venv.js';
import { freePort } from '../helpers/ports.js';
import { startTryHub, waitForReadyPool } from '../helpers/try.js';

const { hubHost: HUB_HOST, contentDomain: CONTENT_DOMAIN, resolverFlag: RESOLVER } = SAME_SITE;

/** JupyterLab's files of a visit that came from the hub's build (`/hub/static/lab/`). */
async function visitFiles(context: BrowserContext, hubUrl: string, label: string, problems: string[]): Promise<{ origin: string; files: LabFileSeen[] }> {
  const { origin, files } = await tryVisitInLab(context, hubUrl, (p) => problems.push(`${label}: ${p}`));
  return { origin, files: files.filter((f) => new URL(f.url).pathname.startsWith('/hub/static/lab/')) };
}

/**
 * Issue 14, "static assets at the floor": JupyterLab's build (the main bundle, its chunks and
 * fonts) has one URL on the hub for every server, so a browser that opened one workspace has it
 * cached for the next. Shown for the case it matters most for: a "Try it" visitor comes back,
 * gets a new workspace on a new origin, and downloads none of JupyterLab again.
 */
describe('JupyterLab\'s files served once by the hub, cached across workspaces', function () {
  this.timeout(400_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let hubUrl = '';
  const problems: string[] = [];

  before(async () => {
    const port = await freePort();
    hubUrl = `http://${HUB_HOST}:${port}`;
    hub = await startTryHub('lab-static', { port, publicUrl: hubUrl, userContentDomain: CONTENT_DOMAIN, poolSize: 1, tryMaxServers: 2 });
    browser = await launchBrowser([RESOLVER]);
    // One browser profile for both visits; no request interception, which would turn the cache off.
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await waitForReadyPool(hub, 1);
  });

  after(async () => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  it('a visitor who comes back gets a new workspace whose JupyterLab loads its files from the browser cache, not the network', async () => {
    assert.ok(hub);
    assert.ok(context);
    const first = await visitFiles(context, hubUrl, 'first', problems);
    const second = await visitFiles(context, hubUrl, 'second', problems);
    assert.deepEqual(problems, []);

    assert.match(first.origin, new RegExp(`^http://-7e[^.]+\\.${CONTENT_DOMAIN.replace(/\./g, '\\.')}:\\d+$`), 'the workspace is on the visitor\'s own origin');
    assert.notEqual(second.origin, first.origin, 'each visit is a workspace of its own, on its own origin');

    // The first visit fetched JupyterLab from the hub's origin (the same build for every server), compressed.
    const main = first.files.find((f) => /\/main\.[0-9a-f]+\.js(\?|$)/.test(f.url));
    assert.ok(main, `JupyterLab's main bundle came from ${hubUrl}/hub/static/lab/ (saw ${first.files.length} files there)`);
    assert.ok(main.url.startsWith(`${hubUrl}/hub/static/lab/`), main.url);
    assert.equal(main.status, 200);
    // Chromium offers brotli over https only; here (http) it takes gzip.
    assert.ok(main.encoding === 'br' || main.encoding === 'gzip', `compressed (${main.encoding})`);
    assert.ok(first.files.length >= 10, `the bundle and its chunks (${first.files.length})`);
    const firstBytes = first.files.reduce((n, f) => n + f.bodyBytes, 0);
    assert.ok(firstBytes > 500_000, `the first visit downloaded JupyterLab (${firstBytes} bytes)`);

    // The second, on another origin, asked for the same URLs and got them from the cache.
    const firstUrls = new Set(first.files.map((f) => f.url));
    const again = second.files.filter((f) => firstUrls.has(f.url));
    assert.ok(again.some((f) => f.url === main.url), 'the second workspace loads the same main bundle URL');
    assert.ok(again.length >= first.files.length * 0.9, `most files are the same (${again.length} of ${first.files.length})`);
    const overTheWire = again.filter((f) => f.bodyBytes > 0);
    assert.deepEqual(overTheWire.map((f) => f.url), [], 'none of JupyterLab\'s files came over the network again');
    console.log(`      first visit: ${first.files.length} JupyterLab files, ${Math.round(firstBytes / 1024)} KiB over the wire; second visit (new origin): ${again.length} from the cache, 0 KiB`);
  });

  it('answers only the build\'s own files: another build, a missing file or a path out of the folder get a clear 404, and no cookie is set', async () => {
    assert.ok(hub);
    const client = new HubClient(hub.url);
    const index = await client.get(`/hub/static/lab/`);
    assert.equal(index.status, 404);
    // The build is named by its main bundle's hash, as the environment's JupyterLab page names it.
    const build = /\bmain\.([0-9a-f]+)\.js/.exec(fs.readFileSync(path.join(notebookVenv(), 'share', 'jupyter', 'lab', 'static', 'index.html'), 'utf8'))?.[1];
    assert.ok(build);
    const ok = await client.get(`/hub/static/lab/${build}/main.${build}.js`, { 'accept-encoding': 'gzip' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(ok.headers.get('content-encoding'), 'gzip');
    assert.equal(ok.headers.get('set-cookie'), null);
    for (const bad of [`/hub/static/lab/0123456789abcdef/main.${build}.js`, `/hub/static/lab/${build}/no-such.js`, `/hub/static/lab/${build}/index.html`, `/hub/static/lab/${build}/..%2F..%2Fbin%2Fjupyter`, `/hub/static/lab/${build}/../../../etc/passwd`, `/hub/static/lab/${build}/a/b.js`]) {
      const reply = await client.get(bad);
      assert.equal(reply.status, 404, bad);
      assert.match(reply.body, /JupyterLab|no such page/i, bad);
      assert.equal(reply.headers.get('cache-control'), 'no-store', bad);
    }
  });
});
