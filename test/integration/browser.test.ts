import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser, recordRequests, type RequestLog } from '../helpers/browser.js';
import { createUsers, startTestHub } from '../helpers/hub.js';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const OUTPUT = path.join(REPO_ROOT, 'test-output');
// Every run takes these; `npm run screenshots` copies them over the README's tracked images.
const SCREENSHOTS = path.join(OUTPUT, 'screenshots');
fs.mkdirSync(SCREENSHOTS, { recursive: true });
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
// Starting a server and loading JupyterLab cost CPU on a 2-core machine shared with other tests.
const SLOW_MS = 120_000;

describe('the hub in a real browser', function () {
  this.timeout(240_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  let requests: RequestLog | undefined;
  // Console errors and failed requests: printed when a test fails, to tell product from test.
  const problems: string[] = [];

  before(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    hub = await startTestHub('browser');
    await createUsers(hub, { alice: 'alice-password' });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(SLOW_MS);
    page = await context.newPage();
    requests = recordRequests(page);
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') problems.push(`console error on ${page?.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught error on ${page?.url()}: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText ?? ''}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
    });
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !page) return;
    fs.mkdirSync(OUTPUT, { recursive: true });
    const stem = path.join(OUTPUT, `browser-failure-${Date.now()}`);
    await page.screenshot({ path: `${stem}.png`, fullPage: true }).catch((e: Error) => console.error(`no failure screenshot: ${e.message}`));
    const report = `failing page: ${page.url()}\n${problems.join('\n')}\n`;
    fs.writeFileSync(`${stem}.txt`, report);
    console.error(`${report}screenshot: ${stem}.png (hub log: test-output/browser.log)`);
  });

  after(async () => {
    // Each step runs even if the one before threw, so no browser or notebook server outlives the suite.
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  it('a student in Chromium signs in, watches the progress page, lands in JupyterLab, runs a cell and sees its output', async () => {
    assert.ok(hub && page && requests);
    const p = page;

    // Collect every message the progress page shows, even if it moves on before the test looks.
    const progressMessages: string[] = [];
    await p.exposeFunction('oerhubTestSawProgress', (text: string) => {
      progressMessages.push(text);
    });
    await p.addInitScript(() => {
      if (!location.pathname.startsWith('/hub/spawn-pending/')) return;
      document.addEventListener('DOMContentLoaded', () => {
        const message = document.getElementById('spawn-message');
        if (!message) return;
        const report = (window as unknown as { oerhubTestSawProgress: (t: string) => Promise<void> }).oerhubTestSawProgress;
        new MutationObserver(() => void report(message.textContent ?? '')).observe(message, { childList: true, characterData: true, subtree: true });
      });
    });

    await p.goto(`${hub.url}/hub/login`);
    await p.getByLabel('Username').waitFor();
    await p.screenshot({ path: path.join(SCREENSHOTS, 'login.png') });
    await p.getByLabel('Username').fill('alice');
    await p.getByLabel('Password').fill('alice-password');
    await p.getByRole('button', { name: 'Sign in' }).click();

    await p.waitForURL(`${hub.url}/hub/home`);
    const start = p.getByRole('button', { name: 'Start my server' });
    await start.waitFor({ state: 'visible' });
    assert.ok(await start.isVisible());
    await shootPhone(context, `${hub.url}/hub/home`, path.join(SCREENSHOTS, 'home-phone.png'));

    await start.click();
    await p.waitForURL(/\/hub\/spawn-pending\/alice(\?|$)/, { waitUntil: 'domcontentloaded' });
    assert.equal(new URL(p.url()).pathname, '/hub/spawn-pending/alice');
    await p.getByRole('progressbar').waitFor({ state: 'visible' });
    assert.equal(await p.locator('[role="progressbar"] #progress-bar').count(), 1, 'a progress bar');
    // Right at load first, so there is always a picture; replaced below if the start is caught mid-way.
    await p.screenshot({ path: path.join(SCREENSHOTS, 'spawn-pending.png') });
    const caughtMidStart = await p.waitForFunction(
      () => !location.pathname.startsWith('/hub/spawn-pending/') || (document.querySelectorAll('#spawn-log li').length > 0 && !document.getElementById('spawn-message')?.textContent?.includes('ready')),
      undefined,
      { timeout: SLOW_MS },
    ).then(
      () => p.url().includes('/hub/spawn-pending/'),
      () => false,
    );
    // The page may move on between the check and the picture; the one taken at load then stays.
    if (caughtMidStart) await p.screenshot({ path: path.join(SCREENSHOTS, 'spawn-pending.png') }).catch(() => undefined);

    // JupyterLab is on alice's own origin, reached through the hub's one-time-code handoff.
    const aliceOrigin = `http://alice.localhost:${new URL(hub.url).port}`;
    await p.waitForURL(`${aliceOrigin}/user/alice/lab**`, { timeout: SLOW_MS });
    // Not the placeholder, nor the page's own "lost contact" note: a step the hub reported.
    const fromHub = progressMessages.filter((m) => m !== '' && m !== 'Connecting…' && !m.startsWith('Lost contact'));
    assert.ok(fromHub.length > 0, `the progress page showed a progress message (saw ${JSON.stringify(progressMessages)})`);
    await p.locator('.jp-LabShell').waitFor({ timeout: SLOW_MS });
    const notebookTile = p.locator('.jp-LauncherCard[data-category="Notebook"][title="Python 3 (ipykernel)"]');
    await notebookTile.waitFor({ timeout: SLOW_MS });
    await notebookTile.click();

    const notebook = p.locator('.jp-NotebookPanel:visible');
    await notebook.waitFor({ timeout: SLOW_MS });
    // JupyterLab silently drops a cell run while the kernel is still starting; a student waits for
    // the status bar to say Idle too. (The toolbar's indicator reads "idle" before any kernel exists.)
    await p.locator('#jp-main-statusbar').getByText('Python 3 (ipykernel) | Idle').waitFor({ timeout: SLOW_MS });
    const editor = notebook.locator('.jp-Cell').first().locator('.cm-content');
    await editor.click();
    await p.keyboard.type('print(6*7)');
    await p.keyboard.press('Shift+Enter');
    const output = notebook.locator('.jp-Cell').first().locator('.jp-OutputArea-output');
    await output.filter({ hasText: '42' }).waitFor({ timeout: SLOW_MS });
    assert.equal((await output.first().innerText()).trim(), '42');
    await p.screenshot({ path: path.join(SCREENSHOTS, 'jupyterlab.png') });

    const origin = new URL(hub.url).origin;
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(requests.foreign([origin, aliceOrigin]), [], "every request of the page went to the hub or alice's own origin on it");
    assert.ok(requests.urls.some((u) => u.startsWith(`${aliceOrigin}/user/alice/api/kernels`)), 'JupyterLab talked to its server through the hub');
  });
});

/** The same session on a phone-sized page: the home page must still be usable there. */
async function shootPhone(context: BrowserContext | undefined, url: string, file: string): Promise<void> {
  assert.ok(context);
  const phone = await context.newPage();
  try {
    await phone.setViewportSize(PHONE);
    await phone.goto(url);
    await phone.getByRole('button', { name: 'Start my server' }).waitFor({ state: 'visible' });
    await phone.screenshot({ path: file });
  } finally {
    await phone.close();
  }
}
