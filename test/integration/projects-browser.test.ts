import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser, runNotebookInLab, signInInBrowser } from '../helpers/browser.js';
import { ADMIN_PASSWORD, startTestHub, tempDataDir } from '../helpers/hub.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { closeProjectHub } from '../helpers/projects.js';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const OUTPUT = path.join(REPO_ROOT, 'test-output');
const SCREENSHOTS = path.join(OUTPUT, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const SLOW_MS = 120_000;

/** A notebook the data library put in the project folder: it lists the folder and reads a shared file. */
const WELCOME = {
  cells: [{ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: ["import os\n", "print('shared with the team:', sorted(os.listdir('.')))\n", "print(open('codebook.txt').read())"] }],
  metadata: { kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' } },
  nbformat: 4,
  nbformat_minor: 5,
};

describe('a data librarian and an invited researcher in Chromium', function () {
  this.timeout(300_000);
  const smtp = new TestSmtp();
  let hub: Hub;
  let dataDir: string;
  let browser: Browser | undefined;
  let page: Page | undefined;

  before(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await smtp.start();
    dataDir = tempDataDir('prj-browser');
    hub = await startTestHub('prj-browser', { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none' });
    browser = await launchBrowser();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !page) return;
    const file = path.join(OUTPUT, `prj-browser-failure-${Date.now()}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    console.error(`failing page: ${page.url()}; screenshot ${file} (hub log: test-output/prj-browser.log)`);
  });

  after(async () => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await closeProjectHub(hub, smtp, dataDir);
  });

  it('invitation email -> set a password -> project page -> a notebook in the shared folder', async () => {
    assert.ok(browser);
    // The librarian (here the admin) creates the project from the form.
    const librarian = await browser.newContext({ viewport: DESKTOP });
    librarian.setDefaultTimeout(SLOW_MS);
    const lp = await librarian.newPage();
    page = lp;
    await signInInBrowser(lp, hub.url, 'admin', ADMIN_PASSWORD);
    await lp.goto(`${hub.url}/hub/projects/new`);
    await lp.getByLabel('Project number').fill('P-1236');
    await lp.getByLabel('Name').fill('Cross-border health survey');
    await lp.getByLabel('Unit').selectOption('International');
    await lp.getByLabel("Lead's email").fill('prj-ada@example.org');
    await lp.getByLabel('Storage capacity (GB)').fill('2');
    await lp.screenshot({ path: path.join(SCREENSHOTS, 'project-new.png') });
    await lp.getByRole('button', { name: 'Create project and invite the lead' }).click();
    await lp.waitForURL(`${hub.url}/hub/projects/P-1236`);
    assert.equal(await lp.locator('#project-name').innerText(), 'P-1236: Cross-border health survey');
    await lp.screenshot({ path: path.join(SCREENSHOTS, 'project-librarian.png'), fullPage: true });
    await librarian.close();

    // The data library leaves a notebook and a file in the shared folder.
    const shared = path.join(dataDir, 'projects', 'P-1236', 'mnt', 'shared');
    fs.writeFileSync(path.join(shared, 'welcome.ipynb'), JSON.stringify(WELCOME));
    fs.writeFileSync(path.join(shared, 'codebook.txt'), 'q1: country of residence');

    // The lead opens the one email's link in a fresh browser.
    const [mail, ...more] = await smtp.waitFor('prj-ada@example.org');
    assert.equal(more.length, 0);
    const ada = await browser.newContext({ viewport: DESKTOP });
    ada.setDefaultTimeout(SLOW_MS);
    const p = await ada.newPage();
    page = p;
    await p.goto(linkIn(mail!));
    await p.getByRole('heading', { name: 'Join research project P-1236' }).waitFor();
    assert.equal(await p.getByLabel('Username').inputValue(), 'prj-ada');
    await p.getByLabel('Password', { exact: true }).fill('amber violin tundra sprocket');
    await p.getByLabel('Password again').fill('amber violin tundra sprocket');
    await p.screenshot({ path: path.join(SCREENSHOTS, 'project-invite.png') });
    await p.getByRole('button', { name: 'Set password and join' }).click();
    await p.waitForURL(`${hub.url}/hub/projects/P-1236`);
    await p.locator('#project-usage').waitFor();
    assert.match(await p.locator('#members').innerText(), /prj-ada \(lead\)/);
    await p.screenshot({ path: path.join(SCREENSHOTS, 'project-page.png'), fullPage: true });

    // Home lists the project; the server starts with the folder in it.
    await p.goto(`${hub.url}/hub/home`);
    await p.locator('#projects-home').waitFor({ state: 'visible' });
    assert.match(await p.locator('#projects-home-list').innerText(), /P-1236: Cross-border health survey/);
    await p.screenshot({ path: path.join(SCREENSHOTS, 'project-home.png'), fullPage: true });
    await p.getByRole('button', { name: 'Start my server' }).click();
    const escaped = (await hub.users.get('prj-ada'))!.escapedName;
    const adaOrigin = `http://${escaped}.localhost:${new URL(hub.url).port}`;
    await p.waitForURL(`${adaOrigin}/user/${escaped}/lab**`, { timeout: SLOW_MS });
    await runNotebookInLab(p, `${adaOrigin}/user/${escaped}/lab/tree/projects/P-1236/welcome.ipynb`, SLOW_MS);
    const output = p.locator('.jp-NotebookPanel:visible .jp-OutputArea-output');
    await output.filter({ hasText: 'country of residence' }).waitFor({ timeout: SLOW_MS });
    assert.match(await output.first().innerText(), /shared with the team: \[.*'codebook\.txt'.*'welcome\.ipynb'.*\]/);
    await p.screenshot({ path: path.join(SCREENSHOTS, 'project-notebook.png') });
    await ada.close();
  });
});
