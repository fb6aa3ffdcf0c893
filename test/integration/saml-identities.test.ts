import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { ADMIN_PASSWORD, createUsers } from '../helpers/hub.js';
import { HubClient, type Reply } from '../helpers/client.js';
import { startSamlHub, TestIdp, type ResponseOptions } from '../helpers/saml-idp.js';

const LABEL = 'saml-identities';
const LOG = path.resolve(__dirname, '../../test-output', `${LABEL}.log`);

describe('SAML identities never take over an account by name, and hub-granted roles stay', function () {
  this.timeout(120_000);
  let idp: TestIdp;
  let hub: Hub;
  let admin: HubClient;
  let csrf: string;

  /** A whole SAML sign-in in one browser: /hub/saml/login, the IdP's answer, the ACS POST. */
  async function samlSignIn(user: string, options: ResponseOptions = {}): Promise<{ browser: HubClient; acs: Reply }> {
    const browser = new HubClient(hub.url);
    const start = await browser.get('/hub/saml/login');
    assert.equal(start.status, 302, start.body);
    const response = await idp.answer(start.location!, user, options);
    const acs = await browser.request('POST', '/hub/saml/acs', { form: { SAMLResponse: response.SAMLResponse, RelayState: response.RelayState } });
    return { browser, acs };
  }

  async function me(browser: HubClient): Promise<{ status: number; name?: string; roles?: string[] }> {
    const r = await browser.get('/hub/api/user', { accept: 'application/json' });
    return r.status === 200 ? { status: 200, ...(JSON.parse(r.body) as { name: string; roles: string[] }) } : { status: r.status };
  }

  function adminApi(method: string, p: string, body?: unknown): Promise<Reply> {
    return admin.request(method, p, { headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': csrf }, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  before(async () => {
    idp = await TestIdp.start();
    idp.addUser('kate', { password: 'x', attributes: { uid: 'Kate', displayName: 'Kate at the IdP', eduPersonAffiliation: 'student' } });
    idp.addUser('sam', { password: 'x', attributes: { uid: 'sam', eduPersonAffiliation: 'student' } });
    idp.addUser('pat', { password: 'x', attributes: { uid: 'pat', eduPersonAffiliation: 'faculty' } });
    hub = await startSamlHub(LABEL, idp);
    await createUsers(hub, { kate: 'kates-local-password' });
    admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    csrf = (JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
  });

  after(async () => {
    await hub?.close();
    await idp?.close();
  });

  it('a SAML user named like a local account gets a conflict page (409), is not signed in, and the local account is untouched', async () => {
    const before = await hub.users.get('kate');
    const { browser, acs } = await samlSignIn('kate');
    assert.equal(acs.status, 409, acs.body.slice(0, 300));
    assert.match(acs.body, /This name already belongs to another account/);
    assert.match(acs.body, /Ask an administrator to link the two/);
    assert.ok(!acs.headers.getSetCookie().some((c) => c.startsWith('oerhub-session=')), 'no session was made');
    assert.equal((await me(browser)).status, 401);
    assert.deepEqual(await hub.users.get('kate'), before, 'the local account is exactly as it was');
    const local = new HubClient(hub.url);
    assert.equal((await local.login('kate', 'kates-local-password')).status, 303, 'the password still works');
    assert.ok(fs.readFileSync(LOG, 'utf8').includes('external sign-in refused: the name belongs to an account not linked to this identity'));
  });

  it('an admin sees the refused sign-in, links it to the local account, and the next SAML sign-in lands there', async () => {
    const list = await adminApi('GET', '/hub/api/identity-conflicts');
    assert.equal(list.status, 200, list.body);
    const conflict = (JSON.parse(list.body) as { conflicts: { method: string; issuer: string; subject: string; name: string }[] }).conflicts.find((c) => c.name === 'kate');
    assert.deepEqual(conflict && { method: conflict.method, issuer: conflict.issuer, subject: conflict.subject }, { method: 'saml', issuer: idp.entityId, subject: 'Kate' });

    // Only admins may link.
    const kate = new HubClient(hub.url);
    await kate.login('kate', 'kates-local-password');
    const kateCsrf = (JSON.parse((await kate.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
    const refused = await kate.request('POST', '/hub/api/users/kate/identities', { headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': kateCsrf }, body: JSON.stringify(conflict) });
    assert.equal(refused.status, 403);

    const linked = await adminApi('POST', '/hub/api/users/kate/identities', { method: conflict!.method, issuer: conflict!.issuer, subject: conflict!.subject });
    assert.equal(linked.status, 201, linked.body);
    assert.equal((JSON.parse((await adminApi('GET', '/hub/api/identity-conflicts')).body) as { conflicts: unknown[] }).conflicts.length, 0);
    const { browser, acs } = await samlSignIn('kate');
    assert.equal(acs.status, 303, acs.body.slice(0, 300));
    const who = await me(browser);
    assert.deepEqual([who.status, who.name, who.roles], [200, 'kate', ['student']]);
    assert.equal((await hub.users.get('kate'))?.source, 'local', 'still the local account, password and all');
    assert.equal((await new HubClient(hub.url).login('kate', 'kates-local-password')).status, 303);
  });

  it('an admin-granted instructor role survives the next SAML sign-in; IdP roles follow the IdP', async () => {
    assert.equal((await samlSignIn('sam')).acs.status, 303);
    assert.deepEqual((await hub.users.get('sam'))?.roles, ['student']);
    const granted = await adminApi('PUT', '/hub/api/users/sam/roles', { roles: ['instructor'] });
    assert.equal(granted.status, 200, granted.body);
    assert.deepEqual((JSON.parse(granted.body) as { roles: string[] }).roles, ['instructor']);
    const again = await samlSignIn('sam');
    assert.equal(again.acs.status, 303);
    assert.deepEqual((await me(again.browser)).roles, ['instructor'], 'the grant survived the IdP saying "student"');

    // A role that came only from the IdP goes when the IdP stops sending it.
    assert.equal((await samlSignIn('pat')).acs.status, 303);
    assert.deepEqual((await hub.users.get('pat'))?.roles, ['instructor']);
    assert.equal((await samlSignIn('pat', { attributes: { eduPersonAffiliation: 'student' } })).acs.status, 303);
    assert.deepEqual((await hub.users.get('pat'))?.roles, ['student']);
  });

  it('refuses a bad grant or link with a clear JSON error', async () => {
    const bad = await adminApi('PUT', '/hub/api/users/sam/roles', { roles: ['root'] });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /roles/);
    const missing = await adminApi('POST', '/hub/api/users/nobody/identities', { method: 'saml', issuer: idp.entityId, subject: 'nobody' });
    assert.equal(missing.status, 404);
  });
});
