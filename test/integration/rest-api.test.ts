import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, createUsers, startTestHub } from '../helpers/hub.js';
import { frontDoorPath } from '../helpers/nginx.js';

/** Every file under a folder, recursively (the hub's data folder, where its state store lives). */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

interface TokenReply {
  id: string;
  token: string;
  scopes: string[];
  expires_at: string | null;
  note: string;
}

describe('the REST API: JupyterHub-shaped, with scoped tokens', function () {
  this.timeout(60_000);
  let hub: Hub;
  let admin: HubClient;
  let csrf: string;

  /** A request with only a token: what a script sends (no cookies, no XSRF). */
  async function withToken(token: string, method: string, pathname: string, body?: unknown, extra: Record<string, string> = {}): Promise<{ status: number; json: unknown; text: string; headers: Headers }> {
    const plain = new HubClient(hub.url);
    const r = await plain.request(method, pathname, {
      headers: { authorization: `token ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...extra },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    let json: unknown = null;
    try {
      json = JSON.parse(r.body);
    } catch {
      json = null;
    }
    return { status: r.status, json, text: r.body, headers: r.headers };
  }

  /** An admin-made token through the API, with the admin's session and XSRF token. */
  async function adminToken(owner: string, body: Record<string, unknown>): Promise<TokenReply> {
    const r = await admin.request('POST', `/hub/api/users/${owner}/tokens`, {
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 201, r.body);
    return JSON.parse(r.body) as TokenReply;
  }

  before(async () => {
    hub = await startTestHub('rest-api');
    await createUsers(hub, { apiana: 'apiana-password', apiben: 'apiben-password', apicat: 'apicat-password', apidan: 'apidan-password', apieve: 'apieve-password' });
    admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    csrf = (JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
  });

  after(async () => {
    await hub?.close();
  });

  it('answers GET /hub/api/ with a JupyterHub version, as the idle culler checks first', async () => {
    const r = await new HubClient(hub.url).get('/hub/api/', { accept: 'application/json' });
    assert.equal(r.status, 200);
    const { version } = JSON.parse(r.body) as { version: string };
    assert.match(version, /^\d+\.\d+\.\d+$/);
    assert.ok(Number(version.split('.')[0]) >= 2);
  });

  it('keeps a token only as its hash: the token is in no file of the hub, its hash is', async () => {
    const t = await adminToken('apiana', { note: 'at rest', scopes: ['read:users!user=apiana'] });
    assert.match(t.token, /^oh_[A-Za-z0-9_-]{40,}$/);
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update(t.token).digest('hex');
    // Let SQLite write its pages (WAL included) before reading the files.
    await new Promise((r) => setTimeout(r, 300));
    const files = filesUnder(hub.config.dataDir);
    assert.ok(files.length > 0);
    const contents = files.map((f) => fs.readFileSync(f));
    assert.ok(!contents.some((c) => c.includes(t.token)), 'the token itself is stored somewhere');
    assert.ok(contents.some((c) => c.includes(hash)), 'the hash is not where the search looked: the search would prove nothing');
    // The model never shows the token again.
    const list = await withToken(t.token, 'GET', '/hub/api/users/apiana/tokens');
    assert.equal(list.status, 403, 'read:users alone does not read tokens');
    const mine = JSON.parse((await admin.get('/hub/api/users/apiana/tokens', { accept: 'application/json' })).body) as { api_tokens: Record<string, unknown>[] };
    assert.equal(mine.api_tokens.length, 1);
    assert.equal(mine.api_tokens[0].id, t.id);
    assert.equal(mine.api_tokens[0].note, 'at rest');
    assert.ok(!JSON.stringify(mine).includes(t.token));
  });

  it('says who a token belongs to and what it may do at GET /hub/api/user, in JupyterHub\'s fields', async () => {
    const t = await adminToken('apiben', { scopes: ['read:users!user=apiben', 'read:servers!user=apiben'], note: 'whoami' });
    const me = await withToken(t.token, 'GET', '/hub/api/user');
    assert.equal(me.status, 200, me.text);
    const m = me.json as Record<string, unknown>;
    assert.equal(m.kind, 'user');
    assert.equal(m.name, 'apiben');
    assert.equal(m.admin, false);
    assert.equal(m.server, null);
    assert.equal(m.pending, null);
    assert.deepEqual(m.servers, {});
    assert.ok(typeof m.created === 'string' && !Number.isNaN(Date.parse(m.created)));
    assert.ok(!('csrf_token' in m), 'a token request gets no XSRF token');
    assert.ok((m.scopes as string[]).includes('read:users!user=apiben'));
  });

  it('answers 401 without credentials, 403 for a made-up token, 403 for a scope the token lacks, 404 for a user outside its filter', async () => {
    const anon = new HubClient(hub.url);
    assert.equal((await anon.get('/hub/api/users', { accept: 'application/json' })).status, 401);
    assert.equal((await withToken('oh_not-a-real-token-at-all', 'GET', '/hub/api/user')).status, 403);
    const bad = await withToken('oh_not-a-real-token-at-all', 'GET', '/hub/api/users');
    assert.equal(bad.status, 403);
    assert.equal((bad.json as { message: string }).message, 'Missing or invalid credentials.');
    const t = await adminToken('admin', { scopes: ['read:users!user=apiana'] });
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users/apiana')).status, 200);
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users/apiben')).status, 404);
    const list = await withToken(t.token, 'GET', '/hub/api/users');
    assert.equal(list.status, 403);
    assert.match((list.json as { message: string }).message, /list:users/);
    // Bearer works too.
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users/apiana', undefined, { authorization: `Bearer ${t.token}` })).status, 200);
  });

  it('lets a token expire: after expires_in seconds it is refused', async () => {
    const t = await adminToken('apicat', { expires_in: 1, note: 'short' });
    assert.ok(t.expires_at && Date.parse(t.expires_at) - Date.now() <= 1500);
    assert.equal((await withToken(t.token, 'GET', '/hub/api/user')).status, 200);
    await new Promise((r) => setTimeout(r, 1600));
    assert.equal((await withToken(t.token, 'GET', '/hub/api/user')).status, 403);
  });

  it('revokes a token at once: DELETE /hub/api/users/NAME/tokens/ID, by the token itself', async () => {
    const t = await adminToken('apicat', { note: 'to revoke' });
    const got = await withToken(t.token, 'GET', `/hub/api/users/apicat/tokens/${t.id}`);
    assert.equal(got.status, 200, got.text);
    assert.equal((got.json as { id: string }).id, t.id);
    assert.equal((await withToken(t.token, 'DELETE', `/hub/api/users/apicat/tokens/${t.id}`)).status, 204);
    assert.equal((await withToken(t.token, 'GET', '/hub/api/user')).status, 403);
    assert.equal((await admin.get(`/hub/api/users/apicat/tokens/${t.id}`, { accept: 'application/json' })).status, 404);
  });

  it('never gives a token more than its owner: asking for more is 403, and a demoted admin\'s token loses admin', async () => {
    // A student can't mint admin powers.
    const student = await adminToken('apidan', { scopes: ['read:users!user=apidan'] });
    const more = await withToken(student.token, 'POST', '/hub/api/users/apidan/tokens', { scopes: ['admin:users'] });
    assert.equal(more.status, 403, more.text);
    // An instructor made admin, with a token for creating users; demoted, the same token can't.
    const promote = await admin.request('PATCH', '/hub/api/users/apieve', { headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' }, body: JSON.stringify({ admin: true }) });
    assert.equal(promote.status, 200, promote.body);
    assert.equal((JSON.parse(promote.body) as { admin: boolean }).admin, true);
    const t = await adminToken('apieve', { scopes: ['admin:users'], note: 'user maker' });
    const made = await withToken(t.token, 'POST', '/hub/api/users/apimade1', {});
    assert.equal(made.status, 201, made.text);
    assert.equal((made.json as { name: string }).name, 'apimade1');
    const demote = await admin.request('PATCH', '/hub/api/users/apieve', { headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' }, body: JSON.stringify({ admin: false }) });
    assert.equal(demote.status, 200, demote.body);
    const refused = await withToken(t.token, 'POST', '/hub/api/users/apimade2', {});
    assert.equal(refused.status, 403, refused.text);
    assert.equal(await hub.users.get('apimade2'), null);
  });

  it('deletes a user with DELETE /hub/api/users/NAME, and their tokens with them; /hub/api/info is for admins', async () => {
    const admins = await adminToken('admin', { scopes: ['admin:users', 'read:hub'] });
    assert.equal((await withToken(admins.token, 'POST', '/hub/api/users/apigone', { admin: false })).status, 201);
    const theirs = await adminToken('apigone', {});
    assert.equal((await withToken(theirs.token, 'GET', '/hub/api/user')).status, 200);
    assert.equal((await withToken(admins.token, 'POST', '/hub/api/users/apigone', {})).status, 409);
    assert.equal((await withToken(admins.token, 'DELETE', '/hub/api/users/apigone')).status, 204);
    assert.equal((await withToken(admins.token, 'GET', '/hub/api/users/apigone')).status, 404);
    assert.equal((await withToken(theirs.token, 'GET', '/hub/api/user')).status, 403);
    const info = await withToken(admins.token, 'GET', '/hub/api/info');
    assert.equal(info.status, 200);
    assert.ok((info.json as { spawner: { class: string } }).spawner.class);
    const student = await adminToken('apiana', {});
    assert.equal((await withToken(student.token, 'GET', '/hub/api/info')).status, 403);
  });

  it('keeps the XSRF check for sessions, skips it for tokens, and never lets a bad token fall back to the cookie', async () => {
    const noXsrf = await admin.request('POST', '/hub/api/users', { headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ name: 'apixsrf1', password: 'apixsrf1-password' }) });
    assert.equal(noXsrf.status, 403, noXsrf.body);
    assert.equal(await hub.users.get('apixsrf1'), null);
    const t = await adminToken('admin', { scopes: ['admin:users'] });
    const viaToken = await withToken(t.token, 'POST', '/hub/api/users', { name: 'apixsrf2', password: 'apixsrf2-password' });
    assert.equal(viaToken.status, 201, viaToken.text);
    // The admin's own session cookie plus a bad token: refused, not served as the session.
    const mixed = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: 'token oh_bogus' },
      body: JSON.stringify({ name: 'apixsrf3', password: 'apixsrf3-password' }),
    });
    assert.equal(mixed.status, 403);
    assert.equal(await hub.users.get('apixsrf3'), null);
    // A narrow token doesn't drive the session-only admin routes as its owner either.
    const narrow = await adminToken('admin', { scopes: ['read:users'] });
    const roles = await withToken(narrow.token, 'PUT', '/hub/api/users/apiana/roles', { roles: ['admin'] });
    assert.notEqual(roles.status, 200, roles.text);
    assert.deepEqual((await hub.users.get('apiana'))?.roles, ['student']);
  });

  it('pages /hub/api/users with offset and limit, in JupyterHub\'s paginated form when asked, without "Try it" visitors', async () => {
    const visitor = await hub.users.createAnonymous();
    const t = await adminToken('admin', { scopes: ['list:users', 'read:users'] });
    const all = await withToken(t.token, 'GET', '/hub/api/users');
    assert.equal(all.status, 200);
    const names = (all.json as { name: string }[]).map((u) => u.name);
    assert.ok(names.includes('apiana') && names.includes('admin'));
    assert.ok(!names.includes(visitor.name), 'a visitor is listed as a user');
    assert.ok(names.every((n) => !n.startsWith('~')));
    const first = await withToken(t.token, 'GET', '/hub/api/users?offset=1&limit=2', undefined, { accept: 'application/jupyterhub-pagination+json' });
    assert.equal(first.status, 200, first.text);
    const page = first.json as { items: { name: string; kind: string }[]; _pagination: { offset: number; limit: number; total: number; next: { offset: number; limit: number; url: string } | null } };
    assert.deepEqual(page.items.map((u) => u.name), names.slice(1, 3));
    assert.equal(page.items[0].kind, 'user');
    assert.deepEqual({ offset: page._pagination.offset, limit: page._pagination.limit, total: page._pagination.total }, { offset: 1, limit: 2, total: names.length });
    assert.ok(page._pagination.next);
    const nextUrl = new URL(page._pagination.next.url);
    assert.equal(nextUrl.searchParams.get('offset'), '3');
    // Follow the pages to the end, as a client does: every user exactly once.
    const seen: string[] = [...page.items.map((u) => u.name)];
    let next: string | null = page._pagination.next.url;
    while (next) {
      const r = await withToken(t.token, 'GET', next, undefined, { accept: 'application/jupyterhub-pagination+json' });
      const p = r.json as typeof page;
      seen.push(...p.items.map((u) => u.name));
      next = p._pagination.next?.url ?? null;
    }
    assert.deepEqual(seen, names.slice(1));
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users?state=inactive')).status, 200);
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users?state=ready')).json instanceof Array, true);
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users?state=sleeping')).status, 400);
    assert.equal((await withToken(t.token, 'GET', '/hub/api/users?limit=lots')).status, 400);
  });

  it('makes, shows once and revokes tokens on the /hub/token page, with its XSRF field', async () => {
    const ana = new HubClient(hub.url);
    assert.equal((await ana.login('apiana', 'apiana-password')).status, 303);
    const page = await ana.get('/hub/token');
    assert.equal(page.status, 200);
    const noXsrf = await ana.request('POST', '/hub/token', { form: { note: 'sneaky', expires_in: '3600', scopes: '' } });
    assert.equal(noXsrf.status, 403);
    const made = await ana.request('POST', '/hub/token', { form: { _csrf: HubClient.csrfFrom(page.body), note: 'my laptop', expires_in: '3600', scopes: 'read:users!user=apiana' } });
    assert.equal(made.status, 200, made.body);
    const token = /id="token-value">([^<]+)</.exec(made.body)?.[1];
    assert.ok(token, 'the new token is shown');
    const me = await withToken(token, 'GET', '/hub/api/user');
    assert.equal((me.json as { name: string }).name, 'apiana');
    const again = await ana.get('/hub/token');
    assert.ok(again.body.includes('my laptop'));
    assert.ok(!again.body.includes(token), 'the token is shown a second time');
    const id = /data-token-id="([^"]+)"><td>my laptop/.exec(again.body)?.[1];
    assert.ok(id);
    const revoked = await ana.request('POST', '/hub/token/revoke', { form: { _csrf: HubClient.csrfFrom(again.body), owner: 'user:apiana', id } });
    assert.equal(revoked.status, 200);
    assert.equal((await withToken(token, 'GET', '/hub/api/user')).status, 403);
    // Asking for more than one has is a clear error on the page, nothing made.
    const tooMuch = await ana.request('POST', '/hub/token', { form: { _csrf: HubClient.csrfFrom(revoked.body), note: 'admin please', expires_in: '3600', scopes: 'admin:users' } });
    assert.equal(tooMuch.status, 403);
    assert.match(tooMuch.body, /does not have them/);
  });
});

describe('the REST API changes only the roles the hub grants; the identity provider\'s stay', function () {
  this.timeout(60_000);
  const door = frontDoorPath();
  let hub: Hub;
  let adminToken: string;

  /** A sign-in through the front door, as nginx passes an SSO user (trusted header), with their groups. */
  function signInThroughDoor(user: string, groups: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: door.socket, method: 'GET', path: '/hub/api/user', headers: { host: 'hub.test', accept: 'application/json', 'x-remote-user': user, 'x-remote-groups': groups } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  async function api(method: string, pathname: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await new HubClient(hub.url).request(method, pathname, {
      headers: { authorization: `token ${adminToken}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
  }

  const rolesOf = (m: Record<string, unknown>): Record<string, unknown> => ({ admin: m.admin, roles: m.roles, granted_roles: m.granted_roles, idp_roles: m.idp_roles });

  before(async () => {
    hub = await startTestHub('rest-api-roles', { trustedHeader: 'X-Remote-User', trustedHeaderRoles: 'X-Remote-Groups', frontDoorSocket: door.socket, roleAdminValues: ['it-staff'] });
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const csrf = (JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
    const made = await admin.request('POST', '/hub/api/users/admin/tokens', { headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' }, body: JSON.stringify({ scopes: ['admin:users'], note: 'roles script' }) });
    assert.equal(made.status, 201, made.body);
    adminToken = (JSON.parse(made.body) as TokenReply).token;
  });

  after(async () => {
    await hub?.close();
    door.remove();
  });

  it('shows effective roles with granted_roles and idp_roles; a PATCHed admin survives the next SSO sign-in, and is audited', async () => {
    assert.equal((await signInThroughDoor('fx2carol', 'faculty')).status, 200);
    const first = await api('GET', '/hub/api/users/fx2carol');
    assert.equal(first.status, 200);
    assert.deepEqual(rolesOf(first.json), { admin: false, roles: ['instructor'], granted_roles: [], idp_roles: ['instructor'] });

    const promoted = await api('PATCH', '/hub/api/users/fx2carol', { admin: true });
    assert.equal(promoted.status, 200, JSON.stringify(promoted.json));
    assert.deepEqual(rolesOf(promoted.json), { admin: true, roles: ['admin', 'instructor'], granted_roles: ['admin'], idp_roles: ['instructor'] });
    // The grant is the hub's: signing in again (the IdP still says only "faculty") keeps it.
    assert.equal((await signInThroughDoor('fx2carol', 'faculty')).status, 200);
    assert.deepEqual(rolesOf((await api('GET', '/hub/api/users/fx2carol')).json), { admin: true, roles: ['admin', 'instructor'], granted_roles: ['admin'], idp_roles: ['instructor'] });
    const entry = (await hub.audit.list({ action: 'user.roles', target: 'fx2carol' }))[0];
    assert.ok(entry, 'the change is in the audit log');
    assert.equal(entry.actor, 'admin');
    assert.equal(entry.details.after, 'admin');

    // Sending back what GET shows changes nothing: the IdP's instructor does not become a grant.
    const same = await api('PATCH', '/hub/api/users/fx2carol', { roles: ['admin', 'instructor'] });
    assert.equal(same.status, 200, JSON.stringify(same.json));
    assert.deepEqual(same.json.granted_roles, ['admin']);

    const demoted = await api('PATCH', '/hub/api/users/fx2carol', { admin: false });
    assert.equal(demoted.status, 200);
    assert.deepEqual(rolesOf(demoted.json), { admin: false, roles: ['instructor'], granted_roles: [], idp_roles: ['instructor'] });
  });

  it('refuses (409, nothing changed) to take away a role the identity provider gives', async () => {
    assert.equal((await signInThroughDoor('fx2dora', 'faculty;it-staff')).status, 200);
    const before = await api('GET', '/hub/api/users/fx2dora');
    assert.deepEqual(rolesOf(before.json), { admin: true, roles: ['admin', 'instructor'], granted_roles: [], idp_roles: ['admin', 'instructor'] });

    const notAdmin = await api('PATCH', '/hub/api/users/fx2dora', { admin: false });
    assert.equal(notAdmin.status, 409);
    assert.match(String(notAdmin.json.message), /admin comes from the user's identity provider/);
    const student = await api('PATCH', '/hub/api/users/fx2dora', { roles: ['student'] });
    assert.equal(student.status, 409);
    assert.match(String(student.json.message), /admin and instructor come from the user's identity provider/);
    assert.deepEqual(rolesOf((await api('GET', '/hub/api/users/fx2dora')).json), rolesOf(before.json));
    assert.equal((await hub.audit.list({ action: 'user.roles', target: 'fx2dora' })).length, 0);

    // A role of the hub's own is still granted next to the IdP's.
    assert.equal((await signInThroughDoor('fx2eli', 'student')).status, 200);
    const made = await api('PATCH', '/hub/api/users/fx2eli', { roles: ['instructor'] });
    assert.equal(made.status, 200, JSON.stringify(made.json));
    assert.deepEqual(rolesOf(made.json), { admin: false, roles: ['instructor'], granted_roles: ['instructor'], idp_roles: ['student'] });
  });
});
