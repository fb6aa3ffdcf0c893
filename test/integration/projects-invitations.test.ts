import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, clientFor, startTestHub, tempDataDir } from '../helpers/hub.js';
import { TestSmtp, linkIn } from '../helpers/smtp.js';
import { closeProjectHub } from '../helpers/projects.js';
import { generate } from 'otplib';

/** Issue 12: invitation links that expire, are resent or withdrawn, and a mail server that refuses. */

async function formPost(client: HubClient, pagePath: string, action: string, form: Record<string, string>) {
  const page = await client.get(pagePath);
  return client.request('POST', action, { form: { _csrf: HubClient.csrfFrom(page.body), ...form } });
}

const pathOf = (link: string): string => {
  const u = new URL(link);
  return u.pathname + u.search;
};

describe('project invitations: expiry, resend, withdrawal, and a failing mail server', function () {
  this.timeout(120_000);
  const smtp = new TestSmtp();
  let hub: Hub;
  let dataDir: string;
  let admin: HubClient;

  before(async () => {
    await smtp.start();
    dataDir = tempDataDir('prj-invites');
    // The shortest validity the configuration allows, so expiry can be seen for real.
    hub = await startTestHub('prj-invites', { dataDir, smtpHost: '127.0.0.1', smtpPort: smtp.port, smtpSecurity: 'none', inviteTtlS: 5 });
    admin = clientFor(hub);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
  });

  after(async () => {
    await closeProjectHub(hub, smtp, dataDir);
  });

  it('when the mail server refuses, the admin gets a clear page and no project, folder or link is left', async () => {
    smtp.refuse = 'mailbox unavailable';
    try {
      const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-2001', name: 'Refused', unit: 'Human Services', leadEmail: 'prj-nobody@example.org', capacityGb: '0.03125' });
      assert.equal(res.status, 502);
      assert.match(res.body, /could not be sent, so nothing was changed/);
    } finally {
      smtp.refuse = undefined;
    }
    assert.equal((await admin.get('/hub/projects/P-2001')).status, 404);
    assert.equal(fs.existsSync(path.join(dataDir, 'projects', 'P-2001')), false);
    assert.doesNotMatch(fs.readFileSync('/proc/self/mounts', 'utf8'), /P-2001/);
    // The number is free again: the same form now works.
    const again = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { number: 'P-2001', name: 'Refused', unit: 'Human Services', leadEmail: 'prj-nobody@example.org', capacityGb: '0.03125' });
    assert.equal(again.status, 303);
    assert.equal(smtp.to('prj-nobody@example.org').length, 1);
  });

  it('a form with a bad number, unit or capacity is refused with the reason, and nothing is created', async () => {
    for (const [form, reason] of [
      [{ number: '1234', unit: 'Health', capacityGb: '1' }, /must look like P-1234/],
      [{ number: 'P-2002', unit: 'Astrology', capacityGb: '1' }, /unit from the list/],
      [{ number: 'P-2002', unit: 'Health', capacityGb: '-3' }, /storage capacity/],
    ] as const) {
      const res = await formPost(admin, '/hub/projects/new', '/hub/projects/new', { name: 'x', leadEmail: 'prj-x@example.org', ...form });
      assert.equal(res.status, 400);
      assert.match(res.body, reason);
    }
    assert.equal((await admin.get('/hub/projects/P-2002')).status, 404);
    // A student can't create projects.
    const student = clientFor(hub);
    await hub.users.createLocal('prj-student', 'student-password-long');
    await student.login('prj-student', 'student-password-long');
    assert.equal((await student.get('/hub/projects/new')).status, 403);
  });

  it('a resent invitation replaces the first link; a withdrawn one says so; an expired one says so', async () => {
    assert.equal((await formPost(admin, '/hub/projects/P-2001', '/hub/projects/P-2001/invite', { email: 'prj-resend@example.org' })).status, 303);
    assert.equal((await formPost(admin, '/hub/projects/P-2001', '/hub/projects/P-2001/invite', { email: 'prj-resend@example.org' })).status, 303);
    const [first, second] = await smtp.waitFor('prj-resend@example.org', 2);
    const c = clientFor(hub);
    const old = await c.get(pathOf(linkIn(first!)));
    assert.equal(old.status, 410);
    assert.match(old.body, /newer invitation/);
    assert.equal((await c.get(pathOf(linkIn(second!)))).status, 200);

    assert.equal((await formPost(admin, '/hub/projects/P-2001', '/hub/projects/P-2001/invite', { email: 'prj-withdrawn@example.org' })).status, 303);
    const page = await admin.get('/hub/projects/P-2001');
    assert.match(page.body, /prj-withdrawn@example\.org/);
    assert.equal((await formPost(admin, '/hub/projects/P-2001', '/hub/projects/P-2001/revoke', { email: 'prj-withdrawn@example.org' })).status, 303);
    const [withdrawn] = await smtp.waitFor('prj-withdrawn@example.org');
    const w = await c.get(pathOf(linkIn(withdrawn!)));
    assert.equal(w.status, 410);
    assert.match(w.body, /withdrawn/);

    // Five seconds (inviteTtlS) later the second link has expired, unused.
    await new Promise((r) => setTimeout(r, 6000));
    const expired = await c.get(pathOf(linkIn(second!)));
    assert.equal(expired.status, 410);
    assert.match(expired.body, /expired/);
    // Its form can't be sent either.
    const post = await c.request('POST', pathOf(linkIn(second!)), { form: { _csrf: HubClient.csrfFrom((await c.get('/hub/login')).body), username: 'prj-late', password: 'quartz meadow lantern ninety', confirm: 'quartz meadow lantern ninety' } });
    assert.equal(post.status, 410);
    assert.equal(await hub.users.get('prj-late'), null);
  });

  it('a local account turns on TOTP; sign-in then needs the code, a wrong or reused code is refused', async () => {
    await hub.users.createLocal('prj-totp', 'granite willow comet basin');
    const c = clientFor(hub);
    assert.equal((await c.login('prj-totp', 'granite willow comet basin')).status, 303);
    const begin = await formPost(c, '/hub/account', '/hub/account/totp', {});
    assert.equal(begin.status, 200);
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(begin.body)?.[1];
    assert.ok(secret, begin.body);
    const wrongSetup = await c.request('POST', '/hub/account/totp', { form: { _csrf: HubClient.csrfFrom(begin.body), code: '000000' } });
    assert.equal(wrongSetup.status, 400);
    const again = await formPost(c, '/hub/account', '/hub/account/totp', {});
    const secret2 = /id="totp-secret">([A-Z2-7]+)</.exec(again.body)![1]!;
    const on = await c.request('POST', '/hub/account/totp', { form: { _csrf: HubClient.csrfFrom(again.body), code: await generate({ secret: secret2 }) } });
    assert.equal(on.status, 303);
    assert.match((await c.get('/hub/account')).body, /id="totp-on"/);

    // The password alone no longer signs in.
    const d = clientFor(hub);
    const first = await d.login('prj-totp', 'granite willow comet basin');
    assert.equal(first.status, 303);
    assert.equal(first.location, '/hub/login/totp');
    assert.equal((await d.get('/hub/home')).status, 302);
    const page = await d.get('/hub/login/totp');
    const wrong = await d.request('POST', '/hub/login/totp', { form: { _csrf: HubClient.csrfFrom(page.body), code: '123456' } });
    assert.equal(wrong.status, 401);
    // The setup's code was used already: the next one from the app (30 s later) is needed.
    await new Promise((r) => setTimeout(r, 31_000));
    const code = await generate({ secret: secret2 });
    const right = await d.request('POST', '/hub/login/totp', { form: { _csrf: HubClient.csrfFrom(wrong.body), code } });
    assert.equal(right.status, 303);
    assert.equal((await d.get('/hub/home')).status, 200);
    // The same code can't sign in a second time.
    const e = clientFor(hub);
    await e.login('prj-totp', 'granite willow comet basin');
    const ePage = await e.get('/hub/login/totp');
    assert.equal((await e.request('POST', '/hub/login/totp', { form: { _csrf: HubClient.csrfFrom(ePage.body), code } })).status, 401);
  });
});
