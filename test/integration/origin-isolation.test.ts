import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { DEFAULT_CHROMIUM_PATH, launchBrowser, runNotebookInLab, signInInBrowser } from '../helpers/browser.js';
import { ADMIN_PASSWORD, signInAndStart, startTestHub, createUsers, waitForReady } from '../helpers/hub.js';
import { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';
import { frontDoorPath, startNginx } from '../helpers/nginx.js';

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
    // Said up front: JupyterHub's user model is long, the token may be past the excerpt.
    return r.status + ' ' + (token ? 'csrf_token read ' : '') + text.slice(0, 200);
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

/**
 * One way to run the hub for the attack: where the browser finds the hub and each user's
 * origin, and a direct client (the hub's own TCP listener, never through a browser) that
 * prepares the servers and checks the outcome.
 */
interface Setup {
  hub: Hub;
  browser: Browser;
  /** The hub's URL as a browser sees it. */
  hubUrl: string;
  /** A user's origin as a browser sees it, e.g. https://alice.localhost:PORT. */
  userOrigin(name: string): string;
  /** The hub log's label (test-output/LABEL.log). */
  label: string;
  close(): Promise<void>;
}

/** The README's trial defaults: hub at http://127.0.0.1:PORT, servers at http://NAME.localhost:PORT. */
async function trialDefaults(): Promise<Setup> {
  const hub = await startTestHub('origin-isolation');
  const browser = await launchBrowser().catch(async (e: Error) => {
    await hub.close();
    throw e;
  });
  const port = new URL(hub.url).port;
  return {
    hub,
    browser,
    hubUrl: hub.url,
    userOrigin: (name) => `http://${name}.localhost:${port}`,
    label: 'origin-isolation',
    async close() {
      await browser.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
      await hub.close();
    },
  };
}

/**
 * The production shape: nginx with TLS in front (nginx/oerhub.conf, its wildcard user-content
 * block), the hub behind its Unix-socket front door with publicUrl https://127.0.0.1:PORT and
 * servers at https://NAME.localhost:PORT, over a certificate that names each user host.
 * Chromium accepts the test certificate by its key (--ignore-certificate-errors-spki-list):
 * certificates with any other key are still refused, but for this key Chromium waves every
 * certificate error through, names included. True trust (the certificate in an NSS database
 * under a throwaway HOME) needs certutil, which this machine lacks.
 */
async function behindNginxWithTls(users: string[]): Promise<Setup> {
  const door = frontDoorPath();
  const nginx = await startNginx({ site: 'oerhub.conf', hubSocket: door.socket, userHosts: users.map((u) => `${u}.localhost`) });
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  const close = async (): Promise<void> => {
    await browser?.close().catch((e: Error) => console.error(`closing the browser: ${e.message}`));
    await hub?.close();
    await nginx.stop();
    door.remove();
  };
  try {
    hub = await startTestHub('origin-isolation-nginx', { publicUrl: nginx.url, frontDoorSocket: door.socket });
    const spki = createHash('sha256').update(new X509Certificate(nginx.ca).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    // launchBrowser takes no extra flags; this is its launch plus the one that accepts the test key.
    const executablePath = process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM_PATH;
    if (!fs.existsSync(executablePath)) throw new Error(`Chromium is missing at ${executablePath}: install it with \`apt-get install -y chromium\` or set CHROMIUM_PATH to its binary.`);
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
    });
  } catch (e) {
    await close();
    throw e;
  }
  const port = new URL(nginx.url).port;
  return { hub, browser, hubUrl: nginx.url, userOrigin: (name) => `https://${name}.localhost:${port}`, label: 'origin-isolation-nginx', close };
}

/**
 * Sign in and (optionally) start the server on the hub's own TCP listener, then take the
 * hub's one-time-code handoff to the user origin there too: the hub tells hosts apart by Host
 * only, so http://NAME.localhost:HUBPORT reaches the same proxy that nginx does.
 */
async function directClient(hub: Hub, name: string, password: string, start: boolean): Promise<HubClient> {
  const port = new URL(hub.url).port;
  const client = new HubClient(hub.url, { contentOrigin: (n) => `http://${n}.localhost:${port}` });
  const login = await client.login(name, password);
  if (login.status !== 303) throw new Error(`login of ${name} answered ${login.status}`);
  if (start) {
    await client.get('/hub/spawn');
    await waitForReady(client, name);
  }
  const r = await client.get('/hub/user-redirect/lab');
  if (r.status !== 302 || !r.location) throw new Error(`user-redirect answered ${r.status} ${r.location}`);
  const handoff = new URL(r.location);
  const landed = await client.get(`${client.contentOrigin(name)}${handoff.pathname}${handoff.search}`);
  if (landed.location !== `/user/${name}/lab`) throw new Error(`the handoff to ${name}'s origin answered ${landed.status} ${landed.location}`);
  return client;
}

