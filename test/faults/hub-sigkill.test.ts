import assert from 'node:assert/strict';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import {
  eventually,
  jupyterPids,
  readFile,
  reportFault,
  restartedHubs,
  saveFile,
  secondsSince,
  serverPid,
  studentsAtWork,
} from './support.js';

const STUDENTS = Array.from({ length: 10 }, (_, i) => `kid${i}`);
/** About 20 s of computing: still busy when the hub is killed, and when the new one is up. */
const LONG_CELL = 'import time\nx = 0\nfor i in range(40):\n    x += 1\n    time.sleep(0.5)\nprint("done")';

describe('fault: the hub is SIGKILLed with 10 servers running and one kernel computing', function () {
  this.timeout(900_000);
  const hubs = restartedHubs('fault-sigkill');

  it('students see their servers back with the same processes, the computing kernel\'s variable and their files, after a hub killed outright', async () => {
    const { dataDir } = hubs;
    const first = await hubs.start('fault-sigkill-1');
    const clients = await studentsAtWork(hubs.url, STUDENTS, (name, client) => saveFile(client, name, 'homework.py', `# ${name}'s answer\n`));
    const pids = new Map(STUDENTS.map((s) => [s, serverPid(dataDir, s)]));
    assert.equal(jupyterPids(dataDir).length, STUDENTS.length);

    const busy = clients.get('kid0')!;
    const kernelId = await startKernel(busy, 'kid0');
    const socket = await KernelSocket.open(busy, 'kid0', kernelId);
    const computing = socket.execute(LONG_CELL, 120_000).catch((err: Error) => err.message);
    await new Promise((resolve) => setTimeout(resolve, 2000));

    assert.equal(await hubs.stop(first, 'SIGKILL'), null);
    const killedAt = Date.now();
    // The open tab's socket goes with the hub (JupyterLab reconnects); the kernel itself computes on.
    assert.equal(await computing, 'kernel socket closed');
    assert.ok([...pids.values()].every((pid) => jupyterPids(dataDir).includes(pid)), 'a killed hub leaves the servers running');

    const second = await hubs.start('fault-sigkill-2', { OERHUB_STOP_SERVERS_ON_EXIT: 'true' });
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

    assert.equal(await hubs.stop(second, 'SIGINT'), 0);
    assert.deepEqual(jupyterPids(dataDir), [], 'with stopServersOnExit every server went with the hub');
    reportFault(
      `hub SIGKILL with ${STUDENTS.length} servers running and one kernel computing`,
      'connection refused until the hub was back, the open kernel socket reconnected; same servers (same pids), still signed in',
      'none (files and the computing kernel\'s variable kept)',
      `${recovered} from the kill to all ${STUDENTS.length} servers answering through the new hub`,
    );
  });
});
