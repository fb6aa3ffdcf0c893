import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { startTestHub, waitForReady } from '../helpers/hub.js';
import { cleanupInstance, dockerExec, dockerHubConfig, requireDockerImage, TEST_IMAGE, testInstance } from '../helpers/docker.js';
import { coursesWithANotebook, createUsersWithRoles, signedIn } from '../helpers/courses.js';
import { escapeName } from '../../server/names.js';

/**
 * Per-course datasets on the Docker spawner: a student who starts from a course's link gets
 * that course's datasets mounted read-only besides the profile's (here: none), chosen by the
 * hub from the course, and not the datasets of another course.
 */
describe("course datasets on the Docker spawner: a course's data is there, read-only, and another course's is not", function () {
  this.timeout(300_000);
  const instance = testInstance('gplds');
  let hub: Hub;
  let failed = false;
  let root: string;
  const student = 'gpl-eve';
  const esc = escapeName(student);
  const container = `${instance}-nb-${esc}`;

  before(async () => {
    await requireDockerImage();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-gplds-'));
    fs.chmodSync(root, 0o755);
    for (const [name, file] of [['a', 'cities.csv'], ['b', 'grades.csv']]) {
      fs.mkdirSync(path.join(root, name), { mode: 0o755 });
      fs.writeFileSync(path.join(root, name, file), `data of course ${name}\n`, { mode: 0o644 });
    }
    hub = await startTestHub(
      'courses-datasets-docker',
      dockerHubConfig(instance, {
        // The profile mounts no dataset of its own: each course brings its own.
        dockerProfiles: [{ name: 'python', displayName: 'Python', image: TEST_IMAGE, description: '', datasets: [] }],
        dockerDatasets: [
          { source: path.join(root, 'a'), name: 'gpl-a' },
          { source: path.join(root, 'b'), name: 'gpl-b' },
        ],
        dockerMemLimitMb: 512,
      }),
    );
    await createUsersWithRoles(hub, {
      'gpl-dprof': { password: 'gpl-dprof-password', roles: ['instructor'] },
      [student]: { password: 'gpl-eve-password', roles: ['student'] },
    });
    const prof = await signedIn(hub, 'gpl-dprof', 'gpl-dprof-password');
    await coursesWithANotebook(prof, [
      { code: 'gpl-dsa', fields: { profiles: 'python', datasets: 'gpl-a' } },
      { code: 'gpl-dsb', fields: { profiles: 'python', datasets: 'gpl-b' } },
    ]);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await hub?.close().catch(() => undefined);
    await cleanupInstance(instance, { printLogs: failed });
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("mounts the course's dataset read-only in the student's container, and not another course's", async () => {
    const eve = await signedIn(hub, student, 'gpl-eve-password');
    // Whatever the link asks for, the datasets come from the course.
    const first = await eve.client.get('/hub/courses/gpl-dsa/open/week1.ipynb?datasets=gpl-b');
    assert.equal(first.status, 302);
    await waitForReady(eve.client, esc);
    const landed = await eve.client.follow('/hub/courses/gpl-dsa/open/week1.ipynb');
    assert.equal(landed.path, `/user/${esc}/lab/tree/gpl-dsa/week1.ipynb`);

    const read = await dockerExec(container, ['cat', '/home/student/datasets/gpl-a/cities.csv']);
    assert.equal(read.stdout, 'data of course a\n');
    const write = await dockerExec(container, ['sh', '-c', 'echo x > /home/student/datasets/gpl-a/mine.csv']);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /Read-only file system/);
    assert.equal(fs.existsSync(path.join(root, 'a', 'mine.csv')), false);
    assert.equal((await dockerExec(container, ['test', '-e', '/home/student/datasets/gpl-b'])).code, 1, "the other course's dataset is not there");
    const env = await dockerExec(container, ['ls', '/home/student/datasets']);
    assert.deepEqual(env.stdout.split('\n').filter(Boolean), ['gpl-a']);
  });

  it("asks the student to restart before opening a course whose data their running server lacks", async () => {
    const eve = await signedIn(hub, student, 'gpl-eve-password');
    const other = await eve.client.get('/hub/courses/gpl-dsb/open/week1.ipynb');
    assert.equal(other.status, 409);
    assert.match(other.body, /mounts the dataset <strong>gpl-b<\/strong>, which your running server doesn&#39;t have|mounts the dataset <strong>gpl-b<\/strong>, which your running server doesn't have/);
    assert.equal((await dockerExec(container, ['test', '-e', '/home/student/gpl-dsb'])).code, 1, 'nothing of the other course was copied');
  });
});
