import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { escapeName } from '../../server/names.js';
import { HubClient } from '../helpers/client.js';
import { cleanupInstance, docker, dockerExec, dockerHubConfig, requireDockerImage, testInstance } from '../helpers/docker.js';
import { ADMIN_PASSWORD, clientFor, signInAndStart, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { launchBrowser, signInInBrowser } from '../helpers/browser.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { acceptInvite, closeProjectHub, formPost, pathOf } from '../helpers/projects.js';

/**
 * Issue 12, a member added while their server runs. Local spawner: the running server gets the
 * folder at once (ACL entries + links in the home), seen by a kernel that was already running.
 * Docker: a bind can't be added to a running container, so the project page (and the home page's
 * project list) says "restart your server to see the project folder", with a button that does.
 */

const LEAD_PASSWORD = 'orchid lantern rivers nine';
const DORA_PASSWORD = 'pepper summit willow forty';

interface Setup {
  hub: Hub;
  lead: HubClient;
  dora: HubClient;
}

/** A project (its lead signed in) and Dora, signed in with her server running, not yet a member. */
async function setUp(hub: Hub, smtp: TestSmtp, number: string, leadName: string, doraName: string): Promise<Setup> {
  const admin = clientFor(hub);
  assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
  const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number, name: 'Running servers', unit: 'Health', leadEmail: `${leadName}@example.org`, capacityGb: '0.03125' });
  assert.equal(res.status, 303, res.body.slice(0, 300));
  const [mail] = await smtp.waitFor(`${leadName}@example.org`);
  const lead = await acceptInvite(hub, linkIn(mail!), leadName, LEAD_PASSWORD);
  await hub.users.createLocal(doraName, DORA_PASSWORD);
  const dora = await signInAndStart(hub, doraName, DORA_PASSWORD);
  return { hub, lead, dora };
}

/** The lead invites Dora; Dora, signed in with her server running, follows the link and joins. */
async function doraJoins(s: Setup, smtp: TestSmtp, number: string, doraName: string): Promise<void> {
  assert.equal((await formPost(s.lead, `/hub/projects/${number}`, `/hub/projects/${number}/invite`, { email: `${doraName}@example.org` })).status, 303);
  const [mail] = await smtp.waitFor(`${doraName}@example.org`);
  const page = await s.dora.get(pathOf(linkIn(mail!)));
  assert.match(page.body, new RegExp(`Join as ${doraName}`));
  const joined = await s.dora.request('POST', `/hub/invite/join?token=${new URL(linkIn(mail!)).searchParams.get('token')}`, { form: { _csrf: HubClient.csrfFrom(page.body) } });
  assert.equal(joined.status, 303);
}

async function homeList(client: HubClient): Promise<{ number: string; restartNeeded: boolean }[]> {
  return (JSON.parse((await client.get('/hub/projects?format=json', { accept: 'application/json' })).body) as { projects: { number: string; restartNeeded: boolean }[] }).projects;
}

