import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { cleanupInstance, containersOf, docker, dockerHubConfig, requireDockerImage, testInstance } from '../helpers/docker.js';
import { createUsers, signInAndStart, startTestHub, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { eventually, readFile, reportFault, saveFile, secondsSince } from './support.js';

describe('fault: a student\'s container is killed mid-WebSocket (Docker spawner)', function () {
  this.timeout(600_000);
  const instance = testInstance('fault-kill');
  let hub: Hub | undefined;
  let failed = false;

  before(async () => {
    await requireDockerImage();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await hub?.close();
    await cleanupInstance(instance, { printLogs: failed });
  });

  it('the open notebook is cut, the student gets a clear "not running" page with a Start button, and the files in the home volume are there after the restart', async () => {
    hub = await startTestHub('fault-container-killed', dockerHubConfig(instance));
    await createUsers(hub, { kit: 'kit-password' });
    const kit = await signInAndStart(hub, 'kit', 'kit-password');
    await saveFile(kit, 'kit', 'essay.md', '# my essay\n');
    const kernelId = await startKernel(kit, 'kit');
    const socket = await KernelSocket.open(kit, 'kit', kernelId);
    assert.equal(await socket.execute('open("/home/student/from-kernel.txt", "w").write("kernel wrote this")\nprint("ok")'), 'ok\n');
    const [container] = await containersOf(instance);
    assert.ok(container, 'the student has a container');

    // Mid-WebSocket: a cell is running when the container dies (an OOM kill, an operator's mistake).
    const running = socket.execute('import time\ntime.sleep(60)', 120_000).catch((err: Error) => err.message);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await docker(['kill', container])).code, 0);
    const killedAt = Date.now();
    assert.equal(await running, 'kernel socket closed', 'the open socket is closed, not left hanging');

    // The tab reloads: first a 502 that leads home, or at once the "not running" page; soon the latter.
    const seen = new Set<number>();
    await eventually('the student gets the "not running" page with a Start button', async () => {
      const page = await kit.get('/user/kit/lab');
      seen.add(page.status);
      if (page.status === 502) assert.match(page.body, /href="\/hub\/home"/);
      else assert.equal(page.status, 503, `the proxy answered ${page.status}`);
      return page.status === 503 && /Your server is not running/.test(page.body) && /href="\/hub\/spawn\?next=/.test(page.body);
    }, 120_000, 500);
    const noticed = secondsSince(killedAt);
    const home = await kit.get('/hub/home');
    assert.match(home.body, /Not running/);
    assert.match(home.body, /Start my server/);

    // Start again: the home volume's files are all there.
    const startAt = Date.now();
    await kit.get('/hub/spawn');
    await waitForReady(kit, 'kit');
    assert.equal((await kit.openServer('/lab')).handoff?.status, 302);
    const restarted = secondsSince(startAt);
    assert.equal(await readFile(kit, 'kit', 'essay.md'), '# my essay\n');
    assert.equal(await readFile(kit, 'kit', 'from-kernel.txt'), 'kernel wrote this');
    reportFault(
      'a container killed mid-WebSocket (Docker spawner)',
      `the socket closed; then ${[...seen].sort().join(' then ')} pages: "your server is not running" with a Start button`,
      'none (home volume kept; the running cell\'s unsaved kernel state is gone with the container)',
      `${noticed} to the "not running" page, ${restarted} from Start to running again`,
    );
  });
});
