import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, tempDataDir, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';
import {
  eventually,
  hubEnv,
  jupyterPids,
  readFile,
  reapDataDir,
  reportFault,
  saveFile,
  secondsSince,
  serverPid,
  startHubProcess,
  stopHubProcess,
  type HubProcess,
} from './support.js';

const STUDENTS = Array.from({ length: 10 }, (_, i) => `kid${i}`);
/** About 20 s of computing: still busy when the hub is killed, and when the new one is up. */
const LONG_CELL = 'import time\nx = 0\nfor i in range(40):\n    x += 1\n    time.sleep(0.5)\nprint("done")';

describe('fault: the hub is SIGKILLed with 10 servers running and one kernel computing', function () {
  this.timeout(900_000);
  const hubs: HubProcess[] = [];
  let dataDir: string;

  after(async () => {
    for (const h of hubs) await stopHubProcess(h, 'SIGKILL');
    if (dataDir) reapDataDir(dataDir);
  });

  it('students see their servers back with the same processes, the computing kernel\'s variable and their files, after a hub killed outright', async () => {
    const port = await freePort();
    dataDir = tempDataDir('fault-sigkill');
    const url = `http://127.0.0.1:${port}`;
    const first = await startHubProcess('fault-sigkill-1', hubEnv(port, dataDir));
    hubs.push(first);
    await createUsers({ url } as Hub, Object.fromEntries(STUDENTS.map((s) => [s, `${s}-password`])));
    const clients = new Map<string, HubClient>();
    for (const name of STUDENTS) {
      const client = new HubClient(url);
      assert.equal((await client.login(name, `${name}-password`)).status, 303);
      await client.get('/hub/spawn');
      await waitForReady(client, name);
      assert.equal((await client.openServer('/lab')).handoff?.status, 302);
      await saveFile(client, name, 'homework.py', `# ${name}'s answer\n`);
      clients.set(name, client);
    }
    const pids = new Map(STUDENTS.map((s) => [s, serverPid(dataDir, s)]));
    assert.equal(jupyterPids(dataDir).length, STUDENTS.length);

    const busy = clients.get('kid0')!;
    const kernelId = await startKernel(busy, 'kid0');
    const socket = await KernelSocket.open(busy, 'kid0', kernelId);
    const computing = socket.execute(LONG_CELL, 120_000).catch((err: Error) => err.message);
    await new Promise((resolve) => setTimeout(resolve, 2000));

    assert.equal(await stopHubProcess(first, 'SIGKILL'), null);
    const killedAt = Date.now();
    hubs.splice(hubs.indexOf(first), 1);
    // The open tab's socket goes with the hub (JupyterLab reconnects); the kernel itself computes on.
    assert.equal(await computing, 'kernel socket closed');
    assert.ok([...pids.values()].every((pid) => jupyterPids(dataDir).includes(pid)), 'a killed hub leaves the servers running');

    const second = await startHubProcess('fault-sigkill-2', hubEnv(port, dataDir, { OERHUB_STOP_SERVERS_ON_EXIT: 'true' }));
    hubs.push(second);
    await eventually('every student reaches their server through the new hub', async () => {
      for (const [name, client] of clients) {
        if ((await client.get(`/user/${name}/api/status`, { accept: 'application/json' })).status !== 200) return false;
      }
      return true;
    });
    const recovered = secondsSince(killedAt);

    for (const [name, client] of clients) {
      assert.equal((await client.get('/hub/home')).status, 200, `${name} is still signed in`);
      assert.equal(serverPid(dataDir, name), pids.get(name), `${name}'s server was adopted, not restarted`);
      assert.equal(await readFile(client, name, 'homework.py'), `# ${name}'s answer\n`);
    }
    assert.deepEqual(jupyterPids(dataDir).sort(), [...pids.values()].sort(), 'no other Jupyter was started');
    // The reconnected tab: the cell finished in the kernel the hub never saw die, with its variable.
    const reconnected = await KernelSocket.open(busy, 'kid0', kernelId);
    try {
      assert.equal(await reconnected.execute('print(x)', 120_000), '40\n');
    } finally {
      reconnected.close();
    }

    assert.equal(await stopHubProcess(second, 'SIGINT'), 0);
    hubs.splice(hubs.indexOf(second), 1);
    assert.deepEqual(jupyterPids(dataDir), [], 'with stopServersOnExit every server went with the hub');
    reportFault(
      `hub SIGKILL with ${STUDENTS.length} servers running and one kernel computing`,
      'connection refused until the hub was back, the open kernel socket reconnected; same servers (same pids), still signed in',
      'none (files and the computing kernel\'s variable kept)',
      `${recovered} from the kill to all ${STUDENTS.length} servers answering through the new hub`,
    );
  });
});
