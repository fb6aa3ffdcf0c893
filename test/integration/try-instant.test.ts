import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser } from '../helpers/browser.js';
import { startTryHub, waitForReadyPool } from '../helpers/try.js';

const SAMPLES = path.resolve(__dirname, '..', '..', 'course-notebooks', 'samples');
const OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');
const BOKEH = ['bokeh_heatmap', 'bokeh_scatter_hover', 'bokeh_timeseries', 'bokeh_binary_tree'];
const FOLIUM = ['folium_markers', 'folium_choropleth', 'folium_voronoi', 'bokeh_heatmap'];
const SLOW_MS = 120_000;

/**
 * A browser context that can reach nothing but this machine: every request to a host other than
 * 127.0.0.1 or *.localhost is aborted and recorded (issue 14: "Chromium with no outside network").
 */
async function offlineContext(browser: Browser): Promise<{ context: BrowserContext; blocked: string[]; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const blocked: string[] = [];
  const problems: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    const local = url.protocol === 'data:' || url.protocol === 'blob:' || url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname.endsWith('.localhost');
    if (local) return route.continue();
    blocked.push(url.href);
    return route.abort();
  });
  context.on('weberror', (e) => problems.push(`uncaught: ${e.error().message}`));
  context.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return { context, blocked, problems };
}

