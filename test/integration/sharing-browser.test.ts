import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { waitForReady } from '../helpers/hub.js';
import { startSamlHub, TestIdp } from '../helpers/saml-idp.js';
import { launchBrowser, recordRequests, signInInBrowser } from '../helpers/browser.js';
import { xsrfToken } from '../helpers/kernel.js';
import { escapeName } from '../../server/names.js';
import { createUsersWithRoles, notebook, signedIn, upload } from '../helpers/courses.js';

const OUTPUT = path.resolve(__dirname, '../../test-output');
const SCREENSHOTS = path.join(OUTPUT, 'screenshots');
const DESKTOP = { width: 1280, height: 900 };

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A real PNG, w×h, one colour (what matplotlib would have put in an output). */
function png(w: number, h: number, rgb: [number, number, number]): string {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows = Buffer.concat(Array.from({ length: h }, () => Buffer.concat([Buffer.from([0]), ...Array.from({ length: w }, () => Buffer.from(rgb))])));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]).toString('base64');
}

/**
 * A shared notebook full of script, opened by a signed-in classmate in Chromium: nothing in
 * it runs (no request to the attacker's listener, no dialog, no flag), its text and images
 * show, and the page is on the share origin, not the hub's.
 */
describe('a shared notebook with script in its outputs runs nothing in the viewer\'s browser (Chromium)', function () {
  this.timeout(240_000);
  let hub: Hub;
  let browser: Browser;
  let viewer: BrowserContext;
  let page: Page;
  let sink: http.Server;
  const hits: string[] = [];
  let sinkUrl = '';
  let shareId = '';
  let instructorsShareId = '';
  let idp: TestIdp;
  const annEsc = escapeName('shr-b-ann');

  before(async () => {
    // The attacker's listener: every request a script in the notebook could make comes here.
    sink = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(204, { 'access-control-allow-origin': '*' }).end();
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

    // Local accounts for the students, the test IdP (SAML) for a co-instructor.
    idp = await TestIdp.start();
    idp.addUser('shr-b-fac', { password: 'shr-b-fac-pw', attributes: { uid: 'shr-b-fac', displayName: 'Fay Lecturer', mail: 'fay@uni.example', eduPersonAffiliation: ['faculty', 'member'] } });
    hub = await startSamlHub('sharing-browser', idp);
    await createUsersWithRoles(hub, {
      'shr-b-prof': { password: 'shr-b-prof-password', roles: ['instructor'] },
      'shr-b-ann': { password: 'shr-b-ann-password', roles: ['student'] },
      'shr-b-bob': { password: 'shr-b-bob-password', roles: ['student'] },
    });
    const prof = await signedIn(hub, 'shr-b-prof', 'shr-b-prof-password');
    const ann = await signedIn(hub, 'shr-b-ann', 'shr-b-ann-password');
    const bob = await signedIn(hub, 'shr-b-bob', 'shr-b-bob-password');
    assert.equal((await prof.client.request('POST', '/hub/courses', { form: { _csrf: prof.csrf, code: 'shrb1', title: 'Data journalism', coInstructors: 'shr-b-fac' } })).status, 303);
    assert.equal((await upload(prof.client, prof.csrf, '/hub/courses/shrb1/publish', [{ name: 'week1.ipynb', data: notebook('1') }])).status, 200);
    assert.equal((await bob.client.request('POST', '/hub/courses/shrb1/join', { form: { _csrf: bob.csrf } })).status, 303);
    assert.equal((await ann.client.get('/hub/courses/shrb1/open/week1.ipynb')).status, 302);
    await waitForReady(ann.client, annEsc);
    await ann.client.follow('/hub/courses/shrb1/open/week1.ipynb');

    // Ann's copy, as a hostile student (or a hostile library's output) would leave it.
    const s = sinkUrl;
    const nb = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [
        { cell_type: 'markdown', id: 'm1', metadata: {}, source: `# Rainfall in Bergen\n\nMonthly totals, **measured** at Florida station.\n\n<script>fetch('${s}/md-script')</script>\n\n[the data](javascript:fetch('${s}/md-js-link'))\n\n<img src="x" onerror="fetch('${s}/md-onerror')">` },
        {
          cell_type: 'code', id: 'c1', metadata: {}, execution_count: 1, source: 'plot(rain)',
          outputs: [
            { output_type: 'stream', name: 'stdout', text: 'mean 231 mm\n' },
            { output_type: 'display_data', metadata: {}, data: { 'image/png': png(120, 60, [30, 120, 200]), 'text/plain': '<Figure>' } },
            {
              output_type: 'display_data', metadata: {},
              data: {
                'text/html': `<div id="html-out">Table of months</div><script>window.pwned = 1; alert('pwned'); fetch('${s}/html-script')</script>` +
                  `<img src="x" onerror="window.pwned = 2; fetch('${s}/img-onerror')"><a id="js-link" href="javascript:fetch('${s}/js-link')">open the raw data</a>` +
                  `<iframe srcdoc="<script>parent.fetch('${s}/frame')</script>"></iframe><svg onload="fetch('${s}/svg-onload')"></svg>` +
                  `<form action="${s}/form"><button id="form-btn">send</button></form><meta http-equiv="refresh" content="0;url=${s}/refresh"><link rel="stylesheet" href="${s}/css">` +
                  // A style that would fetch, and a layer laid over the top of the window (where the strip saying whose notebook it is sits).
                  `<div style="background-image:url('${s}/css-url')">styled</div><div id="overlay" style="position:fixed;top:0;left:0;right:0;height:40px;z-index:2147483647"></div>`,
                'text/plain': 'table',
              },
            },
            { output_type: 'display_data', metadata: {}, data: { 'application/javascript': `fetch('${s}/appjs')`, 'text/plain': '' } },
            { output_type: 'display_data', metadata: {}, data: { 'image/svg+xml': `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><script>fetch('${s}/svg-script')</script><rect width="40" height="40" fill="#c33"/></svg>` } },
          ],
        },
      ],
    };
    const xsrf = await xsrfToken(ann.client, annEsc);
    const put = await ann.client.request('PUT', `/user/${annEsc}/api/contents/shrb1/week1.ipynb`, {
      headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf, accept: 'application/json' },
      body: JSON.stringify({ type: 'file', format: 'text', content: JSON.stringify(nb) }),
    });
    assert.ok(put.status === 200 || put.status === 201, put.body);
    const shared = await ann.client.request('POST', '/hub/shares', { form: { _csrf: ann.csrf, notebook: 'shrb1/week1.ipynb', audience: 'classmates' }, headers: { accept: 'application/json' } });
    assert.equal(shared.status, 201, shared.body);
    shareId = (JSON.parse(shared.body) as { id: string }).id;
    const forInstructors = await ann.client.request('POST', '/hub/shares', { form: { _csrf: ann.csrf, notebook: 'shrb1/week1.ipynb', audience: 'instructors' }, headers: { accept: 'application/json' } });
    assert.equal(forInstructors.status, 201, forInstructors.body);
    instructorsShareId = (JSON.parse(forInstructors.body) as { id: string }).id;

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await launchBrowser();
    viewer = await browser.newContext({ viewport: DESKTOP });
    page = await viewer.newPage();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await hub?.close();
    await idp?.close();
    await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
  });

  it('a signed-in classmate opens the link: the text and images show on the share origin, and no script runs', async () => {
    const dialogs: string[] = [];
    const console: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => console.push(m.text()));
    await signInInBrowser(page, hub.url, 'shr-b-bob', 'shr-b-bob-password');
    const requests = recordRequests(page);
    await page.goto(`${hub.url}/hub/share/${shareId}`);
    const here = new URL(page.url());
    assert.equal(here.origin, `http://oerhub-share.localhost:${new URL(hub.url).port}`);
    assert.notEqual(here.origin, new URL(hub.url).origin);
    await page.getByRole('heading', { name: 'Rainfall in Bergen' }).waitFor();
    assert.ok(await page.getByText('mean 231 mm').isVisible());
    assert.ok(await page.getByText('Table of months').isVisible());
    assert.ok(await page.getByText('open the raw data').isVisible());
    const images = page.locator('img.nb-image');
    assert.equal(await images.count(), 2);
    const box = await images.first().boundingBox();
    assert.ok(box && box.width >= 100 && box.height >= 50, `the plot is drawn: ${JSON.stringify(box)}`);
    // The notebook's styles stay in its own box: nothing of it lies over the strip (the click would land on the layer).
    await page.locator('#share-strip').click({ trial: true, timeout: 3000 });
    // Click what a curious reader would click; nothing may follow from it.
    await page.locator('#js-link').click({ timeout: 5000 }).catch(() => undefined);
    await page.getByText('the data').click({ timeout: 5000 }).catch(() => undefined);
    await page.waitForTimeout(1500);
    assert.deepEqual(hits, [], `script ran: ${hits.join(', ')}`);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(requests.foreign([here.origin, hub.url]), []);
    // The document is sandboxed: it has an opaque origin, so even the share origin's storage is out of reach.
    assert.equal(new URL(page.url()).origin, here.origin, 'still on the shared page');
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned ?? null).catch(() => null), null);
    // The hub's session cookie is the hub host's only: the share origin gets none.
    assert.deepEqual(await viewer.cookies(here.origin), []);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'share-view.png'), fullPage: true });
  });

  it('even a script the sanitiser had missed would not run: the CSP sandbox blocks it (defence in depth)', async () => {
    // Play a sanitiser bug: put live script straight into the stored page.
    const file = path.join(hub.config.dataDir, 'shares', shareId, 'view.html');
    const html = fs.readFileSync(file, 'utf8').replace('</body>', `<p id="injected">injected</p><script>window.pwned = 3; fetch('${sinkUrl}/injected'); alert('injected')</script><img src="x" onerror="fetch('${sinkUrl}/injected-onerror')"></body>`);
    fs.writeFileSync(file, html);
    const dialogs: string[] = [];
    const messages: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => messages.push(m.text()));
    await page.goto(`${hub.url}/hub/share/${shareId}`);
    await page.locator('#injected').waitFor();
    await page.waitForTimeout(1500);
    assert.deepEqual(hits, [], `script ran: ${hits.join(', ')}`);
    assert.deepEqual(dialogs, []);
    assert.ok(messages.some((m) => /sandboxed and the 'allow-scripts' permission is not set|Content Security Policy/i.test(m)), `Chromium reports the blocked script: ${messages.join(' | ')}`);
  });

  it('a signed-out co-instructor opens an instructors-only link: through the IdP (SAML) and back to the notebook', async () => {
    const ctx = await browser.newContext({ viewport: DESKTOP });
    try {
      const p = await ctx.newPage();
      await p.goto(`${hub.url}/hub/share/${instructorsShareId}`);
      assert.equal(new URL(p.url()).pathname, '/hub/login');
      await p.click('#saml-login');
      await p.waitForURL(`${idp.url}/sso?**`);
      await p.fill('#idp-username', 'shr-b-fac');
      await p.fill('#idp-password', 'shr-b-fac-pw');
      await p.click('#idp-login');
      await p.getByRole('heading', { name: 'Rainfall in Bergen' }).waitFor();
      assert.equal(new URL(p.url()).origin, `http://oerhub-share.localhost:${new URL(hub.url).port}`);
      assert.match(await p.locator('#share-strip').innerText(), /shared read-only by shr-b-ann/);
      assert.deepEqual(hits, []);
    } finally {
      await ctx.close();
    }
  });

  it('the instructor views the student\'s copy from the dashboard; the student revokes her link from her page, and the classmate\'s view is dead', async () => {
    const profCtx = await browser.newContext({ viewport: DESKTOP });
    const annCtx = await browser.newContext({ viewport: DESKTOP });
    try {
      const profPage = await profCtx.newPage();
      await signInInBrowser(profPage, hub.url, 'shr-b-prof', 'shr-b-prof-password');
      await profPage.goto(`${hub.url}/hub/courses/shrb1/dashboard`);
      await profPage.screenshot({ path: path.join(SCREENSHOTS, 'share-dashboard.png'), fullPage: true });
      await profPage.locator('tr[data-student="shr-b-ann"] form.view-copy button', { hasText: 'week1.ipynb' }).click();
      await profPage.getByText("shr-b-ann's copy of").waitFor();
      assert.equal(new URL(profPage.url()).hostname, 'oerhub-share.localhost');
      await profPage.getByRole('heading', { name: 'Rainfall in Bergen' }).waitFor();

      const annPage = await annCtx.newPage();
      await signInInBrowser(annPage, hub.url, 'shr-b-ann', 'shr-b-ann-password');
      await annPage.goto(`${hub.url}/hub/home`);
      await annPage.locator('#my-shares-link').click();
      await annPage.locator(`tr[data-share="${shareId}"]`).waitFor();
      await annPage.screenshot({ path: path.join(SCREENSHOTS, 'share-list.png'), fullPage: true });
      const issued = page.url();
      await annPage.locator(`tr[data-share="${shareId}"] button`, { hasText: 'Revoke' }).click();
      await annPage.locator('#share-notice').waitFor();
      assert.match(await annPage.locator(`tr[data-share="${shareId}"]`).innerText(), /revoked/);
      const reply = await page.goto(issued);
      assert.equal(reply?.status(), 410);
      assert.match(await page.locator('#message').innerText(), /revoked/);
      assert.equal((await page.goto(`${hub.url}/hub/share/${shareId}`))?.status(), 410);
    } finally {
      await profCtx.close();
      await annCtx.close();
    }
  });
});
