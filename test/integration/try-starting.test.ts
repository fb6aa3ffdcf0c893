import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser } from '../helpers/browser.js';
import { HubClient } from '../helpers/client.js';
import { startTryHub, VisitorClient, waitFor } from '../helpers/try.js';
import { PREVIEW_NAME } from '../../server/proxy/try-workspace.js';

const OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');
const SLOW_MS = 120_000;

/**
 * Issue 14: a visitor beyond the warm pool (none ready, their own server started on demand) sees
 * the rendered samples at once, with a banner saying their server is starting, and the same page
 * goes live (its cells run in the kernel) once the server is up, without a progress page.
 */
describe('"Try it" with the warm pool exhausted: the rendered samples while the server starts (issue 14)', function () {
  this.timeout(600_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;

  before(async () => {
    // No warm server at all: every visitor's server starts on demand.
    hub = await startTryHub('tr2-starting', { poolSize: 0, tryMaxServers: 2 });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await hub?.close();
  });

  it('a visitor sees the rendered index with "your own server is starting", then the live kernel on the same page', async () => {
    assert.ok(hub && browser);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const topLevel: string[] = [];
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) topLevel.push(f.url());
    });
    try {
      await page.goto(`${hub.url}/hub/try`);
      await page.getByRole('button', { name: 'Try it' }).click();
      await page.waitForURL(/\/oerhub\/workspace$/, { timeout: SLOW_MS });
      const frame = page.frameLocator('#try-frame');
      await frame.locator('article.nb').waitFor({ timeout: SLOW_MS });
      // Rendered content, on the visitor's own origin, while their server is still starting.
      const banner = page.locator('#try-starting');
      assert.equal(await banner.isVisible(), true, 'the "server is starting" banner shows with the rendered sample');
      assert.match(await banner.innerText(), /Your own server is starting/);
      assert.match(await frame.locator('article.nb').innerText(), /Welcome! Sample notebooks/);
      const status = await hub.pool.status();
      assert.equal(status.inUse, 1);
      assert.equal(status.ready, 0, 'no warm server was there to take');
      const workspace = new URL(page.url());
      assert.notEqual(workspace.origin, new URL(hub.url).origin);
      assert.equal(topLevel.some((u) => u.includes('/hub/spawn-pending/')), false, `no progress page on the way: ${topLevel.join(' → ')}`);
      // Not running yet: nothing to run cells in.
      assert.equal(await frame.locator('button.nb-run').count(), 0);

      // The server comes up: the banner says so and goes, and the same page joins the kernel.
      await page.locator('#try-starting-text', { hasText: 'Your server is ready' }).waitFor({ timeout: SLOW_MS });
      const run = frame.locator('.nb-code[data-cell="0"] button.nb-run');
      await run.waitFor({ timeout: SLOW_MS });
      await run.click();
      const live = frame.locator('.nb-code[data-cell="0"] .nb-outputs[data-live="true"]');
      await live.waitFor({ timeout: SLOW_MS });
      assert.match(await live.innerText(), /Bokeh \d+\.\d+\.\d+ \| Folium \d/);
      await banner.waitFor({ state: 'hidden', timeout: 10_000 });
      // One page all along: no reload of the workspace or its frame's sample.
      assert.equal(topLevel.filter((u) => u.includes('/oerhub/workspace')).length, 1, topLevel.join(' → '));

      // And the live notebook is one click away.
      await frame.getByRole('link', { name: 'Edit and run' }).click();
      await frame.locator('.jp-NotebookPanel').first().waitFor({ timeout: SLOW_MS });
    } catch (err) {
      fs.mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT, `try-starting-failure-${Date.now()}.png`), fullPage: true }).catch(() => undefined);
      throw err;
    } finally {
      await context.close();
    }
  });
});

describe('"Try it" with every workspace taken: the waiting page shows the rendered samples (issue 14)', function () {
  this.timeout(600_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;

  before(async () => {
    // Room for one workspace: the second visitor waits in line.
    hub = await startTryHub('tr2-waiting', { poolSize: 0, tryMaxServers: 1, tryRetryAfterS: 1 });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await hub?.close();
  });

  it('a visitor in line sees the samples rendered, from a content origin of their own, with their place; then their own workspace goes live', async () => {
    assert.ok(hub && browser);
    const first = new VisitorClient(hub.url, '10.9.0.1');
    assert.equal((await first.tryIt()).status, 303);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      const seen: string[] = [];
      page.on('console', (m) => seen.push(`console ${m.type()}: ${m.text()}`));
      page.on('response', (r) => {
        if (r.url().includes(PREVIEW_NAME)) seen.push(`${r.status()} ${r.url()} ${JSON.stringify(r.headers())}`);
      });
      page.on('requestfailed', (r) => seen.push(`failed ${r.url()} ${r.failure()?.errorText ?? ''}`));
      (globalThis as { tr2Seen?: string[] }).tr2Seen = seen;
      await page.goto(`${hub.url}/hub/try`);
      const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/hub/try')), page.getByRole('button', { name: 'Try it' }).click()]);
      assert.equal(answer.status(), 503);
      assert.equal(await page.locator('#try-position').innerText(), '1');
      assert.match(await page.locator('#try-preview-title').innerText(), /Your own server is starting as soon as one is free \(place 1\)/);
      const preview = page.frameLocator('#try-preview-frame');
      await preview.locator('article.nb').waitFor({ timeout: SLOW_MS });
      assert.match(await preview.locator('article.nb').innerText(), /Welcome! Sample notebooks/);
      const frameUrl = new URL((await page.locator('#try-preview-frame').getAttribute('src')) ?? '');
      assert.notEqual(frameUrl.origin, new URL(hub.url).origin, 'never the hub\'s origin');
      assert.match(frameUrl.hostname, /\.localhost$/);
      // No server behind it: nothing to run, nothing to edit.
      assert.equal(await preview.locator('button.nb-run').count(), 0);
      assert.equal(await preview.getByRole('link', { name: 'Edit and run' }).count(), 0);
      // The preview host serves the rendered samples only, and those to anyone (no session needed).
      const stranger = new HubClient(hub.url);
      assert.equal((await stranger.get(`/user/${PREVIEW_NAME}/oerhub/samples/index`)).status, 200);
      assert.equal((await stranger.get(`/user/${PREVIEW_NAME}/api/status`)).status, 404);
      assert.equal((await stranger.get(`/user/${PREVIEW_NAME}/oerhub/workspace`)).status, 404);

      // The first visitor leaves: the page takes this one in, onto the same rendered view, and it goes live.
      await first.endSession();
      await page.waitForURL(/\/oerhub\/workspace$/, { timeout: SLOW_MS });
      const frame = page.frameLocator('#try-frame');
      await frame.locator('article.nb').waitFor({ timeout: SLOW_MS });
      const run = frame.locator('.nb-code[data-cell="0"] button.nb-run');
      await run.waitFor({ timeout: SLOW_MS });
      await run.click();
      await frame.locator('.nb-code[data-cell="0"] .nb-outputs[data-live="true"]').waitFor({ timeout: SLOW_MS });
      await waitFor('one workspace in use', () => hub!.pool.status(), (st) => st.inUse === 1 && st.waiting === 0, 10_000);
    } catch (err) {
      fs.mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT, `try-waiting-failure-${Date.now()}.png`), fullPage: true }).catch(() => undefined);
      console.error(((globalThis as { tr2Seen?: string[] }).tr2Seen ?? []).join('\n'));
      throw err;
    } finally {
      await context.close();
    }
  });
});
