import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser } from '../helpers/browser.js';
import { startTryHub, waitFor, waitForReadyPool } from '../helpers/try.js';

const OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');
// JupyterLab and a kernel on a 2-core machine shared with other tests.
const SLOW_MS = 150_000;
const PHONE = { width: 390, height: 844 };

/** The files of a zip and their contents (stored or deflated), read from its central directory. */
function unzip(zip: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, 'a zip file');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLen = zip.readUInt16LE(at + 28);
    const extraLen = zip.readUInt16LE(at + 30);
    const commentLen = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.subarray(at + 46, at + 46 + nameLen).toString('utf8');
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataAt, dataAt + size);
    files.set(name, method === 8 ? zlib.inflateRawSync(raw) : raw);
    at += 46 + nameLen + extraLen + commentLen;
  }
  return files;
}

/**
 * Issue 10, "Try it" lifecycle polish, as a visitor sees it in Chromium: the download has what
 * they typed but never saved, "End session" says it is working and lands on "session ended",
 * the old addresses say the session ended, the workspace fits a phone, and JupyterLab's
 * File > Log Out signs out of the hub.
 */
describe('"Try it" lifecycle polish in a real browser', function () {
  this.timeout(600_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const pages: Page[] = [];
  const problems: string[] = [];

  async function newVisitor(viewport: { width: number; height: number }): Promise<Page> {
    assert.ok(browser);
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    contexts.push(context);
    const page = await context.newPage();
    pages.push(page);
    page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
    return page;
  }

  /** Click "Try it" and wait for JupyterLab in the workspace; returns the lab frame. */
  async function openWorkspace(page: Page): Promise<FrameLocator> {
    assert.ok(hub);
    await waitForReadyPool(hub, 1);
    await page.goto(`${hub.url}/hub/try`);
    await page.getByRole('button', { name: 'Try it' }).click();
    // The workspace page is served on the visitor's own origin (a same-origin frame).
    await page.waitForURL(/\/oerhub\/workspace$/, { timeout: SLOW_MS });
    const lab = page.frameLocator('#try-frame');
    // It opens on the rendered index (issue 14); one click on "Edit and run" opens JupyterLab.
    await lab.getByRole('link', { name: 'Edit and run' }).click({ timeout: SLOW_MS });
    await lab.locator('.jp-NotebookPanel:visible .jp-RenderedMarkdown', { hasText: 'This is a temporary workspace' }).first().waitFor({ timeout: SLOW_MS });
    return lab;
  }

  /** The visitor's anonymous server name, from the frame's address. */
  async function serverName(page: Page): Promise<string> {
    const src = await page.locator('#try-frame').evaluate((f) => (f as HTMLIFrameElement).contentWindow?.location.pathname ?? '');
    const m = /^\/user\/([^/]+)\//.exec(src);
    assert.ok(m, `the lab frame is at /user/NAME/ (${src})`);
    return m[1];
  }

  before(async () => {
    hub = await startTryHub('try-polish', { poolSize: 1, tryMaxServers: 2 });
    browser = await launchBrowser();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    fs.mkdirSync(OUTPUT, { recursive: true });
    for (const [i, page] of pages.entries()) {
      const file = path.join(OUTPUT, `try-polish-failure-${Date.now()}-${i}.png`);
      await page.screenshot({ path: file }).catch(() => undefined);
      console.error(`page ${i}: ${page.url()}\nscreenshot: ${file}`);
    }
    console.error(problems.join('\n'));
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  it('"Download my work" saves what the visitor typed but never saved, says so, and the zip has it', async () => {
    assert.ok(hub);
    const page = await newVisitor({ width: 1280, height: 900 });
    const lab = await openWorkspace(page);
    const notebook = lab.locator('.jp-NotebookPanel:visible');
    // A new code cell below the first one, typed into and not saved.
    await notebook.locator('.jp-Cell').first().click();
    await page.keyboard.press('Escape');
    await page.keyboard.press('b');
    await page.keyboard.press('Enter');
    await page.keyboard.type('oerhub_unsaved_marker = 42');
    await lab.locator('.jp-mod-dirty').first().waitFor({ timeout: 20_000 });

    const downloading = page.waitForEvent('download', { timeout: SLOW_MS });
    await page.getByRole('link', { name: 'Download my work' }).click();
    await page.locator('#try-status', { hasText: /Sav(ing|ed) samples\/index\.ipynb/ }).waitFor({ timeout: 20_000 });
    const download = await downloading;
    const file = await download.path();
    assert.ok(file, 'the download finished');
    const files = unzip(fs.readFileSync(file));
    const index = files.get('samples/index.ipynb');
    assert.ok(index, `the zip has samples/index.ipynb (has ${[...files.keys()].join(', ')})`);
    assert.match(index.toString('utf8'), /oerhub_unsaved_marker = 42/);
  });

  it('"End session" shows it is ending, always lands on "Your session ended", and the old addresses say so too', async () => {
    assert.ok(hub);
    const page = pages[0];
    assert.ok(page, 'the visitor of the test before');
    const name = await serverName(page);
    // What the bar shows once the button is pressed, reported by the page itself: the sign-out
    // is held on its way meanwhile (released by the report, or after 30 s so nothing can hang).
    type BarState = { button: string; disabled: boolean; status: string };
    let report: (s: BarState) => void = () => undefined;
    const reported = new Promise<BarState>((resolve) => (report = resolve));
    await page.exposeFunction('reportEnding', (s: BarState) => report(s));
    await page.evaluate(() => {
      const button = document.getElementById('try-end-button') as HTMLButtonElement;
      const status = document.getElementById('try-status') as HTMLElement;
      new MutationObserver(() => {
        if (!button.disabled) return;
        (window as unknown as { reportEnding(s: BarState): void }).reportEnding({ button: button.textContent ?? '', disabled: true, status: status.hidden ? '' : (status.textContent ?? '') });
      }).observe(button, { attributes: true });
    });
    const giveUp = new AbortController();
    const seenOrNull = Promise.race([reported, sleep(30_000, null, { signal: giveUp.signal }).catch(() => null)]);
    const held = seenOrNull.then(() => undefined);
    await page.route('**/oerhub/end', async (route) => {
      await held;
      await route.continue();
    });
    const box = await page.getByRole('button', { name: 'End session' }).boundingBox();
    assert.ok(box);
    // The mouse, not locator.click(): that would wait for the (held) navigation to finish.
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    const seen = await seenOrNull;
    giveUp.abort();
    assert.ok(seen, 'the button was disabled once pressed');
    assert.equal(seen.button, 'Ending your session…');
    assert.match(seen.status, /Ending your session/);
    await page.waitForURL(`${hub.url}/hub/try/ended`, { timeout: SLOW_MS });
    await page.getByRole('heading', { name: 'Your session ended' }).waitFor();
    assert.equal(await page.getByText('keeps running').count(), 0);
    await page.unroute('**/oerhub/end');

    // The old workspace address and the old JupyterLab address: "your session ended", not a sign-in.
    const workspace = await page.goto(`${hub.url}/hub/try/workspace`);
    assert.equal(workspace?.status(), 410);
    assert.equal(new URL(page.url()).pathname, '/hub/try/workspace');
    await page.getByRole('heading', { name: 'Your session ended' }).waitFor();
    const labPage = await page.goto(`${hub.url}/user/${name}/lab/tree/samples/index.ipynb`);
    assert.equal(labPage?.status(), 410);
    assert.equal(new URL(page.url()).pathname, `/user/${name}/lab/tree/samples/index.ipynb`);
    await page.getByRole('heading', { name: 'Your session ended' }).waitFor();
    await page.getByRole('link', { name: 'Start a new one' }).waitFor();
  });

  it('on a 390 px phone the notebook fills the width and both buttons are on screen', async () => {
    const page = await newVisitor(PHONE);
    const lab = await openWorkspace(page);
    const frame = await page.locator('#try-frame').boundingBox();
    assert.ok(frame, 'the JupyterLab frame is shown');
    assert.ok(frame.width >= 350, `the frame is ${frame.width} px wide`);
    assert.ok(frame.height >= 500, `the frame is ${frame.height} px high`);
    // The workspace folds JupyterLab's file browser away once the layout is restored.
    const notebook = await waitFor(
      'the notebook to fill the width',
      () => lab.locator('.jp-NotebookPanel:visible .jp-Notebook').first().boundingBox(),
      // The frame gets the whole 390 px; JupyterLab keeps its 33 px icon bar on the left (the
      // way to the file browser), so the notebook itself gets the rest (it was 60 px before).
      (box) => box !== null && box.width >= 340,
      30_000,
    ).catch((err: Error) => assert.fail(err.message));
    assert.ok(notebook && notebook.x >= 0 && notebook.x + notebook.width <= PHONE.width + 1, `the notebook is on screen: ${JSON.stringify(notebook)}`);
    // Readable: a markdown line is wider than a few letters.
    const text = await lab.locator('.jp-NotebookPanel:visible .jp-RenderedMarkdown').first().boundingBox();
    assert.ok(text && text.width >= 250, `the text column is ${text?.width} px wide`);
    for (const control of [page.getByRole('link', { name: 'Download my work' }), page.getByRole('button', { name: 'End session' })]) {
      const box = await control.boundingBox();
      assert.ok(box, 'the control is shown');
      assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= PHONE.width && box.y + box.height <= PHONE.height, `on screen: ${JSON.stringify(box)}`);
      assert.ok(box.height >= 32, `big enough to tap: ${box.height} px`);
    }
    fs.mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, 'try-workspace-phone.png') });
  });

  it("JupyterLab's File > Log Out signs out of the hub and offers a way back", async () => {
    assert.ok(hub);
    const page = pages[1];
    assert.ok(page, 'the phone visitor of the test before');
    await page.setViewportSize({ width: 1280, height: 900 });
    const lab = page.frameLocator('#try-frame');
    await lab.locator('.lm-MenuBar-itemLabel', { hasText: /^File$/ }).click();
    await lab.locator('.lm-Menu-itemLabel', { hasText: /^Log Out$/ }).click();
    // The whole window goes to the hub's sign-out, out of the frame.
    await page.waitForURL(`${hub.url}/hub/logout`, { timeout: SLOW_MS });
    await page.getByRole('main').getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${hub.url}/hub/try/ended`, { timeout: SLOW_MS });
    await page.getByRole('heading', { name: 'Your session ended' }).waitFor();
    // Signed out of the hub for real: the hub no longer knows this browser.
    const me = await page.request.get(`${hub.url}/hub/api/user`, { headers: { accept: 'application/json' } });
    assert.equal(me.status(), 401);
    await page.getByRole('link', { name: 'Start a new one' }).click();
    await page.waitForURL(`${hub.url}/hub/try`);
  });
});
