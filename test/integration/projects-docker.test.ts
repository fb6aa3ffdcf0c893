import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createLogger } from '../../server/log.js';
import { escapeName } from '../../server/names.js';
import { ProjectStorage } from '../../server/projects/index.js';
import type { DockerSpawner, SpawnSpec, StartedServer } from '../../server/spawner/index.js';
import type { ProjectMount } from '../../server/spawner/spawner.js';
import { cleanupInstance, dockerExec, makeDockerSpawner, requireDockerImage, testInstance } from '../helpers/docker.js';
import { tempDataDir } from '../helpers/hub.js';
import { unmountUnder } from '../helpers/projects.js';

/**
 * Issue 12, storage, for the Docker spawner: real containers get their members' project folders
 * from real fixed-size ext4 images (ProjectStorage, as the hub makes them). A member writes, a
 * second member reads it, writing past the capacity is ENOSPC inside the container, and a
 * non-member's container (or a removed member's next one) has no such folder.
 */

const HOME = '/home/student';

function specOf(user: string, projects: ProjectMount[]): SpawnSpec {
  const escapedName = escapeName(user);
  return {
    user,
    escapedName,
    baseUrl: `/user/${escapedName}/`,
    secret: randomBytes(16).toString('hex'),
    defaultUrl: '/lab',
    ephemeral: false,
    env: {},
    projects,
  };
}

describe('research projects on the Docker spawner: project folders bound into members\' containers', function () {
  this.timeout(300_000);
  const instance = testInstance('dkp');
  const dataDir = tempDataDir('dkp-projects');
  const storage = new ProjectStorage(`${dataDir}/projects`, createLogger('silent'));
  let spawner: DockerSpawner;
  const started = new Map<string, StartedServer>();
  let mine: ProjectMount;
  let theirs: ProjectMount;

  const container = (user: string): string => spawner.containerName(escapeName(user));
  const exec = (user: string, script: string) => dockerExec(container(user), ['bash', '-c', script]);

  async function start(user: string, projects: ProjectMount[]): Promise<void> {
    const s = await spawner.start(specOf(user, projects), { signal: new AbortController().signal, onProgress: () => undefined, log: createLogger('silent') });
    started.set(user, s);
  }

  before(async () => {
    await requireDockerImage();
    spawner = makeDockerSpawner(instance);
    for (const [n, mb] of [['P-7101', 16], ['P-7102', 16]] as const) await storage.create(n, mb);
    mine = { number: 'P-7101', shared: storage.sharedOf('P-7101'), datasets: storage.datasetsOf('P-7101') };
    theirs = { number: 'P-7102', shared: storage.sharedOf('P-7102'), datasets: storage.datasetsOf('P-7102') };
    fs.writeFileSync(`${mine.datasets}/survey.csv`, 'id,answer\n1,yes\n');
    fs.writeFileSync(`${theirs.shared}/secret.txt`, 'other project\n');
  });

  after(async () => {
    for (const [user, s] of started) await spawner.stop(specOf(user, []), s.state).catch(() => undefined);
    await spawner?.close();
    await cleanupInstance(instance);
    for (const n of ['P-7101', 'P-7102']) await storage.remove(n).catch(() => undefined);
    unmountUnder(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a member writes the shared folder and reads the datasets, which are read-only', async () => {
    await start('dkp-lead', [mine]);
    const w = await exec('dkp-lead', `echo "from the lead" > ${HOME}/projects/P-7101/notes.txt && cat ${HOME}/projects/P-7101/notes.txt && id -u`);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /from the lead\n1000/);
    const d = await exec('dkp-lead', `cat ${HOME}/projects/P-7101-datasets/survey.csv`);
    assert.equal(d.stdout, 'id,answer\n1,yes\n', d.stderr);
    const ro = await exec('dkp-lead', `touch ${HOME}/projects/P-7101-datasets/x`);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    // The host sees the file on the project's own filesystem.
    assert.equal(fs.readFileSync(`${mine.shared}/notes.txt`, 'utf8'), 'from the lead\n');
  });

  it('a second member reads and changes the first member\'s file', async () => {
    await start('dkp-member', [mine]);
    const r = await exec('dkp-member', `cat ${HOME}/projects/P-7101/notes.txt && echo "and the member" >> ${HOME}/projects/P-7101/notes.txt`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'from the lead\n');
    assert.equal(fs.readFileSync(`${mine.shared}/notes.txt`, 'utf8'), 'from the lead\nand the member\n');
  });

  it('writing past the capacity fails with ENOSPC inside the container, and other projects keep their space', async () => {
    const freeBefore = (await storage.usage('P-7102'))!.freeBytes;
    const r = await dockerExec(container('dkp-lead'), [
      '/opt/notebook/bin/python',
      '-c',
      [
        'import errno',
        'try:',
        `    with open("${HOME}/projects/P-7101/big.bin", "wb") as f:`,
        '        for _ in range(64): f.write(b"x" * (1024 * 1024)); f.flush()',
        '    print("WROTE ALL")',
        'except OSError as e:',
        '    print(errno.errorcode[e.errno])',
      ].join('\n'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ENOSPC');
    assert.equal((await storage.usage('P-7102'))!.freeBytes, freeBefore);
    const rm = await exec('dkp-lead', `rm ${HOME}/projects/P-7101/big.bin`);
    assert.equal(rm.code, 0, rm.stderr);
  });

  it('a non-member\'s container has no project folder, and no other project is reachable from a member\'s', async () => {
    await start('dkp-other', []);
    const r = await exec('dkp-other', `ls ${HOME}/projects/P-7101`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such file or directory/);
    const listed = await exec('dkp-lead', `ls ${HOME}/projects`);
    assert.deepEqual(listed.stdout.split('\n').filter(Boolean).sort(), ['P-7101', 'P-7101-datasets']);
    // The other project's file is nowhere in the container's filesystem.
    const found = await exec('dkp-lead', 'find / -xdev -name secret.txt 2>/dev/null; find /home -name secret.txt 2>/dev/null; echo done');
    assert.equal(found.stdout, 'done\n');
  });

  it('a removed member\'s next server starts without the folder', async () => {
    // ProjectService stops a removed member's server; the next start reads the membership again (no project).
    const before = await exec('dkp-member', `test -w ${HOME}/projects/P-7101 && echo yes`);
    assert.equal(before.stdout, 'yes\n', 'the member had the folder while a member');
    const s = started.get('dkp-member')!;
    await spawner.stop(specOf('dkp-member', []), s.state);
    started.delete('dkp-member');
    await start('dkp-member', []);
    const r = await exec('dkp-member', `cat ${HOME}/projects/P-7101/notes.txt`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such file or directory/);
    // Only the bind went away: the mount point Docker made in the home volume stays, empty and root's (README).
    const home = await exec('dkp-member', `stat -c %U ${HOME} ${HOME}/projects`);
    assert.equal(home.stdout, 'student\nroot\n');
  });
});
