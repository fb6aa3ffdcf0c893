import assert from 'node:assert/strict';
import { SpawnFailed } from '../../server/errors.js';
import { grantContainerUid, numericUid, projectBinds } from '../../server/spawner/docker-project-mounts.js';

describe('Docker spawner: project binds', () => {
  const p = { number: 'P-1', shared: '/data/projects/P-1/mnt/shared', datasets: '/data/projects/P-1/mnt/datasets' };

  it('binds shared read-write and datasets read-only beside it, as the local spawner links them', () => {
    assert.deepEqual(projectBinds([p], '/home/student'), [
      { Type: 'bind', Source: p.shared, Target: '/home/student/projects/P-1', ReadOnly: false },
      { Type: 'bind', Source: p.datasets, Target: '/home/student/projects/P-1-datasets', ReadOnly: true },
    ]);
    assert.deepEqual(projectBinds([], '/home/student'), []);
  });

  it('takes the uid of a numeric image user and nothing else', () => {
    assert.equal(numericUid('1000:1000'), 1000);
    assert.equal(numericUid('1001'), 1001);
    assert.equal(numericUid('student'), null);
    assert.equal(numericUid('1000:staff'), null);
  });

  it('refuses an image with a named user when the member has projects, with a clear message', async () => {
    await assert.rejects(grantContainerUid([p], 'student'), (err: unknown) => err instanceof SpawnFailed && /project folders/.test(err.message));
    await grantContainerUid([], 'student');
  });
});
