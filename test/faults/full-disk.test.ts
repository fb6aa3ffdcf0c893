import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, createUsers, startTestHub } from '../helpers/hub.js';
import { eventually, REPO_ROOT, reportFault, secondsSince } from './support.js';

/*
 * The data folder is a real 2 MiB tmpfs (the test runs as root, as CI does), filled up with a
 * file until the kernel answers ENOSPC: SQLite's own writes then fail with SQLITE_FULL.
 */

const LABEL = 'fault-full-disk';

/** Fill the file system under `dir` until it has no space left; returns the filler's path. */
function fillUp(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(16 * 1024);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

async function apiCsrf(client: HubClient): Promise<string> {
  return (JSON.parse((await client.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
}

describe('fault: the data folder runs out of space', function () {
  this.timeout(300_000);
  let dataDir: string;
  let hub: Hub | undefined;

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-full-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', dataDir]);
  });

  after(async () => {
    await hub?.close();
    execFileSync('umount', [dataDir]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes get a clear 503 page or JSON and a log line, nothing stored is lost, and all works again once space is freed', async () => {
    hub = await startTestHub(LABEL, { dataDir });
    await createUsers(hub, { fay: 'fay-password' });
    const fay = new HubClient(hub.url);
    assert.equal((await fay.login('fay', 'fay-password')).status, 303);
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const csrf = await apiCsrf(admin);
    const logFile = path.join(REPO_ROOT, 'test-output', `${LABEL}.log`);
    const logBefore = fs.readFileSync(logFile, 'utf8').length;

    const filler = fillUp(dataDir);

    // An admin adding a student: the write fails, and the answer says so.
    const create = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
      body: JSON.stringify({ name: 'gus', password: 'gus-password' }),
    });
    assert.equal(create.status, 503, create.body);
    const error = JSON.parse(create.body) as { code: string; message: string };
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.match(error.message, /retry/i);
    // A new sign-in (a session write) gets a page, not a stack trace.
    const newcomer = new HubClient(hub.url);
    const form = await newcomer.get('/hub/login');
    const signIn = form.status === 503 ? form : await newcomer.request('POST', '/hub/login', { form: { _csrf: HubClient.csrfFrom(form.body), username: 'fay', password: 'fay-password' } });
    assert.equal(signIn.status, 503);
    assert.match(signIn.headers.get('content-type') ?? '', /text\/html/);
    assert.doesNotMatch(signIn.body, /SqliteError|at .*\.js:\d+/);
    const log = fs.readFileSync(logFile, 'utf8').slice(logBefore);
    assert.match(log, /SQLITE_FULL/, 'the log names the cause');

    // Nothing stored before is lost: fay is still signed in on her open tab and her account is there.
    const home = await fay.get('/hub/home');
    assert.ok(home.status === 200 || home.status === 503, `home answered ${home.status}`);
    assert.equal((await hub.users.get('fay'))?.name, 'fay');

    fs.rmSync(filler);
    const freedAt = Date.now();
    let recovered = '';
    await eventually('an admin can add a student again', async () => {
      const r = await admin.request('POST', '/hub/api/users', {
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
        body: JSON.stringify({ name: 'gus', password: 'gus-password' }),
      });
      if (r.status === 201) recovered = secondsSince(freedAt);
      return r.status === 201;
    });
    assert.equal((await fay.get('/hub/home')).status, 200, 'fay is still signed in');
    const gus = new HubClient(hub.url);
    assert.equal((await gus.login('gus', 'gus-password')).status, 303);
    const again = new HubClient(hub.url);
    assert.equal((await again.login('fay', 'fay-password')).status, 303, "fay's account and password survived");
    reportFault('a full disk in the data folder (2 MiB tmpfs, SQLite store)', 'a 503 "retry in a few seconds" page/JSON for writes; open sessions kept', 'none', `${recovered} after space was freed`);
  });
});