/** The rendered sample in the workspace page's frame. */
function sampleFrame(page: Page): Frame {
  const frame = page.frame({ url: /\/oerhub\/samples\// });
  assert.ok(frame, `no rendered sample frame in ${page.frames().map((f) => f.url()).join(', ')}`);
  return frame;
}

/** Click "Try it" on the hub's page; resolves on the workspace page with the rendered index drawn. */
async function clickTryIt(page: Page, hubUrl: string): Promise<void> {
  await page.goto(`${hubUrl}/hub/try`);
  await page.getByRole('button', { name: 'Try it' }).click();
  await page.waitForURL(/\/oerhub\/workspace$/, { timeout: SLOW_MS });
  await page.frameLocator('#try-frame').locator('article.nb').waitFor({ timeout: SLOW_MS });
}

/** Wait until every Bokeh placeholder of the frame holds a drawn canvas (BokehJS renders in shadow roots). */
async function bokehCanvases(frame: Frame): Promise<number> {
  // A string, evaluated by the debugger protocol: the page's CSP refuses eval (waitForFunction),
  // and the test's TypeScript loader would add helpers to a function that the page lacks.
  const check = `(() => {
    const slots = [...document.querySelectorAll('.nb-bokeh')];
    return slots.length > 0 && slots.every((el) => {
      const stack = [el];
      while (stack.length) {
        const n = stack.pop();
        if (n instanceof HTMLCanvasElement && n.width > 0) return true;
        if (n instanceof Element && n.shadowRoot) stack.push(n.shadowRoot);
        stack.push(...Array.from(n.children));
      }
      return false;
    });
  })()`;
  const until = Date.now() + SLOW_MS;
  while (!(await frame.evaluate(check))) {
    if (Date.now() > until) throw new Error(`no Bokeh canvas drawn in ${frame.url()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return frame.evaluate(() => document.querySelectorAll('.nb-bokeh').length);
}

describe('"Try it" feels instant: rendered samples first, the warm kernel behind them (issue 14)', function () {
  this.timeout(600_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;

  before(async () => {
    hub = await startTryHub('try-instant', { poolSize: 1, tryMaxServers: 3 });
    browser = await launchBrowser();
    await waitForReadyPool(hub, 1);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await hub?.close();
  });

  it('a visitor lands on the rendered index on their own origin, every sample renders interactive offline, and a cell runs in the warm kernel', async () => {
    assert.ok(hub && browser);
    const { context, blocked, problems } = await offlineContext(browser);
    const page = await context.newPage();
    try {
      await clickTryIt(page, hub.url);
      const frame = sampleFrame(page);
      const user = new URL(frame.url());
      // The visitor's own origin, never the hub's.
      assert.notEqual(user.origin, new URL(hub.url).origin);
      assert.match(user.hostname, /\.localhost$/);
      assert.match(user.pathname, /^\/user\/[^/]+\/oerhub\/samples\/index$/);
      assert.match(await frame.locator('article.nb').innerText(), /Welcome! Sample notebooks/);

      // The warm kernel: the page finds the index's running kernel and runs the first cell there.
      const run = frame.locator('.nb-code[data-cell="0"] button.nb-run');
      await run.waitFor({ timeout: SLOW_MS });
      await run.click();
      const live = frame.locator('.nb-code[data-cell="0"] .nb-outputs[data-live="true"]');
      await live.waitFor({ timeout: SLOW_MS });
      assert.match(await live.innerText(), /Bokeh \d+\.\d+\.\d+ \| Folium \d/);

      // Every sample: Bokeh plots drawn by the hub's BokehJS, maps drawn by Leaflet in their sandboxed frames.
      const base = user.pathname.replace(/index$/, '');
      for (const stem of new Set([...BOKEH, ...FOLIUM])) {
        await page.frameLocator('#try-frame').locator(`a[href="./${stem}"]`).first().click().catch(async () => {
          await frame.goto(`${user.origin}${base}${stem}`);
        });
        await page.waitForFunction((s) => (document.getElementById('try-frame') as HTMLIFrameElement).contentWindow?.location.pathname.endsWith(`/${s}`), stem, { timeout: SLOW_MS });
        const f = sampleFrame(page);
        await f.locator('article.nb').waitFor();
        if (BOKEH.includes(stem)) assert.ok((await bokehCanvases(f)) >= 1, `${stem}: no Bokeh plot`);
        if (FOLIUM.includes(stem)) {
          const maps = f.locator('iframe.nb-frame');
          assert.ok((await maps.count()) >= 1, `${stem}: no map frame`);
          assert.equal(await maps.first().getAttribute('sandbox'), 'allow-scripts');
          const mapFrame = f.childFrames()[0];
          assert.ok(mapFrame, `${stem}: the map frame did not load`);
          await mapFrame.locator('.leaflet-container path.leaflet-interactive, .leaflet-container .leaflet-marker-icon').first().waitFor({ timeout: SLOW_MS });
          // Opaque origin: the map's scripts can't reach the page or its cookies.
          assert.equal(await mapFrame.evaluate(() => window.origin), 'null');
        }
        // Back to the index through the sample's own link.
        await f.locator('a[href="./index"]').first().click();
        await page.waitForFunction(() => (document.getElementById('try-frame') as HTMLIFrameElement).contentWindow?.location.pathname.endsWith('/index'), undefined, { timeout: SLOW_MS });
      }
      assert.deepEqual(blocked, [], 'requests to third parties');
      assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), []);

      // "Edit and run": one click from the rendered view into the live notebook in JupyterLab.
      await sampleFrame(page).getByRole('link', { name: 'Edit and run' }).click();
      await page.waitForFunction(() => /\/lab\/tree\/samples\/index\.ipynb$/.test((document.getElementById('try-frame') as HTMLIFrameElement).contentWindow?.location.pathname ?? ''), undefined, { timeout: SLOW_MS });
      await page.frameLocator('#try-frame').locator('.jp-NotebookPanel').first().waitFor({ timeout: SLOW_MS });
    } catch (err) {
      fs.mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT, `try-instant-failure-${Date.now()}.png`), fullPage: true }).catch(() => undefined);
      console.error(problems.join('\n'));
      throw err;
    } finally {
      await context.close();
    }
  });
});

describe('a rendered notebook runs none of its own scripts (issue 14)', function () {
  this.timeout(600_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let dir = '';

  before(async () => {
    // Samples whose markdown and outputs carry scripts, handlers and javascript: links.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-try-hostile-'));
    fs.cpSync(SAMPLES, dir, { recursive: true });
    const nb = JSON.parse(fs.readFileSync(path.join(dir, 'index.ipynb'), 'utf8')) as { cells: unknown[] };
    nb.cells.push(
      { cell_type: 'markdown', id: 'evil-md', metadata: {}, source: ['# Evil\n', '<script>window.top.PWNED_MD = 1</script>\n', '<img src="x" onerror="window.top.PWNED_IMG = 1">\n', '[click](javascript:window.top.PWNED_LINK=1) <a href="javascript:void(window.top.PWNED_A=1)" id="evil-link">a</a>'] },
      {
        cell_type: 'code',
        id: 'evil-code',
        metadata: {},
        execution_count: null,
        outputs: [],
        source: [
          'from IPython.display import HTML, Javascript, display\n',
          'display(HTML(\'<b id="evil-html">bold</b><script>window.top.PWNED_HTML = 1</script><svg onload="window.top.PWNED_SVG=1"></svg><iframe src="/hub/home"></iframe>\'))\n',
          'display(Javascript("window.top.PWNED_JS = 1"))',
        ],
      },
    );
    fs.writeFileSync(path.join(dir, 'index.ipynb'), JSON.stringify(nb));
    hub = await startTryHub('try-hostile', { poolSize: 1, tryMaxServers: 2, trySamplesDir: dir });
    browser = await launchBrowser();
    await waitForReadyPool(hub, 1);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await hub?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("shows the outputs' text, and no script of the notebook runs, on the hub's origin or the visitor's", async () => {
    assert.ok(hub && browser);
    const { context } = await offlineContext(browser);
    const page = await context.newPage();
    const violations: string[] = [];
    context.on('console', (m) => {
      if (/Content Security Policy/.test(m.text())) violations.push(m.text());
    });
    try {
      await clickTryIt(page, hub.url);
      const frame = sampleFrame(page);
      await frame.locator('b:has-text("bold")').waitFor();
      const flags = ['PWNED_MD', 'PWNED_IMG', 'PWNED_LINK', 'PWNED_A', 'PWNED_HTML', 'PWNED_SVG', 'PWNED_JS'];
      await page.waitForTimeout(500);
      const set = await page.evaluate((names) => names.filter((n) => (window as unknown as Record<string, unknown>)[n] !== undefined), flags);
      assert.deepEqual(set, []);
      const inFrame = await frame.evaluate((names) => names.filter((n) => (window as unknown as Record<string, unknown>)[n] !== undefined), flags);
      assert.deepEqual(inFrame, []);
      // The notebook's code is shown as text; no element of the page carries its scripts.
      const inPage = await frame.evaluate(`(() => ({
        scripts: [...document.scripts].filter((s) => !s.src && s.type !== 'application/json').length,
        handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
        jsLinks: [...document.querySelectorAll('a[href]')].filter((a) => /^javascript:/i.test(a.getAttribute('href'))).length,
      }))()`);
      assert.deepEqual(inPage, { scripts: 0, handlers: 0, jsLinks: 0 });
      assert.match(await frame.locator('article.nb').innerText(), /PWNED_HTML/, 'the code is shown as text');
      assert.equal(await frame.locator('iframe[src]').count(), 0, 'a frame of another page');
      // The hub's origin never serves the rendered notebook.
      const onHub = await page.request.get(`${hub.url}${new URL(frame.url()).pathname}`, { maxRedirects: 0 });
      assert.notEqual(onHub.status(), 200);
    } finally {
      await context.close();
    }
  });
});
