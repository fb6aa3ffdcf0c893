import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { startSamlHub, TestIdp } from '../helpers/saml-idp.js';
import { launchBrowser } from '../helpers/browser.js';
import { notebook } from '../helpers/courses.js';

const OUTPUT = path.resolve(__dirname, '../../test-output');
const SCREENSHOTS = path.join(OUTPUT, 'screenshots');
const SLOW_MS = 90_000;
const DESKTOP = { width: 1280, height: 860 };

/**
 * The teaching journey in Chromium, against the test SAML IdP: a faculty member creates a
 * course and publishes two notebooks, a student opens the course link signed out, signs in,
 * lands in JupyterLab with the notebook open and runs it; version 2 arrives and the notebook
 * the student edited stays theirs, with the conflict shown.
 */
describe('teaching in a real browser: publish, open a course link, receive version 2', function () {
  this.timeout(300_000);
  let idp: TestIdp;
  let hub: Hub;
  let browser: Browser;
  let faculty: BrowserContext;
  let student: BrowserContext;
  let prof: Page;
  let stu: Page;
  let courseLink = '';
  const problems: string[] = [];

  const watch = (page: Page, who: string): void => {
    page.on('pageerror', (e) => problems.push(`${who}: uncaught error on ${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      // Hub pages must run clean under their CSP; JupyterLab's own console chatter is not ours.
      if (m.type() === 'error' && page.url().includes('/hub/')) problems.push(`${who}: console error on ${page.url()}: ${m.text()}`);
    });
  };

  const signInWithSaml = async (page: Page, username: string, password: string): Promise<void> => {
    await page.click('#saml-login');
    await page.waitForURL(`${idp.url}/sso?**`);
    await page.fill('#idp-username', username);
    await page.fill('#idp-password', password);
    await page.click('#idp-login');
  };

  before(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    idp = await TestIdp.start();
    idp.addUser('crs-faculty', { password: 'crs-faculty-pw', attributes: { uid: 'crs-faculty', displayName: 'Ada Lecturer', mail: 'ada@uni.example', eduPersonAffiliation: ['faculty', 'member'] } });
    idp.addUser('crs-stu', { password: 'crs-stu-pw', attributes: { uid: 'crs-stu', displayName: 'Sam Student', mail: 'sam@uni.example', eduPersonAffiliation: ['student', 'member'] } });
    hub = await startSamlHub('courses-browser', idp);
    browser = await launchBrowser();
    faculty = await browser.newContext({ viewport: DESKTOP });
    await faculty.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(hub.url).origin });
    student = await browser.newContext({ viewport: DESKTOP });
    prof = await faculty.newPage();
    stu = await student.newPage();
    watch(prof, 'faculty');
    watch(stu, 'student');
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const [who, page] of [['faculty', prof], ['student', stu]] as const) {
      await page?.screenshot({ path: path.join(OUTPUT, `course-failure-${who}-${Date.now()}.png`), fullPage: true }).catch(() => undefined);
    }
    console.error(`problems seen: ${problems.join('\n') || 'none'} (hub log: test-output/courses-browser.log)`);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await hub?.close();
    await idp?.close();
  });

  it('a faculty member signs in through SSO, creates a course and publishes two notebooks', async () => {
    await prof.goto(`${hub.url}/hub/courses`);
    assert.match(prof.url(), /\/hub\/login\?next=%2Fhub%2Fcourses$/);
    await signInWithSaml(prof, 'crs-faculty', 'crs-faculty-pw');
    await prof.waitForURL(`${hub.url}/hub/courses`);
    await prof.getByLabel('Code').fill('crs-intro');
    await prof.getByLabel('Title').fill('Introduction to Data');
    await prof.getByLabel('Term').fill('Spring 2027');
    await prof.getByLabel('Description').fill('Week by week notebooks.');
    await prof.getByRole('button', { name: 'Create course' }).click();
    await prof.waitForURL(`${hub.url}/hub/courses/crs-intro`);

    await prof.setInputFiles('#publish-files', [
      { name: 'lab1.ipynb', mimeType: 'application/x-ipynb+json', buffer: Buffer.from(notebook('print("hello from lab 1")')) },
      { name: 'lab2.ipynb', mimeType: 'application/x-ipynb+json', buffer: Buffer.from(notebook('print("lab 2")')) },
    ]);
    await prof.getByRole('button', { name: 'Publish a new version' }).click();
    await prof.locator('#course-notice', { hasText: 'Published version 1.' }).waitFor();
    assert.equal(await prof.locator('#course-files tbody tr').count(), 2);
    await prof.screenshot({ path: path.join(SCREENSHOTS, 'course-publish.png'), fullPage: true });

    // The per-notebook link's copy button puts the link on the clipboard.
    const row = prof.locator('#course-files tr[data-path="lab1.ipynb"]');
    await row.getByRole('button', { name: 'Copy' }).click();
    await row.getByRole('button', { name: 'Copied' }).waitFor();
    courseLink = await prof.evaluate(() => navigator.clipboard.readText());
    assert.equal(courseLink, `${hub.url}/hub/courses/crs-intro/open/lab1.ipynb`);
  });

  it('a student opens the link signed out, signs in, and lands in JupyterLab with the notebook open, then runs it', async () => {
    await stu.goto(courseLink);
    assert.match(stu.url(), /\/hub\/login\?next=%2Fhub%2Fcourses%2Fcrs-intro%2Fopen%2Flab1\.ipynb$/);
    await signInWithSaml(stu, 'crs-stu', 'crs-stu-pw');
    const origin = `http://crs-2dstu.localhost:${new URL(hub.url).port}`;
    await stu.waitForURL(`${origin}/user/crs-2dstu/lab/tree/crs-intro/lab1.ipynb**`, { timeout: SLOW_MS });
    const panel = stu.locator('.jp-NotebookPanel:visible');
    await panel.waitFor({ timeout: SLOW_MS });
    await stu.locator('.jp-DocumentWidget-tab, .lm-TabBar-tab.jp-mod-current', { hasText: 'lab1.ipynb' }).first().waitFor({ timeout: SLOW_MS });
    await stu.locator('#jp-main-statusbar').getByText('Python 3 (ipykernel) | Idle').waitFor({ timeout: SLOW_MS });
    await stu.locator('.lm-MenuBar-itemLabel', { hasText: /^Run$/ }).click();
    await stu.locator('.lm-Menu-itemLabel', { hasText: /^Run All Cells$/ }).click();
    await panel.locator('.jp-OutputArea-output', { hasText: 'hello from lab 1' }).waitFor({ timeout: SLOW_MS });
    await stu.screenshot({ path: path.join(SCREENSHOTS, 'course-student-lab.png') });

    // The student writes their own answer into the notebook and saves it.
    const editor = panel.locator('.jp-Cell').first().locator('.cm-content');
    await editor.click();
    await stu.keyboard.press('End');
    await stu.keyboard.type('  # my answer');
    await stu.keyboard.press('Control+s');
    await stu.locator('.lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)', { hasText: 'lab1.ipynb' }).waitFor({ timeout: SLOW_MS });
  });

  it("the instructor's dashboard shows the student and the notebook they opened", async () => {
    await prof.goto(`${hub.url}/hub/courses/crs-intro/dashboard`);
    const row = prof.locator('#students tr[data-student="crs-stu"]');
    await row.waitFor();
    assert.match(await row.innerText(), /Sam Student[\s\S]*running[\s\S]*v1[\s\S]*lab1\.ipynb/);
    await prof.screenshot({ path: path.join(SCREENSHOTS, 'course-dashboard.png'), fullPage: true });
  });

  it('version 2 arrives: the student sees the update, and the conflict on the notebook they edited', async () => {
    await prof.goto(`${hub.url}/hub/courses/crs-intro`);
    await prof.setInputFiles('#publish-files', [
      { name: 'lab1.ipynb', mimeType: 'application/x-ipynb+json', buffer: Buffer.from(notebook('print("hello from lab 1, version 2")')) },
      { name: 'lab2.ipynb', mimeType: 'application/x-ipynb+json', buffer: Buffer.from(notebook('print("lab 2, version 2")')) },
    ]);
    await prof.getByRole('button', { name: 'Publish a new version' }).click();
    await prof.locator('#course-notice', { hasText: 'Published version 2.' }).waitFor();
    assert.match(await prof.locator('#versions tr[data-version="2"]').innerText(), /~ lab1\.ipynb[\s\S]*~ lab2\.ipynb/);
    await prof.locator('#versions').scrollIntoViewIfNeeded();
    await prof.screenshot({ path: path.join(SCREENSHOTS, 'course-versions.png'), fullPage: true });

    // The student's home says what changed since they last opened each notebook.
    await stu.goto(`${hub.url}/hub/home`);
    const mine = stu.locator('#my-courses');
    await mine.waitFor();
    assert.match(await mine.innerText(), /lab1\.ipynb\s*updated in v2/);
    await stu.screenshot({ path: path.join(SCREENSHOTS, 'course-student-home.png'), fullPage: true });

    // Opening the link again brings v2 in; their edited lab1 stays theirs.
    await stu.goto(courseLink);
    await stu.waitForURL(/\/user\/crs-2dstu\/lab\/tree\/crs-intro\/lab1\.ipynb/, { timeout: SLOW_MS });
    const panel = stu.locator('.jp-NotebookPanel:visible');
    await panel.waitFor({ timeout: SLOW_MS });
    await panel.locator('.jp-Cell').first().getByText('# my answer').waitFor({ timeout: SLOW_MS });

    await stu.goto(`${hub.url}/hub/courses/crs-intro`);
    const conflicts = stu.locator('#conflicts');
    await conflicts.waitFor();
    assert.match(await conflicts.innerText(), /lab1\.ipynb: the course's version 2 is in crs-intro\/lab1\.v2-from-course\.ipynb/);
    assert.equal(await stu.locator('#course-files tr[data-path="lab1.ipynb"] .badge.conflict').count(), 1);
    await stu.screenshot({ path: path.join(SCREENSHOTS, 'course-conflict.png'), fullPage: true });
    assert.deepEqual(problems, []);
  });
});
