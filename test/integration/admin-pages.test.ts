import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hub } from '../../server/index.js';
import { HubClient, type Reply } from '../helpers/client.js';
import { ADMIN_PASSWORD, clientFor, signInAndStart, startTestHub } from '../helpers/hub.js';
import { VisitorClient } from '../helpers/try.js';

/** An admin's form POST with repeated fields (checkboxes), as a browser sends it. */
function post(client: HubClient, url: string, fields: [string, string][]): Promise<Reply> {
  return client.request('POST', url, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
}

async function adminClient(hub: Hub): Promise<HubClient> {
  const admin = new HubClient(hub.url);
  assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
  return admin;
}

async function createStudent(hub: Hub, admin: HubClient, name: string, password: string): Promise<void> {
  const page = await admin.get('/hub/admin');
  const r = await admin.request('POST', '/hub/admin/users', { form: { _csrf: HubClient.csrfFrom(page.body), username: name, password, role: 'student' } });
  assert.equal(r.status, 201, r.body);
}

async function escaped(hub: Hub, name: string): Promise<string> {
  const u = await hub.users.get(name);
  assert.ok(u, `no user ${name}`);
  return u.escapedName;
}

/** Whether any process still has this pid (the local spawner's server). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function serverPid(hub: Hub, escapedName: string): Promise<number> {
  const state = JSON.parse(fs.readFileSync(path.join(hub.config.dataDir, 'servers', `${escapedName}.json`), 'utf8')) as { pid: number };
  return state.pid;
}

describe('admin pages over HTTP', function () {
  this.timeout(180_000);
  let hub: Hub;
  before(async () => {
    hub = await startTestHub('adm-pages', { tryMaxServers: 4, poolSize: 0 });
  });
  after(async () => {
    await hub?.close();
  });

  it('a student gets 403 on every admin page and action', async () => {
    const admin = await adminClient(hub);
    await createStudent(hub, admin, 'adm-nosy', 'nosy-password');
    const nosy = new HubClient(hub.url);
    assert.equal((await nosy.login('adm-nosy', 'nosy-password')).status, 303);
    for (const url of ['/hub/admin', '/hub/admin/servers', '/hub/admin/pool', '/hub/admin/audit', '/hub/admin/audit.csv', '/hub/admin/users/admin']) {
      const r = await nosy.get(url);
      assert.equal(r.status, 403, url);
      assert.doesNotMatch(r.body, /oerhub-audit|adm-nosy<\/a>/);
    }
    const home = await nosy.get('/hub/home');
    const disable = await post(nosy, '/hub/admin/users/admin/disable', [['_csrf', HubClient.csrfFrom(home.body)]]);
    assert.equal(disable.status, 403);
    assert.equal(await hub.admin.isDisabled('admin'), false);
    // Anonymous: sent to sign in, not shown the page.
    const anon = await new HubClient(hub.url).get('/hub/admin/audit');
    assert.equal(anon.status, 302);
    assert.match(anon.location ?? '', /^\/hub\/login/);
  });

  it('refuses an admin form without its XSRF token, and changes nothing', async () => {
    const admin = await adminClient(hub);
    await createStudent(hub, admin, 'adm-kept', 'kept-password');
    const e = await escaped(hub, 'adm-kept');
    const none = await post(admin, `/hub/admin/users/${e}/disable`, []);
    assert.equal(none.status, 403);
    assert.match(none.body, /expired or was sent from another site/);
    const wrong = await post(admin, `/hub/admin/users/${e}/delete`, [['_csrf', 'not-the-token'], ['data', 'remove'], ['confirm', 'adm-kept']]);
    assert.equal(wrong.status, 403);
    assert.equal(await hub.admin.isDisabled('adm-kept'), false);
    assert.ok(await hub.users.get('adm-kept'), 'the user is still there');
    const kept = new HubClient(hub.url);
    assert.equal((await kept.login('adm-kept', 'kept-password')).status, 303);
  });

  it('disabling stops the running server, ends the session at once and refuses sign-in, until enabled', async () => {
    const admin = await adminClient(hub);
    await createStudent(hub, admin, 'adm-dora', 'dora-password');
    const e = await escaped(hub, 'adm-dora');
    const dora = await signInAndStart(hub, 'adm-dora', 'dora-password');
    const pid = await serverPid(hub, e);
    assert.ok(alive(pid));
    assert.equal((await dora.get(`/user/${e}/api/status`)).status, 200);

    const userPage = await admin.get(`/hub/admin/users/${e}`);
    assert.equal(userPage.status, 200);
    assert.match(userPage.body, /running/);
    const r = await post(admin, `/hub/admin/users/${e}/disable`, [['_csrf', HubClient.csrfFrom(userPage.body)]]);
    assert.equal(r.status, 303);
    const after = await admin.follow(r.location!);
    assert.match(after.body, /adm-dora is disabled/);
    assert.match(after.body, /id="account-state"><span class="tag bad">disabled<\/span> by admin/);

    // The server is stopped (its process gone), the hub session and the server cookie both dead.
    assert.equal(await hub.manager.status((await hub.users.get('adm-dora'))!), 'stopped');
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
    assert.equal(alive(pid), false, 'the server process is gone');
    const home = await dora.get('/hub/home');
    assert.equal(home.status, 302);
    assert.match(home.location ?? '', /^\/hub\/login/);
    const proxied = await dora.get(`/user/${e}/api/status`);
    assert.notEqual(proxied.status, 200);

    // Signing in again is refused with a page that says why; the password was right.
    const again = new HubClient(hub.url);
    const refused = await again.login('adm-dora', 'dora-password');
    assert.equal(refused.status, 403);
    assert.match(refused.body, /This account is disabled/);
    assert.match(refused.body, /disabled by an administrator/);

    // Enabled again: signs in.
    const page2 = await admin.get(`/hub/admin/users/${e}`);
    const en = await post(admin, `/hub/admin/users/${e}/enable`, [['_csrf', HubClient.csrfFrom(page2.body)]]);
    assert.equal(en.status, 303);
    assert.equal((await new HubClient(hub.url).login('adm-dora', 'dora-password')).status, 303);

    const audit = await hub.audit.list({ target: 'adm-dora' });
    assert.deepEqual(audit.map((a) => a.action).slice(0, 2), ['user.enable', 'user.disable']);
    assert.equal(audit[1]!.actor, 'admin');
    assert.equal(audit[1]!.details.serverStopped, 'true');
    assert.equal(audit[1]!.details.sessionsEnded, '1');
    assert.match(audit[1]!.address, /^(::ffff:)?127\.0\.0\.1$/);
  });

  it('an admin can\'t disable or delete their own account; the refusal is shown next to the form', async () => {
    const admin = await adminClient(hub);
    const page = await admin.get('/hub/admin/users/admin');
    const r = await post(admin, '/hub/admin/users/admin/disable', [['_csrf', HubClient.csrfFrom(page.body)]]);
    assert.equal(r.status, 400);
    // The message sits in the Access section, right above the disable form.
    assert.match(r.body, /<h2>Access<\/h2>\s*<p class="alert" role="alert" id="error-disable">You can&#39;t disable your own account.<\/p>\s*<form method="post" action="\/hub\/admin\/users\/admin\/disable">/);
    assert.equal(await hub.admin.isDisabled('admin'), false);
  });

  it('grants and revokes roles; the role search finds the new instructor; an admin keeps their own admin role', async () => {
    const admin = await adminClient(hub);
    await createStudent(hub, admin, 'adm-ira', 'ira-password');
    const e = await escaped(hub, 'adm-ira');
    const page = await admin.get(`/hub/admin/users/${e}`);
    const grant = await post(admin, `/hub/admin/users/${e}/roles`, [['_csrf', HubClient.csrfFrom(page.body)], ['roles', 'instructor']]);
    assert.equal(grant.status, 303);
    assert.match((await admin.follow(grant.location!)).body, /id="effective-roles">instructor</);
    assert.deepEqual((await hub.users.get('adm-ira'))!.roles, ['instructor']);
    const instructors = await admin.get('/hub/admin?role=instructor');
    assert.match(instructors.body, /data-user="adm-ira"/);
    assert.doesNotMatch(instructors.body, /data-user="admin"/);
    const students = await admin.get('/hub/admin?q=adm-ira&role=student');
    assert.doesNotMatch(students.body, /data-user="adm-ira"/);
    // Revoked again: a user with no role left is a student.
    const revoke = await post(admin, `/hub/admin/users/${e}/roles`, [['_csrf', HubClient.csrfFrom(page.body)]]);
    assert.equal(revoke.status, 303);
    assert.deepEqual((await hub.users.get('adm-ira'))!.roles, ['student']);
    const [last] = await hub.audit.list({ action: 'user.roles', target: 'adm-ira' });
    assert.equal(last?.details.before, 'instructor');
    assert.equal(last?.details.after, '');

    const own = await admin.get('/hub/admin/users/admin');
    const self = await post(admin, '/hub/admin/users/admin/roles', [['_csrf', HubClient.csrfFrom(own.body)], ['roles', 'instructor']]);
    assert.equal(self.status, 400);
    assert.match(self.body, /id="error-roles">You can&#39;t take away your own admin role/);
    assert.ok((await hub.users.get('admin'))!.roles.includes('admin'));
  });

  it('deletes a user with their files, or keeping them, after a typed confirmation', async () => {
    const admin = await adminClient(hub);
    await createStudent(hub, admin, 'adm-gone', 'gone-password');
    await createStudent(hub, admin, 'adm-stays', 'stays-password');
    const gone = await escaped(hub, 'adm-gone');
    const stays = await escaped(hub, 'adm-stays');
    await signInAndStart(hub, 'adm-gone', 'gone-password');
    await signInAndStart(hub, 'adm-stays', 'stays-password');
    const goneHome = path.join(hub.config.dataDir, 'homes', gone);
    const staysHome = path.join(hub.config.dataDir, 'homes', stays);
    assert.ok(fs.existsSync(goneHome) && fs.existsSync(staysHome));

    // The confirmation step: a wrong name is refused next to the form, nothing is deleted.
    const confirm = await admin.get(`/hub/admin/users/${gone}/delete`);
    assert.equal(confirm.status, 200);
    assert.match(confirm.body, /Type <strong>adm-gone<\/strong> to confirm/);
    const typo = await post(admin, `/hub/admin/users/${gone}/delete`, [['_csrf', HubClient.csrfFrom(confirm.body)], ['data', 'remove'], ['confirm', 'adm-gon']]);
    assert.equal(typo.status, 400);
    assert.match(typo.body, /id="error-delete">Type the username \(adm-gone\) to confirm/);
    assert.ok(await hub.users.get('adm-gone'));

    const del = await post(admin, `/hub/admin/users/${gone}/delete`, [['_csrf', HubClient.csrfFrom(confirm.body)], ['data', 'remove'], ['confirm', 'adm-gone']]);
    assert.equal(del.status, 303, del.body);
    assert.match((await admin.follow(del.location!)).body, /Deleted adm-gone and their files/);
    assert.equal(await hub.users.get('adm-gone'), null);
    assert.equal(fs.existsSync(goneHome), false, 'the home folder is removed');
    assert.equal((await new HubClient(hub.url).login('adm-gone', 'gone-password')).status, 401);

    const confirm2 = await admin.get(`/hub/admin/users/${stays}/delete`);
    const keep = await post(admin, `/hub/admin/users/${stays}/delete`, [['_csrf', HubClient.csrfFrom(confirm2.body)], ['data', 'keep'], ['confirm', 'adm-stays']]);
    assert.equal(keep.status, 303);
    assert.equal(await hub.users.get('adm-stays'), null);
    assert.ok(fs.existsSync(staysHome), 'the home folder is kept');
    assert.equal((await hub.manager.list()).some((s) => s.user === 'adm-stays'), false, 'its server was stopped');
    // Neither is listed any more.
    const list = await admin.get('/hub/admin?q=adm-');
    assert.doesNotMatch(list.body, /data-user="adm-(gone|stays)"/);
    const actions = (await hub.audit.list({ action: 'user.delete' })).map((a) => `${a.target}:${a.details.data}`);
    assert.deepEqual(actions.slice(0, 2), ['adm-stays:kept', 'adm-gone:removed']);
  });

  it('lists no "Try it" visitor as a user; the pool page shows them and ends their session', async () => {
    const admin = await adminClient(hub);
    const visitor = new VisitorClient(hub.url, '10.0.0.7');
    const got = await visitor.tryIt();
    assert.equal(got.status, 303, got.body);
    const sessions = await hub.pool.sessions();
    assert.equal(sessions.length, 1);
    const anon = sessions[0]!.name;

    const users = await admin.get('/hub/admin');
    assert.equal(users.status, 200);
    assert.match(users.body, /data-user="admin"/);
    assert.doesNotMatch(users.body, /data-user="~/);
    assert.ok(!users.body.includes(anon), 'the visitor is not on the users page');
    // Not even when searched for, or opened by URL.
    assert.doesNotMatch((await admin.get('/hub/admin?q=anonymous')).body, /data-user=/);
    assert.equal((await admin.get(`/hub/admin/users/${sessions[0]!.escapedName}`)).status, 404);

    const pool = await admin.get('/hub/admin/pool');
    assert.match(pool.body, new RegExp(`data-user="${anon}"[\\s\\S]*?in use[\\s\\S]*?127\\.100\\.0\\.7`));
    const end = await post(admin, '/hub/admin/pool/end', [['_csrf', HubClient.csrfFrom(pool.body)], ['names', anon]]);
    assert.equal(end.status, 303);
    assert.match((await admin.follow(end.location!)).body, /Ended 1 session/);
    assert.equal((await hub.pool.sessions()).length, 0);
    assert.equal(await hub.users.get(anon), null, 'the visitor and their server are gone');
    const home = await visitor.get('/hub/home');
    assert.notEqual(home.status, 200);
    assert.equal((await hub.audit.list({ action: 'pool.end-session' }))[0]?.target, anon);
  });

  it('shows the servers with their last log lines, tokens blanked, and stops selected ones', async () => {
    const admin = await adminClient(hub);
    await createStudent(hub, admin, 'adm-lena', 'lena-password');
    await createStudent(hub, admin, 'adm-mo', 'mo-password');
    await signInAndStart(hub, 'adm-lena', 'lena-password');
    await signInAndStart(hub, 'adm-mo', 'mo-password');
    const lena = await escaped(hub, 'adm-lena');
    const page = await admin.get('/hub/admin/servers');
    assert.match(page.body, /data-user="adm-lena"[\s\S]*?running[\s\S]*?default/);
    assert.match(page.body, /data-user="adm-mo"/);

    const logs = await admin.get(`/hub/admin/servers/${lena}/logs`);
    assert.equal(logs.status, 200);
    assert.match(logs.body, /id="server-log">[\s\S]*(Jupyter|jupyter)/);
    const secret = hub.routes.get(lena)?.authorization.replace(/^token /, '');
    assert.ok(secret);
    assert.ok(!logs.body.includes(secret), 'the server\'s secret is not shown');
    assert.doesNotMatch(logs.body, /token=(?!\[secret\])[A-Za-z0-9]/);

    const stop = await post(admin, '/hub/admin/servers/stop', [['_csrf', HubClient.csrfFrom(page.body)], ['names', 'adm-lena'], ['names', 'adm-mo']]);
    assert.equal(stop.status, 303);
    assert.match((await admin.follow(stop.location!)).body, /Stopped 2 servers/);
    const left = (await hub.manager.list()).map((s) => s.user);
    assert.ok(!left.includes('adm-lena') && !left.includes('adm-mo'), left.join());
    const none = await post(admin, '/hub/admin/servers/stop', [['_csrf', HubClient.csrfFrom(page.body)]]);
    assert.equal(none.status, 400);
    assert.match(none.body, /id="error-stop">Select at least one server/);
  });

  it('exports the audit log as CSV, filtered, with formula-looking cells defused', async () => {
    const admin = await adminClient(hub);
    // A script (the API or the CLI) records under a name it was given: here a hostile one.
    await hub.audit.record({ actor: '=HYPERLINK("http://evil","x")', action: 'user.create', target: '+adm-sum', details: { note: '@cmd' }, address: '' });
    const all = await admin.get('/hub/admin/audit.csv');
    assert.equal(all.status, 200);
    assert.match(all.headers.get('content-type') ?? '', /^text\/csv/);
    assert.match(all.headers.get('content-disposition') ?? '', /attachment; filename="oerhub-audit-\d{4}-\d{2}-\d{2}\.csv"/);
    const lines = all.body.trimEnd().split('\r\n');
    assert.equal(lines[0], 'time,actor,action,target,address,details');
    const hostile = lines.find((l) => l.includes('HYPERLINK'));
    assert.ok(hostile);
    assert.match(hostile, /,"'=HYPERLINK\(""http:\/\/evil"",""x""\)",user\.create,"'\+adm-sum",,/);
    // No cell starts with a formula character once parsed.
    for (const line of lines.slice(1)) for (const cell of line.split(',')) assert.doesNotMatch(cell.replace(/^"/, ''), /^[=+@]/);
    // Filtered to one action, oldest first.
    const disables = await admin.get('/hub/admin/audit.csv?action=user.disable');
    const rows = disables.body.trimEnd().split('\r\n').slice(1);
    assert.ok(rows.length >= 1);
    for (const r of rows) assert.match(r, /,admin,user\.disable,/);
    // The page itself filters the same way, and the export was audited.
    const pageHtml = await admin.get('/hub/admin/audit?action=audit');
    assert.match(pageHtml.body, /<code>audit\.export<\/code>/);
    assert.doesNotMatch(pageHtml.body, /<code>user\.disable<\/code>/);
  });
});

describe('the audit log stays bounded', function () {
  this.timeout(60_000);
  let hub: Hub;
  before(async () => {
    hub = await startTestHub('adm-audit-bound', { auditMaxEntries: 10 });
  });
  after(async () => {
    await hub?.close();
  });

  it('keeps only the newest auditMaxEntries, newest first', async () => {
    for (let i = 0; i < 25; i++) await hub.audit.record({ actor: 'cli', action: 'test.step', target: `adm-${i}` });
    const entries = await hub.audit.list();
    assert.equal(entries.length, 10);
    assert.deepEqual(entries.map((e) => e.target), Array.from({ length: 10 }, (_, i) => `adm-${24 - i}`));
    const client = clientFor(hub);
    assert.equal((await client.login('admin', ADMIN_PASSWORD)).status, 303);
    const csv = await client.get('/hub/admin/audit.csv');
    // Ten entries, oldest first; the export itself is recorded after it was read.
    assert.deepEqual(csv.body.trimEnd().split('\r\n').slice(1).map((l) => l.split(',')[3]), Array.from({ length: 10 }, (_, i) => `adm-${15 + i}`));
  });
});
