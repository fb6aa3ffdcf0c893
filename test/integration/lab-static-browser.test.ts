import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser } from '../helpers/browser.js';
import { HubClient } from '../helpers/client.js';
import { notebookVenv } from '../helpers/venv.js';
import { freePort } from '../helpers/ports.js';
import { startTryHub, waitForReadyPool } from '../helpers/try.js';

const OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');
const SLOW_MS = 150_000;
// A hub as a university runs it: its own host and a domain for user servers under one site
// (example.edu), so Chromium keeps one HTTP cache for every workspace of the site, as it does
// for a real deployment. Chromium maps these names to 127.0.0.1 and resolves nothing else.
const HUB_HOST = 'hub.example.edu';
const CONTENT_DOMAIN = 'apps.example.edu';
const RESOLVER = `--host-resolver-rules=MAP ${HUB_HOST} 127.0.0.1, MAP *.${CONTENT_DOMAIN} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`;

/** One JupyterLab file the visit asked for: where from, and what came over the wire. */
interface LabFileSeen {
  url: string;
  status: number;
  /** Bytes of body received over the network; 0 when the browser's cache answered. */
  bodyBytes: number;
  encoding: string | undefined;
}

interface Visit {
  origin: string;
  files: LabFileSeen[];
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

  /** Click "Try it", open the index in JupyterLab ("Edit and run"), then End session. */
  async function visit(label: string): Promise<Visit> {
    assert.ok(context);
    const page: Page = await context.newPage();
    // Until End session: after it, JupyterLab's kernel connection dies with the server, as it should.
    let ending = false;
    page.on('pageerror', (e) => {
      if (!ending) problems.push(`${label}: uncaught error on ${page.url()}: ${e.message}`);
    });
    page.on('requestfailed', (r) => {
      if (!ending) problems.push(`${label}: request failed: ${r.url()}: ${r.failure()?.errorText ?? ''}`);
    });
    const pending: Promise<LabFileSeen>[] = [];
    page.on('response', (r: Response) => {
      if (!new URL(r.url()).pathname.startsWith('/hub/static/lab/')) return;
      pending.push(r.request().sizes().then((s) => ({ url: r.url(), status: r.status(), bodyBytes: Math.max(0, s.responseBodySize), encoding: r.headers()['content-encoding'] })));
    });
    try {
      await page.goto(`${hubUrl}/hub/try`);
      await page.getByRole('button', { name: 'Try it' }).click();
      await page.waitForURL(/\/oerhub\/workspace$/, { timeout: SLOW_MS });
      const origin = new URL(page.url()).origin;
      const lab = page.frameLocator('#try-frame');
      await lab.locator('article.nb', { hasText: 'This is a temporary workspace' }).waitFor({ timeout: SLOW_MS });
      await lab.getByRole('link', { name: 'Edit and run' }).click();
      await lab.locator('.jp-NotebookPanel:visible .jp-RenderedMarkdown', { hasText: 'This is a temporary workspace' }).first().waitFor({ timeout: SLOW_MS });
      await lab.locator('#jp-main-statusbar').getByText('Python 3 (ipykernel) | Idle').waitFor({ timeout: SLOW_MS });
      const files = await Promise.all(pending);
      if (label === 'second') {
        fs.mkdirSync(path.join(OUTPUT, 'screenshots'), { recursive: true });
        await page.screenshot({ path: path.join(OUTPUT, 'lab-static-second-visit.png') });
      }
      ending = true;
      await page.getByRole('button', { name: 'End session' }).click();
      await page.waitForURL(`${hubUrl}/hub/try/ended`);
      return { origin, files };
    } finally {
      await page.close();
    }
  }

  it('a visitor who comes back gets a new workspace whose JupyterLab loads its files from the browser cache, not the network', async () => {
    assert.ok(hub);
    const first = await visit('first');
    const second = await visit('second');
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
