import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { startTestHub, waitForReady } from '../helpers/hub.js';
import { cleanupInstance, docker, dockerExec, dockerHubConfig, requireDockerImage, TEST_IMAGE, TEST_R_IMAGE, testInstance } from '../helpers/docker.js';
import { coursesWithANotebook, createUsersWithRoles, notebook, signedIn } from '../helpers/courses.js';
import { escapeName } from '../../server/names.js';

/**
 * Course links on the Docker spawner: the course decides the kind of server (image), never the
 * link, and the files reach the student's container through its Jupyter contents API.
 */
describe('course links on the Docker spawner: the course picks the image', function () {
  this.timeout(300_000);
  const instance = testInstance('crs');
  let hub: Hub;
  let failed = false;
  const student = 'crs-dan';
  const esc = escapeName(student);
  const container = `${instance}-nb-${esc}`;

  before(async () => {
    await requireDockerImage();
    await requireDockerImage(TEST_R_IMAGE);
    hub = await startTestHub(
      'courses-docker',
      dockerHubConfig(instance, {
        dockerProfiles: [
          { name: 'python', displayName: 'Python', image: TEST_IMAGE, description: '' },
          { name: 'r', displayName: 'R', image: TEST_R_IMAGE, description: '' },
        ],
        dockerMemLimitMb: 512,
      }),
    );
    await createUsersWithRoles(hub, {
      'crs-dprof': { password: 'crs-dprof-password', roles: ['instructor'] },
      [student]: { password: 'crs-dan-password', roles: ['student'] },
    });
    const prof = await signedIn(hub, 'crs-dprof', 'crs-dprof-password');
    await coursesWithANotebook(prof, [
      { code: 'crs-stats', fields: { profiles: 'r' } },
      { code: 'crs-py', fields: { profiles: 'python' } },
    ]);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await hub?.close().catch(() => undefined);
    await cleanupInstance(instance, { printLogs: failed });
  });

  it("starts the course's own image from its link (whatever the link asks), and copies the notebook into the container's home", async () => {
    const dan = await signedIn(hub, student, 'crs-dan-password');
    // A profile in the link is not read: the course's profile is started.
    const first = await dan.client.get('/hub/courses/crs-stats/open/week1.ipynb?profile=python');
    assert.equal(first.status, 302);
    assert.match(first.location ?? '', /^\/hub\/spawn-pending\//);
    await waitForReady(dan.client, esc);
    const landed = await dan.client.follow('/hub/courses/crs-stats/open/week1.ipynb');
    assert.equal(landed.path, `/user/${esc}/lab/tree/crs-stats/week1.ipynb`);
    const image = await docker(['inspect', '--format', '{{.Config.Image}}', container]);
    assert.equal(image.stdout.trim(), TEST_R_IMAGE);
    const cat = await dockerExec(container, ['cat', '/home/student/crs-stats/week1.ipynb']);
    assert.equal(cat.stdout, notebook('print("crs-stats")'));
    // Written by the server itself: owned by the container's notebook user, not root.
    const owner = await dockerExec(container, ['stat', '-c', '%U', '/home/student/crs-stats/week1.ipynb']);
    assert.notEqual(owner.stdout.trim(), 'root');

    // A course that needs another image does not reuse (or silently replace) the running server.
    const other = await dan.client.get('/hub/courses/crs-py/open/week1.ipynb');
    assert.equal(other.status, 409);
    assert.match(other.body, /Your server runs <strong>r<\/strong>, but crs-py uses python/);
    assert.equal((await dockerExec(container, ['test', '-e', '/home/student/crs-py'])).code, 1, 'nothing of the other course was copied');
  });
});
