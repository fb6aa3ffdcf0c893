import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { escapeName } from '../../server/names.js';
import { ADMIN_PASSWORD, startTestHub, waitForReady } from '../helpers/hub.js';
import { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';
import { coursesWithANotebook, createUsersWithRoles, signedIn } from '../helpers/courses.js';

/**
 * Per-course datasets on the local spawner (real JupyterLab servers, each as its own Unix
 * account): a student who starts from a course's link has that course's dataset at
 * ~/datasets/NAME, readable and not writable, and can't read another course's dataset, not
 * even by its absolute path; started for the other course, they lose the first one.
 */
describe("course datasets on the local spawner: a course's data is readable, read-only, and only for its course", function () {
  this.timeout(240_000);
  let hub: Hub;
  let root: string;
  let fay: { client: HubClient; csrf: string };
  const student = 'gpl-fay';
  const esc = escapeName(student);

  /** Run a command as the student's server account, as code in their kernel would. */
  const asStudent = (...cmd: string[]): { code: number; out: string } => {
    const account = (JSON.parse(fs.readFileSync(path.join(hub.config.dataDir, 'accounts', fs.readdirSync(path.join(hub.config.dataDir, 'accounts')).find((f) => f.includes(esc)) ?? ''), 'utf8')) as { name: string }).name;
    const r = spawnSync('runuser', ['-u', account, '--', ...cmd], { encoding: 'utf8' });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
  };
  const contents = (rel: string) => fay.client.get(`/user/${esc}/api/contents/${rel}?content=1&type=file&format=text`, { accept: 'application/json' });

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-gplld-'));
    // Passable, not listable; each dataset closed to other accounts, as the README asks.
    fs.chmodSync(root, 0o711);
    for (const [name, file] of [['a', 'cities.csv'], ['b', 'grades.csv']]) {
      fs.mkdirSync(path.join(root, name), { mode: 0o750 });
      fs.chmodSync(path.join(root, name), 0o750);
      fs.writeFileSync(path.join(root, name, file), `data of course ${name}\n`, { mode: 0o640 });
    }
    hub = await startTestHub('courses-datasets', {
      localDatasets: [
        { source: path.join(root, 'a'), name: 'gpl-a' },
        { source: path.join(root, 'b'), name: 'gpl-b' },
      ],
    });
    await createUsersWithRoles(hub, {
      'gpl-lprof': { password: 'gpl-lprof-password', roles: ['instructor'] },
      [student]: { password: 'gpl-fay-password', roles: ['student'] },
    });
    const prof = await signedIn(hub, 'gpl-lprof', 'gpl-lprof-password');
    await coursesWithANotebook(prof, [
      { code: 'gpl-lda', fields: { datasets: 'gpl-a' } },
      { code: 'gpl-ldb', fields: { datasets: 'gpl-b' } },
    ]);
    fay = await signedIn(hub, student, 'gpl-fay-password');
  });

  after(async () => {
    await hub?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("gives a student who starts from the course link the course's dataset, read-only, and not another course's", async () => {
    assert.equal((await fay.client.get('/hub/courses/gpl-lda/open/week1.ipynb')).status, 302);
    await waitForReady(fay.client, esc);
    const landed = await fay.client.follow('/hub/courses/gpl-lda/open/week1.ipynb');
    assert.equal(landed.path, `/user/${esc}/lab/tree/gpl-lda/week1.ipynb`);

    // In JupyterLab's file browser: ~/datasets/gpl-a, readable.
    const read = await contents('datasets/gpl-a/cities.csv');
    assert.equal(read.status, 200, read.body);
    assert.equal((JSON.parse(read.body) as { content: string }).content, 'data of course a\n');
    // Saving into it fails, and nothing appears in the dataset.
    const xsrf = await xsrfToken(fay.client, esc);
    const write = await fay.client.request('PUT', `/user/${esc}/api/contents/datasets/gpl-a/mine.csv`, {
      headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf, accept: 'application/json' },
      body: JSON.stringify({ type: 'file', format: 'text', content: 'x' }),
    });
    assert.ok(write.status >= 400, `${write.status} ${write.body}`);
    assert.match(write.body, /Permission denied/);
    assert.equal(fs.existsSync(path.join(root, 'a', 'mine.csv')), false);
    assert.match(asStudent('sh', '-c', `echo x > ${path.join(root, 'a', 'cities.csv')}`).out, /Permission denied/);
    assert.equal(fs.readFileSync(path.join(root, 'a', 'cities.csv'), 'utf8'), 'data of course a\n');

    // The other course's dataset: no link, and its folder is closed to this account.
    assert.equal((await contents('datasets/gpl-b/grades.csv')).status, 404);
    const other = asStudent('cat', path.join(root, 'b', 'grades.csv'));
    assert.notEqual(other.code, 0);
    assert.match(other.out, /Permission denied/);
  });

  it('asks for a restart to open the other course, and then gives its dataset and takes the first away', async () => {
    const refused = await fay.client.get('/hub/courses/gpl-ldb/open/week1.ipynb');
    assert.equal(refused.status, 409);
    assert.match(refused.body, /mounts the dataset <strong>gpl-b<\/strong>/);
    assert.equal((await fay.client.request('POST', '/hub/stop', { form: { _csrf: fay.csrf } })).status, 303);
    assert.equal((await fay.client.get('/hub/courses/gpl-ldb/open/week1.ipynb')).status, 302);
    await waitForReady(fay.client, esc);
    assert.equal((await fay.client.follow('/hub/courses/gpl-ldb/open/week1.ipynb')).path, `/user/${esc}/lab/tree/gpl-ldb/week1.ipynb`);
    assert.equal((JSON.parse((await contents('datasets/gpl-b/grades.csv')).body) as { content: string }).content, 'data of course b\n');
    assert.equal((await contents('datasets/gpl-a/cities.csv')).status, 404);
    assert.match(asStudent('cat', path.join(root, 'a', 'cities.csv')).out, /Permission denied/);
  });

  it("removes the account's access to every dataset when an admin deletes the account, so a later account with its uid reads nothing", async () => {
    const acl = (dir: string): string => spawnSync('getfacl', ['-n', '-p', '--omit-header', dir], { encoding: 'utf8' }).stdout;
    const account = JSON.parse(fs.readFileSync(path.join(hub.config.dataDir, 'accounts', fs.readdirSync(path.join(hub.config.dataDir, 'accounts')).find((f) => f.includes(esc)) ?? ''), 'utf8')) as { uid: number };
    const entry = new RegExp(`^(default:)?user:${account.uid}:`, 'm');
    assert.match(acl(path.join(root, 'b')), entry, 'the last start gave gpl-b');
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const confirm = await admin.get(`/hub/admin/users/${esc}/delete`);
    assert.equal(confirm.status, 200);
    const done = await admin.request('POST', `/hub/admin/users/${esc}/delete`, { form: { _csrf: HubClient.csrfFrom(confirm.body), data: 'remove', confirm: student } });
    assert.equal(done.status, 303, done.body);
    assert.equal(await hub.users.get(student), null);
    for (const d of ['a', 'b']) {
      assert.doesNotMatch(acl(path.join(root, d)), entry, `no entry for the removed account's uid on ${d}`);
      assert.doesNotMatch(acl(path.join(root, d, d === 'a' ? 'cities.csv' : 'grades.csv')), entry, `nor on its files`);
    }
    assert.equal(fs.readFileSync(path.join(root, 'b', 'grades.csv'), 'utf8'), 'data of course b\n', 'the dataset itself is untouched');
  });
});
