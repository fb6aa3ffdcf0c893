import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, startTestHub } from '../helpers/hub.js';

describe('an admin managing local accounts', function () {
  this.timeout(60_000);
  let hub: Hub;
  before(async () => {
    hub = await startTestHub('admin');
  });
  after(async () => {
    await hub?.close();
  });

  it('adds a student through the admin page, who can then sign in', async () => {
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const page = await admin.get('/hub/admin');
    assert.equal(page.status, 200);
    // Pool status is on the page (this hub runs no pool: target 0, nothing ready).
    assert.match(page.body, /id="pool-status"[\s\S]*<td>0<\/td><td>0<\/td>/);
    const created = await admin.request('POST', '/hub/admin/users', { form: { _csrf: HubClient.csrfFrom(page.body), username: ' Zoë.Student ', password: 'zoe-password', role: 'student' } });
    assert.equal(created.status, 201);
    assert.match(created.body, /Created zoë\.student/);
    const zoe = new HubClient(hub.url);
    assert.equal((await zoe.login('ZOË.student', 'zoe-password')).status, 303);
    // Students can't open the admin page.
    assert.equal((await zoe.get('/hub/admin')).status, 403);
  });

  it('explains a refused account instead of failing', async () => {
    const admin = new HubClient(hub.url);
    await admin.login('admin', ADMIN_PASSWORD);
    const page = await admin.get('/hub/admin');
    const slash = await admin.request('POST', '/hub/admin/users', { form: { _csrf: HubClient.csrfFrom(page.body), username: 'a/b', password: 'long-enough', role: 'student' } });
    assert.equal(slash.status, 400);
    assert.match(slash.body, /contains a slash/);
    const dup = await admin.request('POST', '/hub/admin/users', { form: { _csrf: HubClient.csrfFrom(page.body), username: 'admin', password: 'long-enough', role: 'student' } });
    assert.equal(dup.status, 409);
    assert.match(dup.body, /already exists/);
  });
});
