import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { escapeName } from '../../server/names.js';
import { accountNameOf } from '../../server/spawner/unix-accounts.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, clientFor, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { acceptInvite, closeProjectHub, formPost } from '../helpers/projects.js';

/**
 * Issue 12, deleting a user on the default (local, root) hub: with their files, the Unix
 * account `oh-NAME` their server ran as, its ACL entries in the project folders and their
 * server's log go; keeping their files, the account, home and log stay, but project membership
 * and ACL entries go either way.
 */

const LEAD_PASSWORD = 'saffron bridges hum slowly';
const PASSWORDS: Record<string, string> = { 'pj2-ezra': 'lilac tundra mirrors eight', 'pj2-fay': 'cobble nectar spins wildly' };

function uidOf(account: string): number | null {
  const r = spawnSync('getent', ['passwd', account], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.split(':')[2]) : null;
}

/** Every ACL line of the project's folders naming this uid (numerically), through the whole tree. */
function aclLinesOf(mnt: string, uid: number): string[] {
  const out = execFileSync('getfacl', ['-R', '-P', '-n', '-p', mnt], { encoding: 'utf8', maxBuffer: 16 << 20 });
  return out.split('\n').filter((l) => new RegExp(`^(default:)?user:${uid}:`).test(l));
}

describe('deleting a user removes their Unix account, project ACL entries and log (or says what stays)', function () {
  this.timeout(240_000);
  const smtp = new TestSmtp();
  let hub: Hub;
  let dataDir: string;
  let admin: HubClient;
  let lead: HubClient;
  const kernels: KernelSocket[] = [];
  const uids: Record<string, number> = {};
  const mnt = (): string => path.join(dataDir, 'projects', 'P-4501', 'mnt');

  async function deleteUser(name: string, data: 'keep' | 'remove'): Promise<void> {
    const page = await admin.get(`/hub/admin/users/${escapeName(name)}/delete`);
    assert.equal(page.status, 200);
    const res = await admin.request('POST', `/hub/admin/users/${escapeName(name)}/delete`, { form: { _csrf: HubClient.csrfFrom(page.body), data, confirm: name } });
    assert.equal(res.status, 303, res.body.slice(0, 300));
    assert.equal(await hub.users.get(name), null);
  }

  before(async () => {
    await smtp.start();
    dataDir = tempDataDir('pj2-delete');
    hub = await startTestHub('pj2-delete', { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none' });
    admin = clientFor(hub);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-4501', name: 'Leaving members', unit: 'International', leadEmail: 'pj2-lead5@example.org', capacityGb: '0.03125' });
    assert.equal(res.status, 303, res.body.slice(0, 300));
    lead = await acceptInvite(hub, linkIn((await smtp.waitFor('pj2-lead5@example.org'))[0]!), 'pj2-lead5', LEAD_PASSWORD);
    // Two members join, start their servers (each gets its account and ACL entries) and write a file.
    for (const name of ['pj2-ezra', 'pj2-fay']) {
      assert.equal((await formPost(lead, '/hub/projects/P-4501', '/hub/projects/P-4501/invite', { email: `${name}@example.org` })).status, 303);
      const client = await acceptInvite(hub, linkIn((await smtp.waitFor(`${name}@example.org`))[0]!), name, PASSWORDS[name]!);
      const esc = escapeName(name);
      await client.get('/hub/spawn');
      await waitForReady(client, esc);
      await client.openServer('/lab');
      const k = await KernelSocket.open(client, esc, await startKernel(client, esc));
      kernels.push(k);
      await k.execute(`import os; open(os.path.expanduser('~/projects/P-4501/${name}.txt'), 'w').write('mine\\n')`);
      const uid = uidOf(accountNameOf(esc));
      assert.ok(uid !== null, `the account of ${name} exists`);
      uids[name] = uid;
      assert.ok(aclLinesOf(mnt(), uid).length > 0, `${name} has ACL entries`);
    }
    for (const k of kernels) k.close();
  });

  after(async () => {
    await closeProjectHub(hub, smtp, dataDir);
  });

  it('with their files: the home, the server log, the account oh-NAME and every project ACL entry go; their project files stay', async () => {
    const esc = escapeName('pj2-ezra');
    const account = accountNameOf(esc);
    assert.ok(fs.existsSync(path.join(dataDir, 'logs', `${esc}.log`)), 'the server wrote a log');
    await deleteUser('pj2-ezra', 'remove');
    assert.equal(uidOf(account), null, `${account} is gone from /etc/passwd`);
    assert.equal(fs.existsSync(path.join(dataDir, 'accounts', `${esc}.json`)), false);
    assert.equal(fs.existsSync(path.join(dataDir, 'homes', esc)), false);
    assert.equal(fs.existsSync(path.join(dataDir, 'logs', `${esc}.log`)), false);
    assert.deepEqual(aclLinesOf(mnt(), uids['pj2-ezra']!), [], 'no ACL entry names the freed uid');
    // What they wrote in the project stays, for the team, under the bare uid.
    const file = path.join(mnt(), 'shared', 'pj2-ezra.txt');
    assert.equal(fs.readFileSync(file, 'utf8'), 'mine\n');
    assert.equal(fs.statSync(file).uid, uids['pj2-ezra']);
    const page = (await lead.get('/hub/projects/P-4501')).body;
    assert.doesNotMatch(page, /<li>pj2-ezra(?!@)/);
    // The other member is untouched.
    assert.ok(aclLinesOf(mnt(), uids['pj2-fay']!).length > 0);
    // The audit log says which projects were left.
    const audit = await admin.get('/hub/admin/audit', { accept: 'text/html' });
    assert.match(audit.body, /P-4501/);
  });

  it('keeping their files: home, log and account stay (a new account of that name gets them back); project access goes', async () => {
    const esc = escapeName('pj2-fay');
    const account = accountNameOf(esc);
    await deleteUser('pj2-fay', 'keep');
    assert.equal(uidOf(account), uids['pj2-fay'], 'the account stays, with its uid: it owns the kept files');
    assert.ok(fs.existsSync(path.join(dataDir, 'homes', esc)));
    assert.ok(fs.existsSync(path.join(dataDir, 'logs', `${esc}.log`)));
    assert.deepEqual(aclLinesOf(mnt(), uids['pj2-fay']!), [], 'but no project ACL entry');
    assert.doesNotMatch((await lead.get('/hub/projects/P-4501')).body, /<li>pj2-fay(?!@)/);
    // A member who never started a server (so never had a Unix account) is deleted just as well.
    await deleteUser('pj2-lead5', 'remove');
    assert.equal((await admin.get('/hub/projects/P-4501')).body.includes('<li>pj2-lead5'), false);
    // A new account of the same name is not a member of anything.
    await hub.users.createLocal('pj2-fay', PASSWORDS['pj2-fay']!);
    const again = clientFor(hub);
    await again.login('pj2-fay', PASSWORDS['pj2-fay']!);
    assert.equal((await again.get('/hub/projects/P-4501')).status, 404);
  });
});
