import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { cleanupInstance, dockerHubConfig, requireDockerImage, startDockerDaemon, stopDockerDaemon, testInstance } from '../helpers/docker.js';
import { createUsers, startTestHub, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';

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
    await createUsers(hub, { erin: 'erin-password' });
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
    assert.equal((await erin.get('/hub/user-redirect/lab')).status, 302);
    const kernelId = await startKernel(erin, 'erin');
    const kernel = await KernelSocket.open(erin, 'erin', kernelId);
    try {
      assert.equal(await kernel.execute('print("back")'), 'back\n');
    } finally {
      kernel.close();
    }
  });
});
