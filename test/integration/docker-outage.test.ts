import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { cleanupInstance, docker, dockerHubConfig, requireDockerImage, startDockerDaemon, stopDockerDaemon, testInstance } from '../helpers/docker.js';
import { createUsers, signInAndStart, startTestHub, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';

/** Bound for "soon"; never an assertion on speed. */
const EVENTUALLY_MS = 60_000;

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) assert.fail(`expected within ${EVENTUALLY_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Id, start time and host pid of a container: the same three after a restart of the engine mean it never restarted. */
async function containerIdentity(name: string): Promise<{ id: string; startedAt: string; pid: number }> {
  const r = await docker(['inspect', '--format', '{{.Id}} {{.State.StartedAt}} {{.State.Pid}}', name]);
  assert.equal(r.code, 0, r.stderr);
  const [id = '', startedAt = '', pid = '0'] = r.stdout.trim().split(' ');
  return { id, startedAt, pid: Number(pid) };
}

interface ProgressEvent {
  message: string;
  ready?: boolean;
  failed?: boolean;
}

async function progressOf(client: HubClient, name: string): Promise<ProgressEvent[]> {
  const res = await client.get(`/hub/api/users/${name}/server/progress`, { accept: 'text/event-stream' });
  return res.body
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)) as ProgressEvent);
}

describe('the Docker engine going away', function () {
  this.timeout(300_000);

  const instance = testInstance('outage');
  let hub: Hub;
  let daemonStopped = false;
  let failed = false;

  before(async () => {
    await requireDockerImage();
    hub = await startTestHub('docker-outage', dockerHubConfig(instance));
    await createUsers(hub, { erin: 'erin-password', fay: 'fay-password', gus: 'gus-password' });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    // Whatever happened, the engine must be back for the suites that follow.
    if (daemonStopped) await startDockerDaemon();
    await hub?.close();
    await cleanupInstance(instance, { printLogs: failed });
  });

  it('makes a start fail with a clear message while the hub stays up, and works again once the engine is back', async () => {
    const erin = new HubClient(hub.url);
    assert.equal((await erin.login('erin', 'erin-password')).status, 303);

    await stopDockerDaemon();
    daemonStopped = true;
    const spawn = await erin.get('/hub/spawn');
    assert.equal(spawn.status, 303);
    assert.match(spawn.location ?? '', /^\/hub\/spawn-pending\/erin/);
    const page = await erin.get(spawn.location!);
    assert.equal(page.status, 200);
    const events = await progressOf(erin, 'erin');
    const last = events.at(-1);
    assert.ok(last?.failed, JSON.stringify(events));
    assert.match(last.message, /not available right now/);
    // The hub itself is fine: pages, health, sign-in.
    assert.equal((await erin.get('/hub/health', { accept: 'application/json' })).status, 200);
    assert.equal((await erin.get('/hub/home')).status, 200);

    await startDockerDaemon();
    daemonStopped = false;
    await erin.get('/hub/spawn');
    await waitForReady(erin, 'erin');
    assert.equal((await erin.openServer('/lab')).handoff?.status, 302);
    const kernelId = await startKernel(erin, 'erin');
    const kernel = await KernelSocket.open(erin, 'erin', kernelId);
    try {
      assert.equal(await kernel.execute('print("back")'), 'back\n');
    } finally {
      kernel.close();
    }
  });

  it('keeps a student\'s container and kernel state across a dockerd restart, and notices a container that died meanwhile', async () => {
    // .ci/docker.sh starts the engine with live-restore; without it this test can only fail.
    const liveRestore = await docker(['info', '--format', '{{.LiveRestoreEnabled}}']);
    assert.equal(liveRestore.stdout.trim(), 'true', 'the engine runs without live-restore: start it with bash .ci/docker.sh (see its daemon.json)');

    const fay = await signInAndStart(hub, 'fay', 'fay-password');
    const gus = await signInAndStart(hub, 'gus', 'gus-password');
    const fayContainer = `${instance}-nb-fay`;
    const before = await containerIdentity(fayContainer);
    const gusPid = (await containerIdentity(`${instance}-nb-gus`)).pid;
    const kernelId = await startKernel(fay, 'fay');
    const notebook = await KernelSocket.open(fay, 'fay', kernelId);
    const sockets = [notebook];
    try {
      assert.equal(await notebook.execute('x = 41\nprint("ready")'), 'ready\n');

      await stopDockerDaemon();
      daemonStopped = true;
      // The engine is down: Fay's notebook goes on computing, with its state, over HTTP and WebSocket.
      assert.equal(await notebook.execute('x += 1\nprint(x)'), '42\n');
      assert.equal((await fay.get('/user/fay/api/status', { accept: 'application/json' })).status, 200);
      const reopened = await KernelSocket.open(fay, 'fay', kernelId);
      sockets.push(reopened);
      assert.equal(await reopened.execute('print(x)'), '42\n');
      // A poll during the outage can't reach the engine: every server is kept, still routed.
      const during = await hub.manager.recheck();
      assert.ok(during.unknown.includes('fay') && during.unknown.includes('gus'), JSON.stringify(during));
      assert.deepEqual(during.gone, []);
      assert.ok(hub.routes.get('fay') && hub.routes.get('gus'));
      assert.match((await fay.get('/hub/home')).body, /Running\./);
      // Gus's container dies while nobody is watching (its init process is killed).
      process.kill(gusPid, 'SIGKILL');

      await startDockerDaemon();
      daemonStopped = false;
      // The hub checks every server once the engine answers: Gus's is gone and he is told so.
      await eventually('the hub notices that Gus\'s server died', async () => /Not running\./.test((await gus.get('/hub/home')).body));
      assert.equal(hub.routes.get('gus'), undefined);
      // Fay's container was never restarted, and her kernel still has its state.
      assert.deepEqual(await containerIdentity(fayContainer), before);
      assert.match((await fay.get('/hub/home')).body, /Running\./);
      await eventually('Fay\'s server answers through the proxy', async () => (await fay.get('/user/fay/api/status', { accept: 'application/json' })).status === 200);
      assert.equal(await notebook.execute('x += 1\nprint(x)'), '43\n');
      // Gus starts again and works.
      await gus.get('/hub/spawn');
      await waitForReady(gus, 'gus');
      assert.equal((await gus.get('/user/gus/api/status', { accept: 'application/json' })).status, 200);
    } finally {
      for (const s of sockets) s.close();
    }
  });
});
