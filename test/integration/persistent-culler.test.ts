import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { loadConfig } from '../../server/config/index.js';
import { createHub, type Hub } from '../../server/index.js';
import { hasBusyKernel } from '../../server/pool/index.js';
import type { Route } from '../../server/proxy/route-table.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, createUsers, signInAndStart, tempDataDir, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel, xsrfToken } from '../helpers/kernel.js';
import { notebookVenv } from '../helpers/venv.js';

const OUTPUT = path.resolve(__dirname, '../../test-output');
const IDLE_TIMEOUT_S = 2;
const MAX_FAILED_CHECKS = 3;
/** Bound for "soon"; never an assertion on speed. */
const EVENTUALLY_MS = 30_000;

interface KernelModel {
  execution_state?: string;
}

/** Wait until `check` holds, up to a generous bound. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`expected within ${EVENTUALLY_MS} ms: ${what}`);
    await sleep(200);
  }
}

/** Save a file in the student's server through Jupyter's contents API, as JupyterLab does. */
async function saveFile(client: HubClient, name: string, file: string, content: string): Promise<void> {
  const res = await client.request('PUT', `/user/${name}/api/contents/${file}`, {
    headers: { 'content-type': 'application/json', 'x-xsrftoken': await xsrfToken(client, name), accept: 'application/json' },
    body: JSON.stringify({ type: 'file', format: 'text', content }),
  });
  assert.ok(res.status === 200 || res.status === 201, `saving ${file} answered ${res.status}: ${res.body.slice(0, 200)}`);
}

async function homePage(client: HubClient): Promise<string> {
  const home = await client.get('/hub/home');
  assert.equal(home.status, 200);
  return home.body;
}

describe('the culler of students\' servers', function () {
  this.timeout(300_000);

  let hub: Hub;
  let dataDir: string;
  const failedChecks: string[] = [];

  before(async () => {
    fs.mkdirSync(OUTPUT, { recursive: true });
    dataDir = tempDataDir('persistent-culler');
    const config = loadConfig({
      overrides: {
        port: 0,
        dataDir,
        notebookVenv: notebookVenv(),
        adminPassword: ADMIN_PASSWORD,
        logLevel: 'debug',
        stopServersOnExit: true,
        poolSize: 0,
        cullerIdleTimeoutS: IDLE_TIMEOUT_S,
        cullerMaxFailedChecks: MAX_FAILED_CHECKS,
        // The test runs each pass itself (cullOnce); the timer must not run one in between.
        cullerIntervalMs: 3_600_000,
        activityFlushMs: 100,
      },
    });
    const log = pino({ level: config.logLevel }, pino.destination({ dest: path.join(OUTPUT, 'persistent-culler.log'), sync: true, append: true }));
    hub = await createHub(config, {
      log,
      // Carol's server can't be asked about its kernels (a hung server, which a test can't
      // provoke reliably); everyone else's check is the real one.
      hasBusyKernel: (route: Route) => {
        if (route.escapedName !== 'carol') return hasBusyKernel(route);
        failedChecks.push(route.escapedName);
        return Promise.reject(new Error('simulated: api/kernels did not answer'));
      },
    });
    await createUsers(hub, { ann: 'ann-password', bob: 'bob-password', carol: 'carol-password' });
  });

  after(async () => {
    await hub?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops an idle student\'s server, keeps one whose kernel computes with the tab closed, and keeps one it cannot check for N-1 rounds', async () => {
    // Ann saves her work and walks away.
    const ann = await signInAndStart(hub, 'ann', 'ann-password');
    await saveFile(ann, 'ann', 'essay.txt', 'my work, not to be lost');

    // Bob starts a long computation and closes his tab.
    const bob = await signInAndStart(hub, 'bob', 'bob-password');
    const kernelId = await startKernel(bob, 'bob');
    const kernel = await KernelSocket.open(bob, 'bob', kernelId);
    kernel.execute('import time\ntime.sleep(900)', 1_000_000).catch(() => undefined);
    await eventually('bob\'s kernel computes', async () => {
      const res = await bob.get('/user/bob/api/kernels', { accept: 'application/json' });
      return (JSON.parse(res.body) as KernelModel[]).some((k) => k.execution_state === 'busy');
    });
    kernel.close();
    await kernel.closed;

    // Carol's server is up, but the culler's question to it fails every time.
    const carol = await signInAndStart(hub, 'carol', 'carol-password');

    // Nobody sends anything for longer than the idle timeout.
    await sleep((IDLE_TIMEOUT_S + 2) * 1000);

    const rounds = [];
    for (let i = 0; i < MAX_FAILED_CHECKS; i++) rounds.push(await hub.persistentCuller.cullOnce());

    // Round one stops Ann only; Carol is kept while her check fails, until the Nth time in a row.
    assert.deepEqual(rounds[0], [{ name: 'ann', reason: 'idle' }]);
    for (const round of rounds.slice(1, -1)) assert.deepEqual(round, []);
    assert.deepEqual(rounds.at(-1), [{ name: 'carol', reason: 'unreachable' }]);
    assert.equal(failedChecks.length, MAX_FAILED_CHECKS);

    // Bob's computation goes on.
    assert.match(await homePage(bob), /Running\./);
    const kernels = await bob.get('/user/bob/api/kernels', { accept: 'application/json' });
    assert.equal(kernels.status, 200);
    assert.ok((JSON.parse(kernels.body) as KernelModel[]).some((k) => k.execution_state === 'busy'), kernels.body);

    // Ann and Carol find their servers stopped, with a way to start them again.
    assert.match(await homePage(ann), /Not running\. Your files are kept/);
    assert.match(await homePage(carol), /Not running\. Your files are kept/);
    assert.equal((await ann.get('/user/ann/lab')).status, 503);

    // Ann starts again: her file is there.
    await ann.get('/hub/spawn');
    await waitForReady(ann, 'ann');
    const file = await ann.get('/user/ann/api/contents/essay.txt?content=1&format=text', { accept: 'application/json' });
    assert.equal(file.status, 200, file.body.slice(0, 200));
    assert.equal((JSON.parse(file.body) as { content: string }).content, 'my work, not to be lost');
  });
});