/** The attack scenarios, the same on every setup. */
function attackScenarios(setupName: string, makeSetup: (users: string[]) => Promise<Setup>): void {
  describe(`origin isolation (${setupName}): code in a notebook cannot act as the hub or read a classmate's server (Chromium)`, function () {
    this.timeout(400_000);
    let setup: Setup;
    let hub: Hub;
    let adminApi: HubClient;
    const problems: string[] = [];
    let current: Page | undefined;

    before(async () => {
      setup = await makeSetup(['admin', 'alice', 'bob']);
      hub = setup.hub;
      await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
      // Every server runs: the admin's, the student's, and the classmate's with a file worth stealing.
      const [admin, alice, bob] = await Promise.all([
        directClient(hub, 'admin', ADMIN_PASSWORD, true),
        directClient(hub, 'alice', 'alice-password', true),
        directClient(hub, 'bob', 'bob-password', true),
      ]);
      adminApi = admin;
      await putFile(bob, 'bob', 'answers.txt', "bob's answers to problem set 3");
      await putFile(admin, 'admin', 'report.ipynb', attackNotebook(setup.hubUrl, setup.userOrigin('bob'), 'bob', 'admin'), 'json');
      // The notebook a classmate handed over: the same cell, now in alice's server.
      await putFile(alice, 'alice', 'from-bob.ipynb', attackNotebook(setup.hubUrl, setup.userOrigin('bob'), 'bob', 'alice'), 'json');
    });

    afterEach(async function () {
      if (this.currentTest?.state !== 'failed' || !current) return;
      fs.mkdirSync(OUTPUT, { recursive: true });
      const file = path.join(OUTPUT, `${setup.label}-failure-${Date.now()}.png`);
      await current.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      console.error(`failing page: ${current.url()}\nscreenshot: ${file}\n${problems.join('\n')}\n(hub log: test-output/${setup.label}.log)`);
    });

    after(async () => {
      await setup?.close();
    });

    async function runAttack(user: string, password: string, notebook: string): Promise<{ report: AttackReport; context: BrowserContext }> {
      const context = await setup.browser.newContext();
      context.setDefaultTimeout(SLOW_MS);
      const page = await context.newPage();
      current = page;
      page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
      await signInInBrowser(page, setup.hubUrl, user, password);
      // The hub's link to the server: a redirect with a one-time code to the server's own origin.
      await runNotebookInLab(page, `${setup.hubUrl}/hub/user-redirect/lab/tree/${notebook}`, SLOW_MS);
      assert.equal(new URL(page.url()).origin, setup.userOrigin(user), 'JupyterLab is on its own origin');
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

    /** The hub's log says it refused the cell's requests to /hub/api from the user origin. */
    function assertRefusalsLogged(origin: string): void {
      const lines = fs.readFileSync(path.join(OUTPUT, `${setup.label}.log`), 'utf8').split('\n').filter((l) => /refused a hub request from a foreign origin/.test(l));
      assert.ok(lines.some((l) => l.includes(origin)), `no refusal logged for ${origin}: ${lines.slice(-3).join('\n')}`);
    }

    it("an admin runs a cell that grabs the hub's XSRF token and posts a new admin: nothing is created, no server stops", async () => {
      const { report, context } = await runAttack('admin', ADMIN_PASSWORD, 'report.ipynb');
      try {
        assert.equal(report.origin, setup.userOrigin('admin'));
        // The hub's API answer can't be read from the user origin (no CORS), so there is no token.
        assert.doesNotMatch(report.readUser, /csrf_token/, report.readUser);
        assert.doesNotMatch(report.createAdmin, /^201/, report.createAdmin);
        assert.doesNotMatch(report.stopOwn, /^204/, report.stopOwn);
        // Nor can the cell read the classmate's server: not on bob's origin, not under bob's path here.
        assert.doesNotMatch(report.classmate, /problem set 3/, report.classmate);
        assert.doesNotMatch(report.classmateBlind, /problem set 3/, report.classmateBlind);
        assert.match(report.classmatePath, /^404/, report.classmatePath);
        await assertHubUntouched();
        assertRefusalsLogged(setup.userOrigin('admin'));
      } finally {
        await context.close();
      }
    });

    it("a student runs the same cell in a notebook a classmate handed over: it can't read the classmate's server or change the hub", async () => {
      const { report, context } = await runAttack('alice', 'alice-password', 'from-bob.ipynb');
      try {
        assert.equal(report.origin, setup.userOrigin('alice'));
        assert.doesNotMatch(report.readUser, /csrf_token/, report.readUser);
        assert.doesNotMatch(report.classmate, /problem set 3/, report.classmate);
        assert.doesNotMatch(report.classmateBlind, /problem set 3/, report.classmateBlind);
        assert.match(report.classmatePath, /^404/, report.classmatePath);
        await assertHubUntouched();
        assertRefusalsLogged(setup.userOrigin('alice'));
        // Bob's file is still there, and only bob reads it.
        const bob = await directClient(hub, 'bob', 'bob-password', false);
        const answers = await bob.get('/user/bob/api/contents/answers.txt', { accept: 'application/json' });
        assert.equal(answers.status, 200);
        assert.match(answers.body, /problem set 3/);
      } finally {
        await context.close();
      }
    });

    it('refuses with 403 and a log line a hub request that names a user origin, even with the session cookie', async () => {
      const me = JSON.parse((await adminApi.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
      const origin = setup.userOrigin('admin');
      const create = await adminApi.request('POST', '/hub/api/users', {
        headers: { origin, 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': me.csrf_token },
        body: JSON.stringify({ name: 'mallory4', password: 'mallory-password', roles: ['admin'] }),
      });
      assert.equal(create.status, 403);
      assert.equal(create.headers.get('access-control-allow-origin'), null);
      const read = await adminApi.get('/hub/api/user', { accept: 'application/json', origin });
      assert.equal(read.status, 403);
      assert.equal((await hub.users.get('mallory4')) ?? null, null);
      assertRefusalsLogged(origin);
      // The hub's own origin is still welcome.
      const own = await adminApi.get('/hub/api/user', { accept: 'application/json', origin: new URL(setup.hubUrl).origin });
      assert.equal(own.status, 200);
    });
  });
}

attackScenarios('trial defaults', () => trialDefaults());
attackScenarios('behind nginx with TLS', (users) => behindNginxWithTls(users));

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
