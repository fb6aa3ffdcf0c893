import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser, signInInBrowser } from '../helpers/browser.js';
import { ADMIN_PASSWORD, createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';

const OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');
const SCREENSHOTS = path.join(OUTPUT, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** Watch a page for what the hub's CSP blocks (inline styles or scripts) and for console errors. */
async function watchProblems(page: Page, problems: string[]): Promise<void> {
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP blocked ${e.violatedDirective}: ${e.blockedURI || 'inline'}`));
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
}

/** True when nothing on the page is wider than the screen (no sideways scrolling on a phone). */
function fitsWidth(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

describe('an admin in a real browser', function () {
  this.timeout(240_000);
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  const problems: string[] = [];

  before(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    hub = await startTestHub('adm-browser');
    await createUsers(hub, { 'adm-sofia': 'sofia-password', 'adm-tom': 'tom-password' });
    await hub.users.update('adm-sofia', { displayName: 'Sofia Student', email: 'sofia@example.edu' });
    browser = await launchBrowser();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    const page = context?.pages()[0];
    if (page) await page.screenshot({ path: path.join(OUTPUT, `adm-browser-failure-${Date.now()}.png`), fullPage: true }).catch(() => undefined);
    console.error(problems.join('\n'));
  });

  after(async () => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  it('finds a student by search, stops their server, and sees the stop in the audit log', async () => {
    assert.ok(hub && browser);
    await signInAndStart(hub, 'adm-sofia', 'sofia-password');
    await signInAndStart(hub, 'adm-tom', 'tom-password');
    context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    await watchProblems(page, problems);

    await signInInBrowser(page, hub.url, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    await page.getByLabel('Search').fill('sofia@example');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('#users tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 1, 'only the student who matches is listed');
    assert.match((await rows.first().textContent()) ?? '', /adm-sofia[\s\S]*Sofia Student[\s\S]*running/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'admin-users.png') });

    await page.getByRole('link', { name: 'adm-sofia' }).click();
    await page.getByRole('heading', { name: 'adm-sofia' }).waitFor();
    assert.match((await page.locator('#server-state').textContent()) ?? '', /running/);
    await page.getByRole('button', { name: 'Stop the server' }).click();
    await page.getByRole('status').filter({ hasText: 'Stopped the server of adm-sofia.' }).waitFor();
    // On the servers page now: Sofia's server is gone, Tom's still runs.
    assert.equal(await page.locator('#servers tr[data-user="adm-sofia"]').count(), 0);
    assert.equal(await page.locator('#servers tr[data-user="adm-tom"]').count(), 1);
    assert.equal((await hub.manager.list()).some((s) => s.user === 'adm-sofia'), false);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'admin-servers.png') });

    await page.getByRole('link', { name: 'Audit log' }).click();
    const entry = page.locator('#audit tbody tr').filter({ hasText: 'server.stop' }).filter({ hasText: 'adm-sofia' });
    await entry.waitFor();
    assert.match((await entry.textContent()) ?? '', /admin[\s\S]*server\.stop[\s\S]*adm-sofia[\s\S]*127\.0\.0\.1/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'admin-audit.png') });
    assert.deepEqual(problems, [], 'no console errors and nothing blocked by the CSP');
    await context.close();
    context = undefined;
  });

  it('works on a phone: tables become cards, nothing scrolls sideways', async () => {
    assert.ok(hub && browser);
    context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await watchProblems(page, problems);
    await signInInBrowser(page, hub.url, 'admin', ADMIN_PASSWORD);
    for (const [url, shot] of [
      ['/hub/admin', 'admin-users-phone.png'],
      ['/hub/admin/servers', 'admin-servers-phone.png'],
      ['/hub/admin/audit', 'admin-audit-phone.png'],
    ] as const) {
      await page.goto(`${hub.url}${url}`);
      assert.ok(await fitsWidth(page), `${url} fits a phone's width`);
      await page.screenshot({ path: path.join(SCREENSHOTS, shot), fullPage: true });
    }
    // Each server is a card whose cells carry their labels.
    await page.goto(`${hub.url}/hub/admin/servers`);
    const card = page.locator('#servers tr[data-user="adm-tom"]');
    assert.equal(await card.evaluate((tr) => getComputedStyle(tr).display), 'block');
    const label = await card.locator('td[data-label="State"]').evaluate((td) => getComputedStyle(td, '::before').content);
    assert.equal(label, '"State"');
    // A refused action shows its message next to the form, on the phone too.
    await page.goto(`${hub.url}/hub/admin/users/admin`);
    await page.getByRole('button', { name: 'Disable the account' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Disable the account' }).isDisabled(), true, 'an admin can\'t disable themselves');
    assert.ok(await fitsWidth(page), 'the user page fits a phone\'s width');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'admin-user-phone.png'), fullPage: true });
    assert.deepEqual(problems, [], 'no console errors and nothing blocked by the CSP');
  });
});
