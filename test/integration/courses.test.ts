import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { ADMIN_PASSWORD, clientFor, startTestHub, waitForReady } from '../helpers/hub.js';
import type { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';
import { escapeName } from '../../server/names.js';
import { createUsersWithRoles, notebook, renameInZip, signedIn, upload, zipOf } from '../helpers/courses.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/**
 * Courses against a real hub with the local spawner (real JupyterLab servers, one Unix account
 * each): instructors publish, uploads are checked, students open course links and their edits
 * survive new versions.
 */
describe('courses: instructors publish versions, students open course links and keep their work', function () {
  this.timeout(240_000);
  let hub: Hub;
  let prof: { client: HubClient; csrf: string };
  let prof2: { client: HubClient; csrf: string };
  let ann: { client: HubClient; csrf: string };
  let bob: { client: HubClient; csrf: string };
  const versionsDir = (code: string): string => path.join(hub.config.dataDir, 'courses', code, 'versions');
  const stagingDir = (code: string): string => path.join(hub.config.dataDir, 'courses', code, 'staging');

  const createCourse = async (who: { client: HubClient; csrf: string }, fields: Record<string, string>): Promise<number> => {
    const r = await who.client.request('POST', '/hub/courses', { form: { _csrf: who.csrf, ...fields } });
    return r.status;
  };

  before(async () => {
    // A 60 MB file limit, so "a file past the limit" and "a 50 MB output" are separate checks.
    hub = await startTestHub('courses', { courseMaxFileMb: 60 });
    await createUsersWithRoles(hub, {
      'crs-prof': { password: 'crs-prof-password', roles: ['instructor'] },
      'crs-prof2': { password: 'crs-prof2-password', roles: ['instructor'] },
      'crs-ann': { password: 'crs-ann-password', roles: ['student'] },
      'crs-bob': { password: 'crs-bob-password', roles: ['student'] },
      'crs-cy': { password: 'crs-cy-password', roles: ['student'] },
    });
    [prof, prof2, ann, bob] = await Promise.all([
      signedIn(hub, 'crs-prof', 'crs-prof-password'),
      signedIn(hub, 'crs-prof2', 'crs-prof2-password'),
      signedIn(hub, 'crs-ann', 'crs-ann-password'),
      signedIn(hub, 'crs-bob', 'crs-bob-password'),
    ]);
    assert.equal(await createCourse(prof, { code: 'crs101', title: 'Data 101', term: 'Spring', description: 'Intro' }), 303);
    assert.equal(await createCourse(prof2, { code: 'crs202', title: 'Other course', enrolment: 'roster' }), 303);
  });

  after(async () => {
    await hub?.close();
  });

  it('lists courses in the catalog; only instructors create them', async () => {
    const catalog = await ann.client.get('/hub/courses');
    assert.equal(catalog.status, 200);
    assert.match(catalog.body, /crs101[\s\S]*Data 101/);
    assert.doesNotMatch(catalog.body, /id="new-course"/);
    assert.equal(await createCourse(ann, { code: 'crs-nope', title: 'Mine' }), 403);
    assert.equal(await createCourse(prof, { code: 'crs101', title: 'Again' }), 409);
    assert.equal(await createCourse(prof, { code: '../x', title: 'Bad code' }), 400);
    assert.equal((await ann.client.get('/hub/courses/crs-nope')).status, 404);
  });

  it('an admin grants the instructor role, and the account can then create courses', async () => {
    const cy = await signedIn(hub, 'crs-cy', 'crs-cy-password');
    assert.equal(await createCourse(cy, { code: 'crs-cy1', title: 'Cy' }), 403);
    const admin = await signedIn(hub, 'admin', ADMIN_PASSWORD);
    const grant = await admin.client.request('PUT', '/hub/api/users/crs-cy/roles', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': admin.csrf, accept: 'application/json' },
      body: JSON.stringify({ roles: ['instructor'] }),
    });
    assert.equal(grant.status, 200, grant.body);
    assert.equal(await createCourse(cy, { code: 'crs-cy1', title: 'Cy' }), 303);
    assert.match((await cy.client.get('/hub/courses/crs-cy1')).body, /id="publish-form"/);
    // Admins manage every course.
    assert.equal((await admin.client.get('/hub/courses/crs101/dashboard')).status, 200);
  });

  it('publishes notebooks and data as an immutable version with a manifest of hashes', async () => {
    const lab1 = notebook('print("lab 1")');
    const lab2 = notebook('print("lab 2")');
    const r = await upload(prof.client, prof.csrf, '/hub/courses/crs101/publish', [
      { name: 'lab1.ipynb', data: lab1 },
      { name: 'lab2.ipynb', data: lab2 },
      { name: 'data/cities.csv', data: 'city,pop\nOslo,700000\n' },
    ]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.version, 1);
    const manifest = JSON.parse(fs.readFileSync(path.join(versionsDir('crs101'), '1', 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string; size: number }> };
    assert.deepEqual(Object.keys(manifest.files).sort(), ['data/cities.csv', 'lab1.ipynb', 'lab2.ipynb']);
    assert.equal(manifest.files['lab1.ipynb'].sha256, sha(lab1));
    assert.equal(fs.readFileSync(path.join(versionsDir('crs101'), '1', 'files', 'data', 'cities.csv'), 'utf8'), 'city,pop\nOslo,700000\n');
    const page = await prof.client.get('/hub/courses/crs101');
    assert.match(page.body, /\/hub\/courses\/crs101\/open\/lab1\.ipynb/);
    assert.match(page.body, /id="course-link"[^>]*value="http:\/\/[^"]+\/hub\/courses\/crs101\/open"/);
  });

  describe('bad uploads are refused with a message, and change nothing', () => {
    const cases: { story: string; files: () => Promise<{ name: string; data: string | Buffer }[]>; status: number; message: RegExp }[] = [
      { story: 'a zip with ../', files: async () => [{ name: 'evil.zip', data: renameInZip(await zipOf([{ name: 'ok.txt', data: 'x' }, { name: 'xx/evil.txt', data: 'pwned' }]), 'xx/evil.txt', '../evil.txt') }], status: 400, message: /invalid relative path|leaves the course folder|\.\./ },
      { story: 'a zip with an absolute path', files: async () => [{ name: 'abs.zip', data: renameInZip(await zipOf([{ name: 'Xtmp/crs-abs.txt', data: 'x' }]), 'Xtmp/crs-abs.txt', '/tmp/crs-abs.txt') }], status: 400, message: /absolute/ },
      { story: 'a zip with a symlink', files: async () => [{ name: 'link.zip', data: await zipOf([{ name: 'notes/passwd', data: '/etc/passwd', mode: 0o120777 }]) }], status: 400, message: /symbolic link/ },
      { story: 'a zip with a device entry', files: async () => [{ name: 'dev.zip', data: await zipOf([{ name: 'null', data: '', mode: 0o020666 }]) }], status: 400, message: /not a regular file/ },
      { story: 'a file past the size limit', files: async () => [{ name: 'big.csv', data: Buffer.alloc(61 * 1024 * 1024, 0x61) }], status: 413, message: /larger than 60 MB/ },
      { story: 'a notebook that is not JSON', files: async () => [{ name: 'broken.ipynb', data: '{"nbformat": 4, "cells": [' }], status: 400, message: /broken\.ipynb is not a valid notebook: it is not JSON/ },
      { story: 'an nbformat 3 notebook', files: async () => [{ name: 'old.ipynb', data: JSON.stringify({ nbformat: 3, worksheets: [] }) }], status: 400, message: /only nbformat 4/ },
      {
        story: 'a notebook with a 50 MB output',
        files: async () => [{ name: 'video.ipynb', data: notebook('show()', [{ output_type: 'display_data', metadata: {}, data: { 'text/plain': 'x'.repeat(50 * 1024 * 1024) } }]) }],
        status: 413,
        message: /output of 50 MB, more than 10 MB/,
      },
      { story: 'a hidden file name', files: async () => [{ name: '.bashrc', data: 'x' }], status: 400, message: /hidden files/ },
    ];
    for (const c of cases) {
      it(c.story, async () => {
        const before = fs.readdirSync(versionsDir('crs101')).sort();
        // A good file along with the bad one: it must not be published either.
        const r = await upload(prof.client, prof.csrf, '/hub/courses/crs101/publish', [{ name: 'lab3.ipynb', data: notebook('1') }, ...(await c.files())]);
        assert.equal(r.status, c.status, JSON.stringify(r.body).slice(0, 300));
        assert.match(r.body.message ?? '', c.message);
        assert.deepEqual(fs.readdirSync(versionsDir('crs101')).sort(), before);
        assert.deepEqual(fs.readdirSync(stagingDir('crs101')), [], 'no staging folder left behind');
        assert.equal(fs.existsSync('/tmp/crs-abs.txt'), false);
        const page = await prof.client.get('/hub/courses/crs101');
        assert.doesNotMatch(page.body, /lab3\.ipynb/);
      });
    }
  });

  it('unpacks a zipped folder without its top folder, and keeps files not uploaded again', async () => {
    const zip = await zipOf([
      { name: 'week2/', data: '' },
      { name: 'week2/lab4.ipynb', data: notebook('print(4)') },
      { name: 'week2/__MACOSX/._lab4.ipynb', data: 'junk' },
    ]);
    const r = await upload(prof.client, prof.csrf, '/hub/courses/crs101/publish', [{ name: 'week2.zip', data: zip }]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.files?.sort(), ['data/cities.csv', 'lab1.ipynb', 'lab2.ipynb', 'lab4.ipynb']);
  });

  it('rolls back by publishing a new version equal to an old one, with the history and its diff', async () => {
    const v = (await upload(prof.client, prof.csrf, '/hub/courses/crs101/publish', [{ name: 'lab1.ipynb', data: notebook('print("lab 1, fixed")') }], { replace: 'on' })).body.version ?? 0;
    const rb = await prof.client.request('POST', '/hub/courses/crs101/rollback', { form: { _csrf: prof.csrf, version: '1' }, headers: { accept: 'application/json' } });
    assert.equal(rb.status, 200, rb.body);
    const body = JSON.parse(rb.body) as { version: number; rollbackOf: number };
    assert.deepEqual(body, { version: v + 1, rollbackOf: 1, redirect: `/hub/courses/crs101?notice=${encodeURIComponent(`Version ${v + 1} restores version 1.`)}` });
    const m1 = JSON.parse(fs.readFileSync(path.join(versionsDir('crs101'), '1', 'manifest.json'), 'utf8')) as { files: unknown };
    const mNew = JSON.parse(fs.readFileSync(path.join(versionsDir('crs101'), String(v + 1), 'manifest.json'), 'utf8')) as { files: unknown };
    assert.deepEqual(mNew.files, m1.files);
    // Old versions stay as they were.
    assert.ok(fs.existsSync(path.join(versionsDir('crs101'), String(v), 'files', 'lab1.ipynb')));
    const page = await prof.client.get('/hub/courses/crs101');
    assert.match(page.body, new RegExp(`v${v + 1} <span class="muted">\\(restores v1\\)</span>`));
    // The version replacing everything with lab1 removed the others; the rollback adds them back.
    assert.match(page.body, new RegExp(`data-version="${v}"[\\s\\S]*?− lab2\\.ipynb`));
    assert.match(page.body, new RegExp(`data-version="${v + 1}"[\\s\\S]*?\\+ lab2\\.ipynb[\\s\\S]*?~ lab1\\.ipynb`));
  });

  it('two concurrent publishes make two whole versions, never a mixed one', async () => {
    const before = Number(fs.readdirSync(versionsDir('crs101')).sort((a, b) => Number(b) - Number(a))[0]);
    const a = notebook('print("A")');
    const b = notebook('print("B")');
    const [ra, rb] = await Promise.all([
      upload(prof.client, prof.csrf, '/hub/courses/crs101/publish', [{ name: 'race.ipynb', data: a }, { name: 'only-a.txt', data: 'a' }], { replace: 'on' }),
      upload(prof.client, prof.csrf, '/hub/courses/crs101/publish', [{ name: 'race.ipynb', data: b }, { name: 'only-b.txt', data: 'b' }], { replace: 'on' }),
    ]);
    assert.equal(ra.status, 200, JSON.stringify(ra.body));
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    assert.deepEqual([ra.body.version, rb.body.version].sort(), [before + 1, before + 2]);
    for (const [r, content, only] of [[ra, a, 'only-a.txt'], [rb, b, 'only-b.txt']] as const) {
      const dir = path.join(versionsDir('crs101'), String(r.body.version));
      const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string }> };
      assert.deepEqual(Object.keys(m.files).sort(), [only, 'race.ipynb']);
      assert.equal(m.files['race.ipynb'].sha256, sha(content));
      assert.equal(sha(fs.readFileSync(path.join(dir, 'files', 'race.ipynb'))), sha(content));
    }
  });

  describe('the authorization matrix', () => {
    it('a student can not publish, roll back, change settings or the roster, or see the dashboard', async () => {
      assert.equal((await upload(ann.client, ann.csrf, '/hub/courses/crs101/publish', [{ name: 'x.ipynb', data: notebook('1') }])).status, 403);
      for (const [p, form] of [['/hub/courses/crs101/rollback', { version: '1' }], ['/hub/courses/crs101/settings', { title: 'Taken over' }], ['/hub/courses/crs101/roster', { csv: 'crs-ann' }]] as const) {
        assert.equal((await ann.client.request('POST', p, { form: { _csrf: ann.csrf, ...form } })).status, 403, p);
      }
      assert.equal((await ann.client.get('/hub/courses/crs101/dashboard')).status, 403);
      assert.equal((await ann.client.get('/hub/courses/crs101/dashboard.csv')).status, 403);
      assert.doesNotMatch((await ann.client.get('/hub/courses/crs101')).body, /id="publish-form"/);
    });

    it('an instructor of one course can not manage another', async () => {
      assert.equal((await upload(prof2.client, prof2.csrf, '/hub/courses/crs101/publish', [{ name: 'x.ipynb', data: notebook('1') }])).status, 403);
      assert.equal((await prof2.client.get('/hub/courses/crs101/dashboard')).status, 403);
      assert.equal((await prof.client.request('POST', '/hub/courses/crs202/settings', { form: { _csrf: prof.csrf, title: 'Mine now' } })).status, 403);
      assert.equal((await prof.client.get('/hub/courses/crs202/dashboard')).status, 403);
    });

    it('a publish without the XSRF token is refused', async () => {
      assert.equal((await upload(prof.client, 'not-the-token', '/hub/courses/crs101/publish', [{ name: 'x.ipynb', data: notebook('1') }])).status, 403);
    });

    it('a student not on the roster can not open a roster course; one on it can join', async () => {
      const r = await bob.client.get('/hub/courses/crs202/open');
      assert.equal(r.status, 403);
      assert.match(r.body, /roster only/);
      const roster = await prof2.client.request('POST', '/hub/courses/crs202/roster', { form: { _csrf: prof2.csrf, csv: 'username,name\ncrs-bob,Bob\n' }, headers: { accept: 'application/json' } });
      assert.equal(roster.status, 200, roster.body);
      const join = await bob.client.request('POST', '/hub/courses/crs202/join', { form: { _csrf: bob.csrf } });
      assert.equal(join.status, 303);
      const dash = await prof2.client.get('/hub/courses/crs202/dashboard');
      assert.match(dash.body, /data-student="crs-bob"/);
    });

    it('a signed-out visitor is sent to sign in and back to the same course link', async () => {
      const anon = clientFor(hub);
      const r = await anon.get('/hub/courses/crs101/open/lab1.ipynb');
      assert.equal(r.status, 302);
      assert.equal(r.location, `/hub/login?next=${encodeURIComponent('/hub/courses/crs101/open/lab1.ipynb')}`);
      const login = await anon.login('crs-bob', 'crs-bob-password', '/hub/courses/crs101/open/lab1.ipynb');
      assert.equal(login.status, 303);
      assert.equal(login.location, '/hub/courses/crs101/open/lab1.ipynb');
    });
  });

  describe('a student opens course links, edits, and receives version 2', () => {
    const student = 'crs-ann';
    const esc = escapeName(student);
    const readFile = async (rel: string): Promise<{ status: number; content?: string }> => {
      const r = await ann.client.get(`/user/${esc}/api/contents/crs303/${rel}?content=1&type=file&format=text`, { accept: 'application/json' });
      return { status: r.status, content: r.status === 200 ? (JSON.parse(r.body) as { content: string }).content : undefined };
    };
    const writeFile = async (rel: string, content: string): Promise<void> => {
      const xsrf = await xsrfToken(ann.client, esc);
      const r = await ann.client.request('PUT', `/user/${esc}/api/contents/crs303/${rel}`, {
        headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf, accept: 'application/json' },
        body: JSON.stringify({ type: 'file', format: 'text', content }),
      });
      assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.body}`);
    };
    const openLink = async (rel: string): Promise<string> => {
      const r = await ann.client.follow(`/hub/courses/crs303/open/${rel}`);
      return r.path;
    };
    const v1 = { lab1: notebook('print("v1 lab1")'), lab2: notebook('print("v1 lab2")') };
    const v2 = { lab1: notebook('print("v2 lab1")'), lab2: notebook('print("v2 lab2")'), lab3: notebook('print("v2 lab3")') };

    before(async () => {
      assert.equal(await createCourse(prof, { code: 'crs303', title: 'Notebooks 303' }), 303);
      const r = await upload(prof.client, prof.csrf, '/hub/courses/crs303/publish', [
        { name: 'lab1.ipynb', data: v1.lab1 },
        { name: 'lab2.ipynb', data: v1.lab2 },
        { name: 'notes.txt', data: 'read me' },
      ]);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });

    it('starts their server from the link, copies the files into ~/crs303/ and opens the notebook in JupyterLab', async () => {
      const first = await ann.client.get('/hub/courses/crs303/open/lab1.ipynb');
      assert.equal(first.status, 302);
      assert.match(first.location ?? '', new RegExp(`^/hub/spawn-pending/${esc}\\?next=${encodeURIComponent('/hub/courses/crs303/open/lab1.ipynb').replace(/[.]/g, '\\.')}$`));
      await waitForReady(ann.client, esc);
      assert.equal(await openLink('lab1.ipynb'), `/user/${esc}/lab/tree/crs303/lab1.ipynb`);
      assert.equal((await readFile('lab1.ipynb')).content, v1.lab1);
      assert.equal((await readFile('lab2.ipynb')).content, v1.lab2);
      assert.equal((await readFile('notes.txt')).content, 'read me');
      // The files belong to the student's own server account, not to the hub.
      const home = path.join(hub.config.dataDir, 'homes', esc, 'crs303', 'lab1.ipynb');
      if (fs.existsSync(home)) assert.notEqual(fs.statSync(home).uid, process.getuid?.());
    });

    it('shows the student on the instructor dashboard, with the notebook they opened, and in the CSV', async () => {
      const dash = await prof.client.get('/hub/courses/crs303/dashboard');
      assert.equal(dash.status, 200);
      assert.match(dash.body, new RegExp(`data-student="${student}"[\\s\\S]*?running[\\s\\S]*?v1[\\s\\S]*?lab1\\.ipynb`));
      const csv = await prof.client.get('/hub/courses/crs303/dashboard.csv');
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      const [header, row] = csv.body.trim().split('\r\n');
      assert.equal(header, '"student","email","server","last_activity","version_received","conflicts","opened:lab1.ipynb","opened:lab2.ipynb"');
      assert.match(row, new RegExp(`^"${student}","","running","\\d{4}-[^"]+","1","","\\d{4}-[^"]+",""$`));
    });

    it("keeps the student's edit, restores a file they deleted that changed, and tells them about the conflict", async () => {
      await writeFile('lab1.ipynb', notebook('print("my answer")'));
      const xsrf = await xsrfToken(ann.client, esc);
      const del = await ann.client.request('DELETE', `/user/${esc}/api/contents/crs303/lab2.ipynb`, { headers: { 'x-xsrftoken': xsrf } });
      assert.equal(del.status, 204);
      // The student deletes notes.txt too, which the instructor doesn't change: it stays deleted.
      assert.equal((await ann.client.request('DELETE', `/user/${esc}/api/contents/crs303/notes.txt`, { headers: { 'x-xsrftoken': xsrf } })).status, 204);

      const r = await upload(prof.client, prof.csrf, '/hub/courses/crs303/publish', [
        { name: 'lab1.ipynb', data: v2.lab1 },
        { name: 'lab2.ipynb', data: v2.lab2 },
        { name: 'lab3.ipynb', data: v2.lab3 },
      ]);
      assert.equal(r.body.version, 2);

      // Before they open anything, their home says what changed.
      const home = await ann.client.get('/hub/home');
      assert.match(home.body, /id="my-courses"/);
      assert.match(home.body, /lab3\.ipynb<\/a>\s*<span class="badge new">new/);
      assert.match(home.body, /lab1\.ipynb<\/a>\s*<span class="badge changed">updated in v2/);

      assert.equal(await openLink('lab3.ipynb'), `/user/${esc}/lab/tree/crs303/lab3.ipynb`);
      assert.equal((await readFile('lab1.ipynb')).content, notebook('print("my answer")'), 'their edit stays');
      assert.equal((await readFile('lab1.v2-from-course.ipynb')).content, v2.lab1, 'the new version lands beside it');
      assert.equal((await readFile('lab2.ipynb')).content, v2.lab2, 'deleted and changed upstream: it comes back');
      assert.equal((await readFile('lab3.ipynb')).content, v2.lab3);
      assert.equal((await readFile('notes.txt')).status, 404, 'deleted and unchanged upstream: it stays deleted');

      const page = await ann.client.get('/hub/courses/crs303');
      assert.match(page.body, /id="conflicts"[\s\S]*lab1\.ipynb<\/strong>: the course's version 2 is in <code>crs303\/lab1\.v2-from-course\.ipynb/);
      assert.match((await ann.client.get('/hub/home')).body, /1 file changed by the course while you had edited it: your copy was kept/);
      // Opening again changes nothing: no second copy beside.
      await openLink('lab1.ipynb');
      assert.equal((await readFile('lab1.v2-from-course-2.ipynb')).status, 404);
    });

    it('resets a notebook to the course version in one click, keeping their copy aside', async () => {
      const r = await ann.client.request('POST', '/hub/courses/crs303/reset', { form: { _csrf: ann.csrf, path: 'lab1.ipynb' }, headers: { accept: 'application/json' } });
      assert.equal(r.status, 200, r.body);
      const aside = (JSON.parse(r.body) as { aside: string }).aside;
      assert.match(aside, /^lab1\.mine-\d{8}-\d{4}\.ipynb$/);
      assert.equal((await readFile('lab1.ipynb')).content, v2.lab1);
      assert.equal((await readFile(aside)).content, notebook('print("my answer")'));
      assert.doesNotMatch((await ann.client.get('/hub/courses/crs303')).body, /id="conflicts"/);
    });
  });
});
