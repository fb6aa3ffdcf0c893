import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { escapeName } from '../../server/names.js';
import { startTestHub, waitForReady } from '../helpers/hub.js';
import type { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';
import { createUsersWithRoles, notebook, signedIn } from '../helpers/courses.js';
import { launchBrowser, signInInBrowser } from '../helpers/browser.js';

interface Reply {
  status: number;
  body: { message?: string; version?: number; files?: string[]; diff?: { added: string[]; changed: string[]; removed: string[] } };
  location?: string;
}

/**
 * "Publish folder from my server": an instructor keeps the course material in their own
 * JupyterLab and publishes a folder of it. The hub reads it through the server's contents API
 * (a real JupyterLab, on the local spawner as the instructor's own Unix account), with the
 * same checks as an upload, and makes a new immutable version with its diff summary.
 */
describe('courses: an instructor publishes a folder from their own running server', function () {
  this.timeout(240_000);
  let hub: Hub;
  let prof: { client: HubClient; csrf: string };
  const esc = escapeName('gpl-prof');
  const versionsDir = (): string => path.join(hub.config.dataDir, 'courses', 'gpl101', 'versions');
  const stagingDir = (): string => path.join(hub.config.dataDir, 'courses', 'gpl101', 'staging');
  const versions = (): string[] => (fs.existsSync(versionsDir()) ? fs.readdirSync(versionsDir()).sort() : []);

  const publish = async (who: { client: HubClient; csrf: string }, folder: string, opts: { json?: boolean; replace?: boolean; csrf?: string } = {}): Promise<Reply> => {
    const r = await who.client.request('POST', '/hub/courses/gpl101/publish-server', {
      form: { _csrf: opts.csrf ?? who.csrf, folder, ...(opts.replace === false ? {} : { replace: 'on' }) },
      headers: opts.json === false ? {} : { accept: 'application/json' },
    });
    let body: Reply['body'] = {};
    try {
      body = JSON.parse(r.body) as Reply['body'];
    } catch {
      body = { message: r.body };
    }
    return { status: r.status, body, location: r.location ?? undefined };
  };

  /** Write a file in the instructor's server, as they would in JupyterLab (contents API through the proxy). */
  const put = async (rel: string, content: string): Promise<void> => {
    const xsrf = await xsrfToken(prof.client, esc);
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      await prof.client.request('PUT', `/user/${esc}/api/contents/${parts.slice(0, i).join('/')}`, { headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf }, body: JSON.stringify({ type: 'directory' }) });
    }
    const r = await prof.client.request('PUT', `/user/${esc}/api/contents/${rel}`, {
      headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf, accept: 'application/json' },
      body: JSON.stringify({ type: 'file', format: 'text', content }),
    });
    assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.body}`);
  };
  const remove = async (rel: string): Promise<void> => {
    const xsrf = await xsrfToken(prof.client, esc);
    assert.equal((await prof.client.request('DELETE', `/user/${esc}/api/contents/${rel}`, { headers: { 'x-xsrftoken': xsrf } })).status, 204);
  };

  before(async () => {
    // Small limits, so "past the limit" cases stay small.
    hub = await startTestHub('courses-publish-server', { courseMaxFileMb: 2, courseMaxUploadMb: 4, courseMaxFiles: 10, courseMaxOutputMb: 1 });
    await createUsersWithRoles(hub, {
      'gpl-prof': { password: 'gpl-prof-password', roles: ['instructor'] },
      'gpl-prof2': { password: 'gpl-prof2-password', roles: ['instructor'] },
      'gpl-stu': { password: 'gpl-stu-password', roles: ['student'] },
    });
    prof = await signedIn(hub, 'gpl-prof', 'gpl-prof-password');
    const r = await prof.client.request('POST', '/hub/courses', { form: { _csrf: prof.csrf, code: 'gpl101', title: 'Git pull 101' } });
    assert.equal(r.status, 303, r.body);
  });

  after(async () => {
    await hub?.close();
  });

  it('says so when the instructor’s server is not running, and publishes nothing', async () => {
    const page = await prof.client.get('/hub/courses/gpl101');
    assert.match(page.body, /id="publish-server-form"[\s\S]*Publish folder from my server/);
    const r = await publish(prof, 'material');
    assert.equal(r.status, 409);
    assert.match(r.body.message ?? '', /Your server is not running, so there is no folder to publish from/);
    assert.deepEqual(versions(), []);
  });

  it('publishes the folder as version 1, byte for byte, with what it added', async () => {
    await prof.client.get('/hub/spawn');
    await waitForReady(prof.client, esc);
    // The hand-over to the server's own origin, as opening JupyterLab does.
    await prof.client.openServer('/lab');
    const lab1 = notebook('print("lab 1")');
    await put('material/lab1.ipynb', lab1);
    await put('material/data/cities.csv', 'city,pop\nOslo,700000\n');
    await put('other/secret-notes.txt', 'not for students');
    const r = await publish(prof, 'material/');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.version, 1);
    assert.deepEqual(r.body.files?.sort(), ['data/cities.csv', 'lab1.ipynb']);
    assert.deepEqual(r.body.diff, { added: ['data/cities.csv', 'lab1.ipynb'], changed: [], removed: [] });
    assert.equal(fs.readFileSync(path.join(versionsDir(), '1', 'files', 'lab1.ipynb'), 'utf8'), lab1);
    const manifest = JSON.parse(fs.readFileSync(path.join(versionsDir(), '1', 'manifest.json'), 'utf8')) as { files: Record<string, unknown> };
    assert.deepEqual(Object.keys(manifest.files).sort(), ['data/cities.csv', 'lab1.ipynb']);
  });

  it('publishes the changed folder as version 2 with its diff summary, shown on the course page', async () => {
    await put('material/lab1.ipynb', notebook('print("lab 1, fixed")'));
    await put('material/lab2.ipynb', notebook('print("lab 2")'));
    await remove('material/data/cities.csv');
    // A plain form post (no script): back to the course page with the summary.
    const r = await publish(prof, 'material', { json: false });
    assert.equal(r.status, 303);
    assert.equal(r.location, `/hub/courses/gpl101?notice=${encodeURIComponent('Published version 2 from ~/material: 1 added, 1 changed, 1 removed.')}`);
    const page = await prof.client.get(r.location ?? '');
    assert.match(page.body, /Published version 2 from ~\/material: 1 added, 1 changed, 1 removed\./);
    assert.match(page.body, /data-version="2"[\s\S]*?\+ lab2\.ipynb[\s\S]*?~ lab1\.ipynb[\s\S]*?− data\/cities\.csv/);
    // Version 1 is untouched.
    assert.equal(fs.readFileSync(path.join(versionsDir(), '1', 'files', 'lab1.ipynb'), 'utf8'), notebook('print("lab 1")'));
  });

  it('without "the whole version", keeps the files of the current version that the folder lacks', async () => {
    await put('week3/lab3.ipynb', notebook('print("lab 3")'));
    const r = await publish(prof, 'week3', { replace: false });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.files?.sort(), ['lab1.ipynb', 'lab2.ipynb', 'lab3.ipynb']);
  });

  describe('bad content is refused with a message, and nothing changes', () => {
    const cases: { story: string; setup: () => Promise<void> | void; folder: string; status: number; message: RegExp }[] = [
      { story: 'a folder path with ..', setup: () => undefined, folder: '../gpl-stu', status: 400, message: /"\.\."/ },
      { story: 'an absolute folder path', setup: () => undefined, folder: '/etc', status: 400, message: /absolute path/ },
      { story: 'a folder that does not exist', setup: () => undefined, folder: 'nope', status: 400, message: /Your server has no folder nope/ },
      { story: 'a notebook that is not JSON', setup: () => put('bad1/broken.ipynb', '{"nbformat": 4, "cells": ['), folder: 'bad1', status: 400, message: /broken\.ipynb is not a valid notebook: it is not JSON/ },
      { story: 'an nbformat 3 notebook', setup: () => put('bad2/old.ipynb', JSON.stringify({ nbformat: 3, worksheets: [] })), folder: 'bad2', status: 400, message: /only nbformat 4/ },
      { story: 'a file past the size limit', setup: () => put('bad3/big.csv', 'x'.repeat(3 * 1024 * 1024)), folder: 'bad3', status: 413, message: /big\.csv is larger than 2 MB \(courseMaxFileMb\)/ },
      {
        story: 'a folder past the total limit',
        setup: async () => {
          for (const n of [1, 2, 3]) await put(`bad4/part${n}.csv`, 'y'.repeat(1.5 * 1024 * 1024));
        },
        folder: 'bad4',
        status: 413,
        message: /more than 4 MB \(courseMaxUploadMb\)/,
      },
      {
        story: 'too many files',
        setup: async () => {
          for (let n = 0; n < 11; n++) await put(`bad5/f${n}.txt`, String(n));
        },
        folder: 'bad5',
        status: 413,
        message: /more than 10 files \(courseMaxFiles\)/,
      },
      {
        story: 'a notebook with an output past the limit',
        setup: () => put('bad6/video.ipynb', notebook('show()', [{ output_type: 'display_data', metadata: {}, data: { 'text/plain': 'v'.repeat(1.5 * 1024 * 1024) } }])),
        folder: 'bad6',
        status: 413,
        message: /video\.ipynb: cell 1 has an output of 2 MB, more than 1 MB/,
      },
      {
        story: "a symbolic link to one of the hub's own files",
        setup: async () => {
          await put('bad7/ok.txt', 'fine');
          // As if made in a terminal of the instructor's server: `ln -s …/cookie-secret`.
          fs.symlinkSync(path.join(hub.config.dataDir, 'cookie-secret'), path.join(hub.config.dataDir, 'homes', esc, 'bad7', 'secret'));
        },
        folder: 'bad7',
        status: 400,
        message: /Your server can't read secret/,
      },
    ];
    for (const c of cases) {
      it(c.story, async () => {
        await c.setup();
        const before = versions();
        const r = await publish(prof, c.folder);
        assert.equal(r.status, c.status, JSON.stringify(r.body).slice(0, 300));
        assert.match(r.body.message ?? '', c.message);
        assert.deepEqual(versions(), before);
        assert.deepEqual(fs.readdirSync(stagingDir()), [], 'no staging folder left behind');
      });
    }

    it("the hub's secret never lands in a version", () => {
      const secret = fs.readFileSync(path.join(hub.config.dataDir, 'cookie-secret'), 'utf8').trim();
      for (const v of versions()) {
        for (const f of fs.readdirSync(path.join(versionsDir(), v, 'files'), { recursive: true }) as string[]) {
          const p = path.join(versionsDir(), v, 'files', f);
          if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p, 'utf8').includes(secret), `${v}/${f}`);
        }
      }
    });
  });

  it('in Chromium: the instructor types the folder, clicks the button, and sees the new version and its summary', async () => {
    await put('material/lab4.ipynb', notebook('print("lab 4")'));
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await signInInBrowser(page, hub.url, 'gpl-prof', 'gpl-prof-password');
      await page.goto(`${hub.url}/hub/courses/gpl101`);
      await page.getByLabel('Publish folder from my server').fill('material');
      await page.getByRole('button', { name: 'Publish folder from my server' }).click();
      await page.getByText(/Published version \d+ from ~\/material: 1 added, 0 changed, 1 removed\./).waitFor({ timeout: 30_000 });
      assert.match(await page.locator('#versions').innerText(), /\+ lab4\.ipynb/);
      // A bad folder gets the hub's page with the reason.
      await page.goto(`${hub.url}/hub/courses/gpl101`);
      await page.getByLabel('Publish folder from my server').fill('nope-folder');
      await page.getByRole('button', { name: 'Publish folder from my server' }).click();
      await page.getByText('Your server has no folder nope-folder.').waitFor({ timeout: 30_000 });
    } finally {
      await browser.close();
    }
  });

  it('only the course’s instructors may publish from their server, and only with the XSRF token', async () => {
    const before = versions();
    const stu = await signedIn(hub, 'gpl-stu', 'gpl-stu-password');
    assert.equal((await publish(stu, 'material')).status, 403);
    const prof2 = await signedIn(hub, 'gpl-prof2', 'gpl-prof2-password');
    assert.equal((await publish(prof2, 'material')).status, 403);
    assert.equal((await publish(prof, 'material', { csrf: 'not-the-token' })).status, 403);
    assert.deepEqual(versions(), before);
  });
});
