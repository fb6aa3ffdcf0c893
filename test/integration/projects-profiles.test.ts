import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { escapeName } from '../../server/names.js';
import { HubClient } from '../helpers/client.js';
import { cleanupInstance, docker, dockerExec, dockerHubConfig, requireDockerImage, TEST_IMAGE, TEST_R_IMAGE, testInstance } from '../helpers/docker.js';
import { ADMIN_PASSWORD, clientFor, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { acceptInvite, closeProjectHub, formPost } from '../helpers/projects.js';

/**
 * Issue 12, image profiles: a project offers its profiles (here Python and a site-built
 * "licensed" image made from images/licensed/Dockerfile.example, as the README tells a site to)
 * to its members. Members see and start them; everyone else sees the site's defaults only, and
 * a forged or foreign profile name is refused. The container's image comes from the profile.
 */

const REPO = path.resolve(__dirname, '../..');
const MEMBER_PASSWORD = 'amber falcon drifts slowly';
const OTHER_PASSWORD = 'cobalt meadow hums twice';

describe('research projects offer their image profiles, a licensed one included, to their members only', function () {
  this.timeout(300_000);
  const instance = testInstance('pj2p');
  const licensedImage = `${instance}-stata:test`;
  const smtp = new TestSmtp();
  let hub: Hub;
  let dataDir: string;
  let member: HubClient;
  let other: HubClient;
  let failed = false;

  before(async () => {
    await requireDockerImage();
    await requireDockerImage(TEST_R_IMAGE);
    // The site's "licensed" software: a stand-in program, built into an image exactly as documented.
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-pj2-licensed-'));
    fs.mkdirSync(path.join(ctx, 'licensed', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(ctx, 'licensed', 'bin', 'stata'), '#!/bin/sh\necho "licensed stand-in 18"\n', { mode: 0o755 });
    const built = await docker(['build', '-q', '-f', path.join(REPO, 'images/licensed/Dockerfile.example'), '--build-arg', `BASE=${TEST_IMAGE}`, '--build-arg', 'NAME=stata', '-t', licensedImage, ctx], 300_000);
    fs.rmSync(ctx, { recursive: true, force: true });
    assert.equal(built.code, 0, built.stderr);

    await smtp.start();
    dataDir = tempDataDir('pj2-profiles');
    hub = await startTestHub(
      'pj2-profiles',
      dockerHubConfig(instance, {
        dataDir,
        smtpHost: '127.0.0.1',
        smtpPort: smtp.port,
        smtpSecurity: 'none',
        dockerProfiles: [
          { name: 'python', displayName: 'Python', image: TEST_IMAGE, description: '' },
          { name: 'r', displayName: 'R', image: TEST_R_IMAGE, description: '' },
          { name: 'stata', displayName: 'Stata', image: licensedImage, description: 'licensed' },
        ],
        projectImageProfiles: ['python', 'r', 'stata'],
        dockerMemLimitMb: 512,
      }),
    );
    const admin = clientFor(hub);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-4201', name: 'Licensed analysis', unit: 'Health', leadEmail: 'pj2-lead@example.org', capacityGb: '0.03125', profiles: ['python', 'stata'] });
    assert.equal(res.status, 303, res.body.slice(0, 400));
    const [mail] = await smtp.waitFor('pj2-lead@example.org');
    member = await acceptInvite(hub, linkIn(mail!), 'pj2-lead', MEMBER_PASSWORD);
    await hub.users.createLocal('pj2-other', OTHER_PASSWORD);
    other = clientFor(hub);
    assert.equal((await other.login('pj2-other', OTHER_PASSWORD)).status, 303);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await closeProjectHub(hub, smtp, dataDir).catch(() => undefined);
    await cleanupInstance(instance, { printLogs: failed, extraImages: [licensedImage] });
  });

  const radios = (html: string): string[] => [...html.matchAll(/name="profile" value="([^"]+)"/g)].map((m) => m[1]!);

  it('a member is offered the site\'s defaults and their project\'s licensed profile; anyone else only the defaults', async () => {
    const mine = await member.get('/hub/spawn');
    assert.equal(mine.status, 200);
    assert.deepEqual(radios(mine.body), ['python', 'r', 'stata']);
    assert.match(mine.body, /Stata<\/strong> <span class="muted">licensed<\/span> <span class="muted project-profile">\(research project P-4201\)/);
    assert.deepEqual(radios((await member.get('/hub/home')).body), ['python', 'r', 'stata']);
    const theirs = await other.get('/hub/spawn');
    assert.deepEqual(radios(theirs.body), ['python', 'r']);
    assert.doesNotMatch(theirs.body, /Stata/);
  });

  it('a non-member who forges the licensed profile gets 403, a made-up profile 400, and no server starts', async () => {
    const page = await other.get('/hub/spawn');
    const forged = await other.request('POST', '/hub/spawn', { form: { _csrf: HubClient.csrfFrom(page.body), profile: 'stata' } });
    assert.equal(forged.status, 403);
    assert.match(forged.body, /offered only to members of a research project/);
    const made = await other.request('POST', '/hub/spawn', { form: { _csrf: HubClient.csrfFrom(page.body), profile: 'stata-free' } });
    assert.equal(made.status, 400);
    assert.match(made.body, /not offered here/);
    // The REST API goes through the same check.
    const me = JSON.parse((await other.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    const api = await other.request('POST', '/hub/api/users/pj2-other/server', { headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token, accept: 'application/json' }, body: JSON.stringify({ profile: 'stata' }) });
    assert.equal(api.status, 403, api.body);
    assert.equal(await hub.manager.status((await hub.users.get('pj2-other'))!), 'stopped');
    const r = await docker(['ps', '-a', '--filter', `label=org.oerhub.instance=${instance}`, '--format', '{{.Names}}']);
    assert.equal(r.stdout.trim(), '');
  });

  it('a member starts the licensed profile: the container runs the configured image (an image in the form is ignored), with the project folder', async () => {
    const page = await member.get('/hub/spawn');
    const res = await member.request('POST', '/hub/spawn', { form: { _csrf: HubClient.csrfFrom(page.body), profile: 'stata', image: TEST_R_IMAGE } });
    assert.equal(res.status, 303, res.body.slice(0, 300));
    await waitForReady(member, escapeName('pj2-lead'));
    const container = `${instance}-nb-${escapeName('pj2-lead')}`;
    const inspect = await docker(['inspect', '--format', '{{.Config.Image}} {{index .Config.Labels "org.oerhub.profile"}}', container]);
    assert.equal(inspect.stdout.trim(), `${licensedImage} stata`);
    const run = await dockerExec(container, ['bash', '-c', 'stata && echo hi > ~/projects/P-4201/from-stata.txt && cat ~/projects/P-4201/from-stata.txt']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'licensed stand-in 18\nhi\n');
  });
});