describe('a member added while their server runs (local spawner): the folder appears without a restart', function () {
  this.timeout(180_000);
  const smtp = new TestSmtp();
  let dataDir: string;
  let s: Setup;
  let kernel: KernelSocket | undefined;

  before(async () => {
    await smtp.start();
    dataDir = tempDataDir('pj2-live');
    const hub = await startTestHub('pj2-live', { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none' });
    s = await setUp(hub, smtp, 'P-4401', 'pj2-llead', 'pj2-dora');
  });

  after(async () => {
    kernel?.close();
    await closeProjectHub(s?.hub, smtp, dataDir);
  });

  it('a kernel that ran before the join reads and writes the project folder at once; the server was not restarted', async () => {
    const esc = escapeName('pj2-dora');
    kernel = await KernelSocket.open(s.dora, esc, await startKernel(s.dora, esc));
    const before = (await s.hub.manager.list()).find((x) => x.user === 'pj2-dora')!;
    assert.equal((await kernel.execute("import os; print(os.path.exists(os.path.expanduser('~/projects/P-4401')))")).trim(), 'False');
    fs.writeFileSync(path.join(dataDir, 'projects', 'P-4401', 'mnt', 'shared', 'from-lead.txt'), 'hello dora\n');

    await doraJoins(s, smtp, 'P-4401', 'pj2-dora');

    // The same kernel, in the same server process: the link and the ACL are there now.
    assert.equal((await kernel.execute("import os; print(open(os.path.expanduser('~/projects/P-4401/from-lead.txt')).read().strip())")).trim(), 'hello dora');
    await kernel.execute("import os; open(os.path.expanduser('~/projects/P-4401/from-dora.txt'), 'w').write('thanks\\n')");
    assert.equal(fs.readFileSync(path.join(dataDir, 'projects', 'P-4401', 'mnt', 'shared', 'from-dora.txt'), 'utf8'), 'thanks\n');
    // The file browser lists it too.
    const listing = await s.dora.get(`/user/${esc}/api/contents/projects`, { accept: 'application/json' });
    assert.equal(listing.status, 200, listing.body.slice(0, 200));
    assert.deepEqual((JSON.parse(listing.body) as { content: { name: string }[] }).content.map((c) => c.name).sort(), ['P-4401', 'P-4401-datasets']);
    const after = (await s.hub.manager.list()).find((x) => x.user === 'pj2-dora')!;
    assert.equal(after.startedAt, before.startedAt, 'the same server');
    // No restart notice anywhere.
    assert.doesNotMatch((await s.dora.get('/hub/projects/P-4401')).body, /id="restart-needed"/);
    assert.deepEqual(await homeList(s.dora), [{ number: 'P-4401', name: 'Running servers', unit: 'Health', restartNeeded: false }]);
  });
});

describe('a member added while their Docker container runs: "restart your server to see the project folder"', function () {
  this.timeout(300_000);
  const instance = testInstance('pj2r');
  const smtp = new TestSmtp();
  let dataDir: string;
  let s: Setup;
  let failed = false;
  const container = `${instance}-nb-${escapeName('pj2-dana')}`;

  before(async () => {
    await requireDockerImage();
    await smtp.start();
    dataDir = tempDataDir('pj2-restart');
    const hub = await startTestHub('pj2-restart', dockerHubConfig(instance, { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none', dockerMemLimitMb: 512 }));
    s = await setUp(hub, smtp, 'P-4402', 'pj2-dlead', 'pj2-dana');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await closeProjectHub(s?.hub, smtp, dataDir).catch(() => undefined);
    await cleanupInstance(instance, { printLogs: failed });
  });

  it('after joining, the running container has no folder, and the project page and home list say to restart', async () => {
    const idBefore = (await docker(['inspect', '--format', '{{.Id}}', container])).stdout.trim();
    assert.ok(idBefore);
    await doraJoins(s, smtp, 'P-4402', 'pj2-dana');
    const ls = await dockerExec(container, ['ls', '/home/student/projects/P-4402']);
    assert.notEqual(ls.code, 0, 'a running container gets no new bind');
    const page = await s.dora.get('/hub/projects/P-4402');
    assert.equal(page.status, 200);
    assert.match(page.body, /id="restart-needed"/);
    assert.match(page.body, /Restart your server to see the project folder/);
    assert.match(page.body, /action="\/hub\/projects\/P-4402\/restart-server"/);
    assert.deepEqual((await homeList(s.dora)).map((p) => [p.number, p.restartNeeded]), [['P-4402', true]]);
    // Other members are not told anything.
    assert.doesNotMatch((await s.lead.get('/hub/projects/P-4402')).body, /id="restart-needed"/);
    assert.equal((await docker(['inspect', '--format', '{{.Id}}', container])).stdout.trim(), idBefore, 'nothing restarted by itself');
  });

  it('in Chromium, the home page shows the notice; its button restarts the server, whose new container has the folder', async () => {
    const browser = await launchBrowser();
    try {
      const page = await (await browser.newContext()).newPage();
      await signInInBrowser(page, s.hub.url, 'pj2-dana', DORA_PASSWORD);
      await page.goto(`${s.hub.url}/hub/home`);
      const notice = page.locator('#projects-home .restart-needed');
      await notice.waitFor({ timeout: 15_000 });
      assert.match(await notice.innerText(), /Restart your server to see the project folder/);
      await notice.getByRole('button', { name: 'Restart my server' }).click();
      // The progress page, then (once the new container is ready) the project's page.
      await page.waitForURL((u) => u.pathname === '/hub/projects/P-4402', { timeout: 150_000 });
      assert.equal(await page.locator('#restart-needed').count(), 0, 'the notice is gone');
    } finally {
      await browser.close();
    }
    const w = await dockerExec(container, ['bash', '-c', 'echo from-dana > ~/projects/P-4402/d.txt && cat ~/projects/P-4402/d.txt']);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(fs.readFileSync(path.join(dataDir, 'projects', 'P-4402', 'mnt', 'shared', 'd.txt'), 'utf8'), 'from-dana\n');
    assert.deepEqual((await homeList(s.dora)).map((p) => [p.number, p.restartNeeded]), [['P-4402', false]]);
  });

  it('the project page\'s button (a plain form) restarts it too, to the progress page', async () => {
    const before = (await docker(['inspect', '--format', '{{.Id}}', container])).stdout.trim();
    const page = await s.dora.get('/hub/projects/P-4402');
    const res = await s.dora.request('POST', '/hub/projects/P-4402/restart-server', { form: { _csrf: HubClient.csrfFrom(page.body) } });
    assert.equal(res.status, 303);
    assert.equal(res.location, `/hub/spawn-pending/${escapeName('pj2-dana')}?next=%2Fhub%2Fprojects%2FP-4402`);
    await waitForReady(s.dora, escapeName('pj2-dana'));
    assert.notEqual((await docker(['inspect', '--format', '{{.Id}}', container])).stdout.trim(), before, 'a new container');
    // A non-member can't restart anything through a project's page.
    const stranger = clientFor(s.hub);
    await stranger.login('pj2-dlead', LEAD_PASSWORD);
    const other = await stranger.request('POST', '/hub/projects/P-9999/restart-server', { form: { _csrf: HubClient.csrfFrom((await stranger.get('/hub/home')).body) } });
    assert.equal(other.status, 404);
  });
});
