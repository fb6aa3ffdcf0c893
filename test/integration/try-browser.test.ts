import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser, recordRequests, type RequestLog } from '../helpers/browser.js';
import { startTryHub, waitForReadyPool } from '../helpers/try.js';

const OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');
// JupyterLab, a kernel, BokehJS and Leaflet on a 2-core machine shared with other tests.
const SLOW_MS = 150_000;

/**
 * Issue 5, item 6: in Chromium, with no outside network, a visitor clicks "Try it" on the
 * sign-in page, opens the heatmap sample, runs all cells, and sees the Bokeh plot (its canvas)
 * and the Folium map (its Leaflet container with the city markers and country shapes drawn).
 * The workspace page is served on the visitor's own origin (issue 9), so JupyterLab's frame is
 * same-origin and needs no third-party cookie. Every request the browser makes goes to the hub
 * on 127.0.0.1 or to that *.localhost origin. Download gives a zip; End session ends it.
 */
describe('"Try it" in a real browser', function () {
  this.timeout(400_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let requests: RequestLog | undefined;
  const problems: string[] = [];

  before(async () => {
    hub = await startTryHub('try-browser', { poolSize: 1, tryMaxServers: 2 });
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    requests = recordRequests(page);
    page.on('pageerror', (e) => problems.push(`uncaught error on ${page?.url()}: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText ?? ''}`));
    await waitForReadyPool(hub, 1);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !page) return;
    fs.mkdirSync(OUTPUT, { recursive: true });
    const file = path.join(OUTPUT, `try-browser-failure-${Date.now()}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    console.error(`failing page: ${page.url()}\nscreenshot: ${file}\n${problems.join('\n')}`);
  });

  after(async () => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  it('a visitor clicks "Try it", works in JupyterLab on their own origin, sees the Bokeh plot and the Folium map served by this machine, downloads a zip and ends the session', async () => {
    assert.ok(hub && page && requests);
    const p = page;
    await p.goto(`${hub.url}/hub/login`);
    await p.getByRole('link', { name: 'Try it without an account' }).click();
    await p.waitForURL(`${hub.url}/hub/try`);
    await p.getByRole('button', { name: 'Try it' }).click();
    // Handed over to the visitor's own origin, which serves the workspace page.
    await p.waitForURL(/\/oerhub\/workspace$/);
    const here = new URL(p.url());
    const escapedName = /^\/user\/([^/]+)\/oerhub\/workspace$/.exec(here.pathname)?.[1] ?? '';
    assert.match(escapedName, /^-7e/, 'an anonymous visitor');
    const userOrigin = `http://${escapedName}.localhost:${new URL(hub.url).port}`;
    assert.equal(here.origin, userOrigin);
    // The bar around JupyterLab: the time left and the download.
    await p.locator('#try-countdown').filter({ hasText: /^\d+:\d\d(:\d\d)?$/ }).waitFor({ timeout: 20_000 });
    assert.equal(await p.getByRole('link', { name: 'Download my work' }).getAttribute('href'), `/user/${escapedName}/oerhub/download`);

    const lab = p.frameLocator('#try-frame');
    // The rendered index comes first (issue 14); "Edit and run" opens it in JupyterLab.
    await lab.locator('article.nb', { hasText: 'This is a temporary workspace' }).waitFor({ timeout: SLOW_MS });
    await lab.getByRole('link', { name: 'Edit and run' }).click();
    await lab.locator('.jp-LabShell').waitFor({ timeout: SLOW_MS });
    // Same-origin: the page can see into its frame (a cross-origin frame would throw here).
    const frameOrigin = await p.locator('#try-frame').evaluate((f) => (f as HTMLIFrameElement).contentWindow?.location.origin);
    assert.equal(frameOrigin, userOrigin);
    // Landed in the sample index, which says the workspace is temporary.
    await lab.locator('.jp-NotebookPanel:visible .jp-RenderedMarkdown', { hasText: 'This is a temporary workspace' }).first().waitFor({ timeout: SLOW_MS });

    await lab.locator('.jp-DirListing-item', { hasText: 'bokeh_heatmap.ipynb' }).dblclick();
    const notebook = lab.locator('.jp-NotebookPanel:visible');
    await notebook.locator('.jp-RenderedMarkdown', { hasText: 'A heatmap: temperatures by city and month' }).first().waitFor({ timeout: SLOW_MS });
    await lab.locator('#jp-main-statusbar').getByText('Python 3 (ipykernel) | Idle').waitFor({ timeout: SLOW_MS });
    await lab.locator('.lm-MenuBar-itemLabel', { hasText: /^Run$/ }).click();
    await lab.locator('.lm-Menu-itemLabel', { hasText: /^Run All Cells$/ }).click();

    // Bokeh: BokehJS (from the hub, issue 14) draws the heatmap on a canvas.
    const canvas = notebook.locator('.bk-Canvas canvas, .jp-OutputArea-output canvas').first();
    await canvas.waitFor({ timeout: SLOW_MS });
    const size = await canvas.evaluate((c) => ({ w: (c as HTMLCanvasElement).width, h: (c as HTMLCanvasElement).height }));
    assert.ok(size.w >= 300 && size.h >= 200, `canvas ${size.w}x${size.h}`);

    // Folium: the map's iframe, its Leaflet container and the shapes drawn on it.
    const mapFrame = notebook.locator('.jp-OutputArea-output iframe').last();
    await mapFrame.waitFor({ timeout: SLOW_MS });
    await mapFrame.scrollIntoViewIfNeeded();
    const map = notebook.frameLocator('.jp-OutputArea-output iframe').last();
    await map.locator('.leaflet-container').waitFor({ timeout: SLOW_MS });
    await map.locator('path.leaflet-interactive').first().waitFor({ timeout: SLOW_MS });
    const shapes = await map.locator('path.leaflet-interactive').count();
    assert.ok(shapes >= 10, `country outlines and city markers drawn (${shapes} shapes)`);
    // The README shows this one, once `npm run screenshots` copies it there.
    fs.mkdirSync(path.join(OUTPUT, 'screenshots'), { recursive: true });
    await p.screenshot({ path: path.join(OUTPUT, 'screenshots', 'try-workspace.png') });

    const origin = new URL(hub.url).origin;
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(requests.foreign([origin, userOrigin]), [], 'every request went to the hub or the visitor\'s origin on it');
    assert.ok(requests.urls.some((u) => /^http:\/\/[^/]+\/hub\/static\/vendor\/leaflet\//.test(u)), 'Leaflet came from the hub');

    // Download my work: a zip with the samples in it.
    const [download] = await Promise.all([p.waitForEvent('download'), p.getByRole('link', { name: 'Download my work' }).click()]);
    assert.match(download.suggestedFilename(), /^oerhub-workspace-[\d-]+\.zip$/);
    fs.mkdirSync(OUTPUT, { recursive: true });
    const zipFile = path.join(OUTPUT, 'try-browser-download.zip');
    await download.saveAs(zipFile);
    const zip = fs.readFileSync(zipFile);
    assert.equal(zip.subarray(0, 4).toString('hex'), '504b0304', 'a zip file');
    assert.ok(zip.includes(Buffer.from('samples/bokeh_heatmap.ipynb')), 'the zip has the heatmap sample');

    // End session: the hub's "session ended" page, and the server is gone.
    await p.getByRole('button', { name: 'End session' }).click();
    await p.waitForURL(`${origin}/hub/try/ended`);
    await p.getByText('Your session ended').first().waitFor();
    assert.equal(hub.routes.get(escapedName), undefined, 'the server is gone');
    assert.deepEqual(requests.foreign([origin, userOrigin]), [], 'still nothing left the machine');
  });
});
