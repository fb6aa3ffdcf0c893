import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../server/index.js';
import { escapeName } from '../../server/names.js';
import { createUsers, startTestHub } from '../helpers/hub.js';
import { launchBrowser, signInInBrowser } from '../helpers/browser.js';
import { notebook } from '../helpers/courses.js';
import { TestGitRepo } from '../helpers/git-repo.js';
import { cleanupInstance, dockerExec, dockerHubConfig, requireDockerImage, testInstance } from '../helpers/docker.js';

const OUTPUT = path.resolve(__dirname, '../../test-output');
const SLOW_MS = 120_000;

/** The nbgitpuller link a JupyterHub site would paste into its LMS, to this hub. */
function gitPullLink(hub: Hub, repo: string, urlpath: string): string {
  const q = new URLSearchParams({ repo, urlpath, branch: 'main' });
  return `${hub.url}/hub/user-redirect/git-pull?${q.toString()}`;
}

/**
 * Open an nbgitpuller link in Chromium and wait until JupyterLab shows the notebook: through
 * sign-in (when signed out), the progress page (when the server was stopped), the hand-over to
 * the server's own origin, and nbgitpuller's own page, which pulls and then moves on.
 */
async function openLink(page: Page, hub: Hub, link: string, signIn?: { name: string; password: string }): Promise<void> {
  await page.goto(link);
  if (signIn) {
    assert.match(page.url(), /\/hub\/login\?next=/);
    await page.getByLabel('Username').fill(signIn.name);
    await page.getByLabel('Password').fill(signIn.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.waitForURL((u) => u.pathname.includes('/lab/tree/'), { timeout: SLOW_MS });
  await page.locator('.jp-NotebookPanel:visible').waitFor({ timeout: SLOW_MS });
}

/**
 * nbgitpuller links (`/hub/user-redirect/git-pull?repo=…&urlpath=…&branch=…`) on both spawners,
 * in a real browser, from a real git repository that only this machine serves: the student
 * lands in JupyterLab with the repository's notebook in their home, and a second click after
 * an upstream commit brings the change.
 */
describe('nbgitpuller links land students in JupyterLab with the repository pulled', function () {
  this.timeout(400_000);
  let browser: Browser;
  const v1 = notebook('print("week 1, first version")');
  const v2 = notebook('print("week 1, fixed by the instructor")');
  const week2 = notebook('print("week 2")');

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
  });

  describe('local processes: the repository served over HTTP on 127.0.0.1', () => {
    let hub: Hub;
    let repo: TestGitRepo;
    let page: Page;
    const name = 'gpl-ann';
    const esc = escapeName(name);

    before(async () => {
      repo = await TestGitRepo.create({ 'week1.ipynb': v1 });
      hub = await startTestHub('nbgitpuller');
      await createUsers(hub, { [name]: 'gpl-ann-password' });
      page = await (await browser.newContext()).newPage();
    });

    afterEach(async function () {
      if (this.currentTest?.state === 'failed') await page?.screenshot({ path: path.join(OUTPUT, `nbgitpuller-local-failure-${Date.now()}.png`) }).catch(() => undefined);
    });

    after(async () => {
      await page?.context().close();
      await hub?.close();
      await repo?.close();
    });

    it('a signed-out student clicks the link, signs in, and lands on the pulled notebook; a second click brings the new commit', async () => {
      const url = await repo.serve();
      const link = gitPullLink(hub, url, 'lab/tree/course/week1.ipynb');
      const home = path.join(hub.config.dataDir, 'homes', esc);

      await openLink(page, hub, link, { name, password: 'gpl-ann-password' });
      assert.equal(new URL(page.url()).pathname, `/user/${esc}/lab/tree/course/week1.ipynb`);
      assert.equal(fs.readFileSync(path.join(home, 'course', 'week1.ipynb'), 'utf8'), v1);
      // The clone is the student's, made by their own server's account.
      assert.notEqual(fs.statSync(path.join(home, 'course', 'week1.ipynb')).uid, process.getuid?.());

      await repo.commit({ 'week1.ipynb': v2, 'week2.ipynb': week2 }, 'fix week 1, add week 2');
      await openLink(page, hub, gitPullLink(hub, url, 'lab/tree/course/week2.ipynb'));
      assert.equal(new URL(page.url()).pathname, `/user/${esc}/lab/tree/course/week2.ipynb`);
      assert.equal(fs.readFileSync(path.join(home, 'course', 'week1.ipynb'), 'utf8'), v2);
      assert.equal(fs.readFileSync(path.join(home, 'course', 'week2.ipynb'), 'utf8'), week2);
    });

    it('a link without urlpath opens the pulled folder in JupyterLab (the local environment has no classic notebook)', async () => {
      const q = new URLSearchParams({ repo: await repo.serve(), branch: 'main' });
      await page.goto(`${hub.url}/hub/user-redirect/git-pull?${q.toString()}`);
      await page.waitForURL((u) => u.pathname.startsWith(`/user/${esc}/lab/tree/course`), { timeout: SLOW_MS });
      await page.locator('.jp-DirListing-item', { hasText: 'week2.ipynb' }).waitFor({ timeout: SLOW_MS });
    });

    it('a hostile link that would pull into a folder whose files run (~/.ipython startup) gets a clear 400 page, from the hub and from the server\'s own origin, and pulls nothing', async () => {
      const url = await repo.serve();
      const home = path.join(hub.config.dataDir, 'homes', esc);
      const startup = path.join(home, '.ipython', 'profile_default', 'startup');
      fs.rmSync(startup, { recursive: true, force: true });
      const hostile = new URLSearchParams({ repo: url, branch: 'main', targetpath: '.ipython/profile_default/startup' });
      const viaHub = await page.goto(`${hub.url}/hub/user-redirect/git-pull?${hostile.toString()}`);
      assert.equal(viaHub?.status(), 400);
      await page.getByText('hidden folder').waitFor();
      // Straight at nbgitpuller's API on the student's own origin, as the link's page would call it.
      const serverOrigin = `http://${esc}.localhost:${new URL(hub.url).port}`;
      const direct = await page.goto(`${serverOrigin}/user/${esc}/git-pull/api?${hostile.toString()}`);
      assert.equal(direct?.status(), 400, `${direct?.url()}: ${await direct?.text()}`);
      assert.deepEqual(fs.existsSync(startup) ? fs.readdirSync(startup) : [], [], 'nothing was pulled where kernels run it');
    });
  });

  describe('Docker: the repository bind-mounted read-only as a dataset, pulled from file://', () => {
    const instance = testInstance('gpl');
    let hub: Hub;
    let repo: TestGitRepo;
    let page: Page;
    let failed = false;
    const name = 'gpl-dan';
    const esc = escapeName(name);
    const container = `${instance}-nb-${esc}`;

    before(async () => {
      await requireDockerImage();
      repo = await TestGitRepo.create({ 'week1.ipynb': v1 });
      // The image's notebook user (uid 1000) owns it, as it would own a repository it cloned:
      // git refuses repositories of other owners ("dubious ownership").
      repo.chownTo(1000);
      hub = await startTestHub('nbgitpuller-docker', dockerHubConfig(instance, { dockerDatasets: [{ source: repo.root, name: 'git' }], dockerMemLimitMb: 512 }));
      await createUsers(hub, { [name]: 'gpl-dan-password' });
      page = await (await browser.newContext()).newPage();
    });

    afterEach(async function () {
      if (this.currentTest?.state !== 'failed') return;
      failed = true;
      await page?.screenshot({ path: path.join(OUTPUT, `nbgitpuller-docker-failure-${Date.now()}.png`) }).catch(() => undefined);
    });

    after(async () => {
      await page?.context().close();
      await hub?.close().catch(() => undefined);
      await cleanupInstance(instance, { printLogs: failed });
      await repo?.close();
    });

    it('a signed-in student clicks the link and lands on the pulled notebook in their container; a second click brings the new commit', async () => {
      await signInInBrowser(page, hub.url, name, 'gpl-dan-password');
      const url = 'file:///home/student/datasets/git/course';
      await openLink(page, hub, gitPullLink(hub, url, 'lab/tree/course/week1.ipynb'));
      assert.equal(new URL(page.url()).pathname, `/user/${esc}/lab/tree/course/week1.ipynb`);
      assert.equal((await dockerExec(container, ['cat', '/home/student/course/week1.ipynb'])).stdout, v1);

      await repo.commit({ 'week1.ipynb': v2, 'week2.ipynb': week2 }, 'fix week 1, add week 2');
      await openLink(page, hub, gitPullLink(hub, url, 'lab/tree/course/week2.ipynb'));
      assert.equal((await dockerExec(container, ['cat', '/home/student/course/week1.ipynb'])).stdout, v2);
      assert.equal((await dockerExec(container, ['cat', '/home/student/course/week2.ipynb'])).stdout, week2);
    });
  });
});
