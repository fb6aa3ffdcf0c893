import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { ADMIN_PASSWORD, clientFor, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { closeProjectHub } from '../helpers/projects.js';

/**
 * Issue 12, "What must be shown": a data librarian's journey on the default hub (local spawner,
 * each server its own Unix account, since tests run as root), a real SMTP server, real
 * ext4 images with a fixed size, and real kernels doing the writing and reading.
 */

const LEAD_PASSWORD = 'violet lantern orbits quietly';
const MEMBER_PASSWORD = 'seven copper kites drifting';
const OTHER_PASSWORD = 'marble thistle harbour echoes';

function pathOf(link: string): string {
  const u = new URL(link);
  return u.pathname + u.search;
}

/** Follow an emailed link and choose a username and password; returns the signed-in client and where it landed. */
async function acceptInvite(hub: Hub, link: string, username: string, password: string): Promise<{ client: HubClient; location: string | null; status: number }> {
  const client = clientFor(hub);
  const page = await client.get(pathOf(link));
  assert.equal(page.status, 200, page.body.slice(0, 500));
  assert.match(page.body, /Join research project/);
  const res = await client.request('POST', pathOf(link), { form: { _csrf: HubClient.csrfFrom(page.body), username, password, confirm: password } });
  return { client, location: res.location, status: res.status };
}

/** Start the signed-in user's server and open it (through the origin handoff), as the home page's button does. */
async function startServer(hub: Hub, client: HubClient, name: string): Promise<void> {
  const user = await hub.users.get(name);
  assert.ok(user);
  await client.get('/hub/spawn');
  await waitForReady(client, user.escapedName);
  const { handoff } = await client.openServer('/lab');
  assert.equal(handoff?.location, `/user/${user.escapedName}/lab`);
}

async function kernelOf(hub: Hub, client: HubClient, name: string): Promise<KernelSocket> {
  const escaped = (await hub.users.get(name))!.escapedName;
  return KernelSocket.open(client, escaped, await startKernel(client, escaped));
}

async function formPost(client: HubClient, pagePath: string, action: string, form: Record<string, string>) {
  const page = await client.get(pagePath);
  return client.request('POST', action, { form: { _csrf: HubClient.csrfFrom(page.body), ...form } });
}

describe('research projects: one emailed invitation, one sign-in, a shared folder with a real capacity', function () {
  this.timeout(300_000);
  const smtp = new TestSmtp();
  let hub: Hub;
  let dataDir: string;
  let admin: HubClient;
  let lead: HubClient;
  let member: HubClient;
  let other: HubClient;
  const kernels: KernelSocket[] = [];
  let leadLink = '';

  before(async () => {
    await smtp.start();
    // A data folder of our own, so that its project filesystems are unmounted before it is removed.
    dataDir = tempDataDir('prj-journey');
    hub = await startTestHub('prj-journey', { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none' });
    admin = clientFor(hub);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
  });

  after(async () => {
    for (const k of kernels) k.close();
    await closeProjectHub(hub, smtp, dataDir);
  });

  it('an admin creates P-1234 (Health, 2 GB); the lead gets exactly one email with a link, and no password', async () => {
    const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-1234', name: 'Readmissions after discharge', unit: 'Health', leadEmail: 'prj-lead@example.org', capacityGb: '2', profiles: 'python' });
    assert.equal(res.status, 303, res.body.slice(0, 400));
    assert.equal(res.location, '/hub/projects/P-1234');
    const [mail, ...more] = await smtp.waitFor('prj-lead@example.org');
    assert.equal(more.length, 0);
    leadLink = linkIn(mail!);
    assert.match(mail!.raw, /P-1234/);
    assert.doesNotMatch(mail!.raw, /password:/i);
    const page = await admin.get('/hub/projects/P-1234');
    assert.equal(page.status, 200);
    assert.match(page.body, /Readmissions after discharge/);
    // Usage against capacity, from the filesystem itself (a 2 GB image).
    assert.match(page.body, /id="project-usage">[\d.]+ MB used of (20[0-4]\d|19\d\d) MB/);
  });

  it('the lead follows the link, sets a strong password, and lands in the project signed in', async () => {
    // A weak password is refused, and the link still works afterwards.
    const weak = await acceptInvite(hub, leadLink, 'prj-lead', 'password1234');
    assert.equal(weak.status, 400);
    const ok = await acceptInvite(hub, leadLink, 'prj-lead', LEAD_PASSWORD);
    assert.equal(ok.status, 303);
    assert.equal(ok.location, '/hub/projects/P-1234');
    lead = ok.client;
    const page = await lead.get('/hub/projects/P-1234');
    assert.equal(page.status, 200);
    assert.match(page.body, /prj-lead \(lead\)/);
    const list = JSON.parse((await lead.get('/hub/projects?format=json')).body) as { projects: { number: string }[] };
    assert.deepEqual(list.projects.map((p) => p.number), ['P-1234']);
  });

  it('a used, a tampered and a malformed link each get a clear page', async () => {
    const c = clientFor(hub);
    const used = await c.get(pathOf(leadLink));
    assert.equal(used.status, 410);
    assert.match(used.body, /used already/);
    const token = new URL(leadLink).searchParams.get('token')!;
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const tampered = await c.get(`/hub/invite?token=${flipped}`);
    assert.equal(tampered.status, 404);
    assert.match(tampered.body, /not known here/);
    const cut = await c.get(`/hub/invite?token=${token.slice(0, 20)}`);
    assert.equal(cut.status, 400);
    assert.match(cut.body, /not complete/);
  });

  it('the lead invites a member, who gets one email, sets a password and joins', async () => {
    const res = await formPost(lead, '/hub/projects/P-1234', '/hub/projects/P-1234/invite', { email: 'prj-member@example.org' });
    assert.equal(res.status, 303);
    const mails = await smtp.waitFor('prj-member@example.org');
    assert.equal(mails.length, 1);
    const ok = await acceptInvite(hub, linkIn(mails[0]!), 'prj-member', MEMBER_PASSWORD);
    assert.equal(ok.location, '/hub/projects/P-1234');
    member = ok.client;
    assert.match((await member.get('/hub/projects/P-1234')).body, /prj-member/);
    // Exactly one mail each, in all.
    assert.equal(smtp.to('prj-lead@example.org').length, 1);
    assert.equal(smtp.to('prj-member@example.org').length, 1);
  });

  it('both see the shared folder in their servers: a file one writes, the other reads', async () => {
    await startServer(hub, lead, 'prj-lead');
    await startServer(hub, member, 'prj-member');
    const lk = await kernelOf(hub, lead, 'prj-lead');
    const mk = await kernelOf(hub, member, 'prj-member');
    kernels.push(lk, mk);
    await lk.execute("import os; open(os.path.expanduser('~/projects/P-1234/cohort.csv'), 'w').write('id,age\\n1,54\\n')");
    const read = await mk.execute("import os; print(open(os.path.expanduser('~/projects/P-1234/cohort.csv')).read().splitlines()[1])");
    assert.equal(read.trim(), '1,54');
    // The shared folder is the team's: the member may change the lead's file too.
    await mk.execute("import os; open(os.path.expanduser('~/projects/P-1234/cohort.csv'), 'a').write('2,61\\n')");
    assert.equal((await lk.execute("import os; print(len(open(os.path.expanduser('~/projects/P-1234/cohort.csv')).read().splitlines()))")).trim(), '3');
    // The project's datasets folder is read-only for members.
    const ro = await mk.execute("import os\ntry:\n    open(os.path.expanduser('~/projects/P-1234-datasets/x'), 'w')\n    print('written')\nexcept OSError as e:\n    print(type(e).__name__)");
    assert.equal(ro.trim(), 'PermissionError');
  });

  it('writing past a project\'s capacity fails inside the notebook with ENOSPC; usage shows it; another project is unaffected', async () => {
    const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-1235', name: 'Small survey', unit: 'International', leadEmail: 'prj-other@example.org', capacityGb: '0.03125', profiles: 'python' });
    assert.equal(res.status, 303, res.body.slice(0, 300));
    const [mail] = await smtp.waitFor('prj-other@example.org');
    const ok = await acceptInvite(hub, linkIn(mail!), 'prj-other', OTHER_PASSWORD);
    other = ok.client;
    await startServer(hub, other, 'prj-other');
    const ok2 = await kernelOf(hub, other, 'prj-other');
    kernels.push(ok2);
    const out = await ok2.execute(
      [
        'import os, errno',
        "p = os.path.expanduser('~/projects/P-1235/big.bin')",
        'try:',
        "    with open(p, 'wb') as f:",
        '        for _ in range(64):',
        "            f.write(b'x' * (1 << 20))",
        '            f.flush(); os.fsync(f.fileno())',
        "    print('no error')",
        'except OSError as e:',
        '    print(errno.errorcode[e.errno])',
      ].join('\n'),
    );
    assert.equal(out.trim(), 'ENOSPC');
    const page = await other.get('/hub/projects/P-1235');
    const m = /id="project-usage">([\d.]+) MB used of (\d+) MB/.exec(page.body);
    assert.ok(m, page.body);
    assert.ok(Number(m[1]) >= Number(m[2]) * 0.9, `usage ${m[1]} of ${m[2]}`);
    // P-1234 still takes writes.
    const lk = kernels[0]!;
    const fine = await lk.execute("import os; open(os.path.expanduser('~/projects/P-1234/more.bin'), 'wb').write(b'y' * (4 << 20)); print('ok')");
    assert.equal(fine.trim(), 'ok');
  });

  it('a member of one project can see neither the other project\'s page nor its folder', async () => {
    assert.equal((await other.get('/hub/projects/P-1234')).status, 404);
    assert.equal((await lead.get('/hub/projects/P-1235')).status, 404);
    const shared = path.join(dataDir, 'projects', 'P-1234', 'mnt', 'shared', 'cohort.csv');
    const tried = await kernels[2]!.execute(`try:\n    print(open(${JSON.stringify(shared)}).read())\nexcept OSError as e:\n    print(type(e).__name__)`);
    assert.equal(tried.trim(), 'PermissionError');
  });

  it('a password change from the hub page works at once; the old password stops working and other sign-ins end', async () => {
    const elsewhere = clientFor(hub);
    assert.equal((await elsewhere.login('prj-lead', LEAD_PASSWORD)).status, 303);
    assert.equal((await elsewhere.get('/hub/home')).status, 200);
    const weak = await formPost(lead, '/hub/account', '/hub/account/password', { current: LEAD_PASSWORD, password: 'prj-lead2024!', confirm: 'prj-lead2024!' });
    assert.equal(weak.status, 400);
    const wrong = await formPost(lead, '/hub/account', '/hub/account/password', { current: 'not it at all', password: 'tidal garnet meadow sixty', confirm: 'tidal garnet meadow sixty' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /current password is not right/);
    const changed = await formPost(lead, '/hub/account', '/hub/account/password', { current: LEAD_PASSWORD, password: 'tidal garnet meadow sixty', confirm: 'tidal garnet meadow sixty' });
    assert.equal(changed.status, 303);
    assert.equal((await lead.get('/hub/account?changed=1')).status, 200);
    assert.equal((await clientFor(hub).login('prj-lead', LEAD_PASSWORD)).status, 401);
    assert.equal((await clientFor(hub).login('prj-lead', 'tidal garnet meadow sixty')).status, 303);
    const ended = await elsewhere.get('/hub/home');
    assert.equal(ended.status, 302);
    assert.match(ended.location ?? '', /^\/hub\/login/);
  });

  it('a forgotten password is reset by a one-time emailed link; the old one stops working and other sign-ins end', async () => {
    const elsewhere = clientFor(hub);
    assert.equal((await elsewhere.login('prj-other', OTHER_PASSWORD)).status, 303);
    const asked = await formPost(clientFor(hub), '/hub/account/forgot', '/hub/account/forgot', { email: 'prj-other@example.org' });
    assert.equal(asked.status, 200);
    assert.match(asked.body, /id="reset-sent"/);
    // An address without an account gets the same page and no mail.
    const unknown = await formPost(clientFor(hub), '/hub/account/forgot', '/hub/account/forgot', { email: 'prj-nobody@example.org' });
    assert.match(unknown.body, /id="reset-sent"/);
    const mails = await smtp.waitFor('prj-other@example.org', 2);
    assert.equal(mails.length, 2);
    assert.equal(smtp.to('prj-nobody@example.org').length, 0);
    const m = /https?:\/\/[^\s]+\/hub\/account\/reset\?token=[A-Za-z0-9_-]+/.exec(mails[1]!.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '='));
    assert.ok(m, mails[1]!.raw);
    const c = clientFor(hub);
    const page = await c.get(pathOf(m[0]));
    assert.equal(page.status, 200);
    assert.match(page.body, /prj-other/);
    const weak = await c.request('POST', pathOf(m[0]), { form: { _csrf: HubClient.csrfFrom(page.body), password: 'qwertyuiop123', confirm: 'qwertyuiop123' } });
    assert.equal(weak.status, 400);
    const done = await c.request('POST', pathOf(m[0]), { form: { _csrf: HubClient.csrfFrom(weak.body), password: 'pebble orchid saturn canal', confirm: 'pebble orchid saturn canal' } });
    assert.equal(done.status, 303);
    assert.equal((await clientFor(hub).login('prj-other', OTHER_PASSWORD)).status, 401);
    assert.equal((await clientFor(hub).login('prj-other', 'pebble orchid saturn canal')).status, 303);
    assert.equal((await elsewhere.get('/hub/home')).status, 302);
    assert.equal((await clientFor(hub).get(pathOf(m[0]))).status, 410);
  });

  it('a removed member loses the folder at once: their server is stopped and the project page is 404', async () => {
    const res = await formPost(lead, '/hub/projects/P-1234', '/hub/projects/P-1234/remove', { name: 'prj-member' });
    assert.equal(res.status, 303);
    assert.equal((await member.get('/hub/projects/P-1234')).status, 404);
    const memberUser = await hub.users.get('prj-member');
    assert.equal((await hub.manager.state(memberUser!)).state, 'stopped');
    // Started again, the server has no project folder, and the path itself is refused.
    await startServer(hub, member, 'prj-member');
    const mk = await kernelOf(hub, member, 'prj-member');
    kernels.push(mk);
    const shared = path.join(dataDir, 'projects', 'P-1234', 'mnt', 'shared', 'cohort.csv');
    const out = await mk.execute(`import os\nprint(os.path.exists(os.path.expanduser('~/projects/P-1234')))\ntry:\n    open(${JSON.stringify(shared)}).read()\n    print('read')\nexcept OSError as e:\n    print(type(e).__name__)`);
    assert.deepEqual(out.trim().split('\n'), ['False', 'PermissionError']);
  });

  it('closing a project archives its folder as a tarball the admin downloads, then removes it', async () => {
    const res = await formPost(admin, '/hub/projects/P-1235', '/hub/projects/P-1235/close', {});
    assert.equal(res.status, 303);
    const page = await admin.get('/hub/projects/P-1235');
    assert.match(page.body, /closed/);
    const archive = await admin.get('/hub/projects/P-1235/archive');
    assert.equal(archive.status, 200);
    assert.equal(archive.headers.get('content-type'), 'application/gzip');
    assert.equal(fs.existsSync(path.join(dataDir, 'projects', 'P-1235')), false);
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
    assert.doesNotMatch(mounts, /P-1235/);
    // Its member no longer sees it (signed in again: the password reset above ended their sessions).
    const again = clientFor(hub);
    assert.equal((await again.login('prj-other', 'pebble orchid saturn canal')).status, 303);
    assert.equal((await again.get('/hub/projects/P-1235')).status, 404);
    assert.equal((await clientFor(hub).get('/hub/projects/P-1235/archive')).status, 302);
  });
});
