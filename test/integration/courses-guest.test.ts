import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { clientFor, startTestHub, waitForReady } from '../helpers/hub.js';
import { HubClient } from '../helpers/client.js';
import { coursesWithANotebook, createUsersWithRoles, notebook, signedIn } from '../helpers/courses.js';

/** Anonymous visitors and courses: only a course that allows them, in a temporary workspace from the pool. */
describe('anonymous visitors open a course that allows them, and only that', function () {
  this.timeout(180_000);
  let hub: Hub;
  let prof: { client: HubClient; csrf: string };

  before(async () => {
    hub = await startTestHub('courses-guest', { poolSize: 1 });
    await createUsersWithRoles(hub, { 'crs-gprof': { password: 'crs-gprof-password', roles: ['instructor'] } });
    prof = await signedIn(hub, 'crs-gprof', 'crs-gprof-password');
    await coursesWithANotebook(prof, [{ code: 'crs-open', fields: { anonymousAllowed: 'on' } }, { code: 'crs-closed' }], 'lab.ipynb');
  });

  after(async () => {
    await hub?.close();
  });

  it('a visitor opens the course without an account and lands in a temporary workspace with the notebook', async () => {
    const visitor = clientFor(hub);
    const offer = await visitor.get('/hub/courses/crs-open/open/lab.ipynb');
    assert.equal(offer.status, 200);
    assert.match(offer.body, /id="course-guest"/);
    assert.match(offer.body, /href="\/hub\/login\?next=%2Fhub%2Fcourses%2Fcrs-open%2Fopen%2Flab\.ipynb"/);
    const took = await visitor.request('POST', '/hub/courses/crs-open/guest', { form: { _csrf: HubClient.csrfFrom(offer.body), next: '/hub/courses/crs-open/open/lab.ipynb' } });
    assert.equal(took.status, 303, took.body);
    const me = JSON.parse((await visitor.get('/hub/api/user', { accept: 'application/json' })).body) as { escaped_name: string; roles: string[] };
    assert.deepEqual(me.roles, ['anonymous']);
    if (took.location?.startsWith('/hub/spawn-pending/')) await waitForReady(visitor, me.escaped_name);
    const landed = await visitor.follow('/hub/courses/crs-open/open/lab.ipynb');
    assert.equal(landed.path, `/user/${me.escaped_name}/lab/tree/crs-open/lab.ipynb`);
    const file = await visitor.get(`/user/${me.escaped_name}/api/contents/crs-open/lab.ipynb?content=1&type=file&format=text`, { accept: 'application/json' });
    assert.equal((JSON.parse(file.body) as { content: string }).content, notebook('print("crs-open")'));

    // Not a student: not enrolled, not on the dashboard, no course pages, no other course.
    assert.doesNotMatch((await prof.client.get('/hub/courses/crs-open/dashboard')).body, /data-student=/);
    assert.equal((await visitor.get('/hub/courses')).status, 403);
    assert.equal((await visitor.get('/hub/courses/crs-closed/open/lab.ipynb')).status, 403);
  });

  it('a course that does not allow visitors sends them to sign in, and refuses a temporary workspace', async () => {
    const visitor = clientFor(hub);
    const r = await visitor.get('/hub/courses/crs-closed/open/lab.ipynb');
    assert.equal(r.status, 302);
    assert.equal(r.location, `/hub/login?next=${encodeURIComponent('/hub/courses/crs-closed/open/lab.ipynb')}`);
    const login = await visitor.get('/hub/login');
    const guest = await visitor.request('POST', '/hub/courses/crs-closed/guest', { form: { _csrf: HubClient.csrfFrom(login.body), next: '/hub/courses/crs-closed/open' } });
    assert.equal(guest.status, 403);
    assert.equal((JSON.parse((await visitor.get('/hub/api/user', { accept: 'application/json' })).body) as { status?: number }).status, 401, 'still signed out');
  });
});
