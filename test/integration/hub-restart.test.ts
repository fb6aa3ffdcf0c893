import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, createUsers, tempDataDir, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';
import { eventually, hubEnv, isAlive, jupyterPids, reapDataDir, serverPid, startHubProcess, stopHubProcess, untilRunning, type HubProcess } from '../helpers/hub-process.js';

/*
 * The hub restarted the way an operator does it: `node dist/server/main.js` with its settings
 * in the environment, stopped with Ctrl-C (SIGINT) or killed (SIGKILL), started again on the
 * same port and data folder. Jupyter processes are checked by pid, in /proc, not by asking the hub.
 */

describe('restarting the hub the way an operator does (node dist/server/main.js, Ctrl-C or SIGKILL, start again)', function () {
  this.timeout(600_000);
  const running: HubProcess[] = [];
  const dataDirs: string[] = [];

  after(async () => {
    for (const h of [...running]) await stopHub(h, 'SIGKILL');
    // Whatever a failed test left, no Jupyter of ours may outlive the suite.
    for (const dir of dataDirs) reapDataDir(dir);
  });

  /** Start the hub program and wait until it says it runs; a hub that never does is still killed in `after`. */
  async function startHub(label: string, env: Record<string, string>): Promise<HubProcess> {
    const hub = await startHubProcess(label, env, { waitForRunning: false });
    running.push(hub);
    await untilRunning(hub, label);
    return hub;
  }

  /** Signal the hub and wait for it to exit; returns its exit code (null when killed). */
  async function stopHub(hub: HubProcess, signal: NodeJS.Signals): Promise<number | null> {
    running.splice(running.indexOf(hub), 1);
    return stopHubProcess(hub, signal);
  }

  /** Sign in and start the user's server through the pages, as a student's browser does. */
  async function signInAndStart(url: string, name: string): Promise<HubClient> {
    const client = new HubClient(url);
    assert.equal((await client.login(name, `${name}-password`)).status, 303);
    await client.get('/hub/spawn');
    await waitForReady(client, name);
    assert.equal((await client.openServer('/lab')).handoff?.status, 302);
    return client;
  }

  it('Ctrl-C and start again, then SIGKILL and start again: accounts, sign-ins and the same server processes are all there; with stopServersOnExit none is left', async () => {
    const port = await freePort();
    const dataDir = tempDataDir('restart');
    dataDirs.push(dataDir);
    const env = { ...hubEnv(port, dataDir), OERHUB_POOL_SIZE: '0' };
    const url = `http://127.0.0.1:${port}`;

    const first = await startHub('hub-restart-1', env);
    await createUsers({ url } as Hub, { ada: 'ada-password', ben: 'ben-password' });
    const ada = await signInAndStart(url, 'ada');
    const ben = await signInAndStart(url, 'ben');
    const kernelId = await startKernel(ada, 'ada');
    const kernel = await KernelSocket.open(ada, 'ada', kernelId);
    await kernel.execute('x = 41');
    kernel.close();
    const pids = { ada: serverPid(dataDir, 'ada'), ben: serverPid(dataDir, 'ben') };
    assert.deepEqual(jupyterPids(dataDir).sort(), Object.values(pids).sort());

    assert.equal(await stopHub(first, 'SIGINT'), 0);
    assert.ok(isAlive(pids.ada) && isAlive(pids.ben), "a hub restart keeps students' servers running");

    const second = await startHub('hub-restart-2', env);
    assert.doesNotMatch(second.output(), /First admin account/);
    await expectAdopted(dataDir, ada, ben, pids, kernelId, '42\n');

    // A crash, not a clean stop: the servers are still adopted, never restarted.
    assert.equal(await stopHub(second, 'SIGKILL'), null);
    const third = await startHub('hub-restart-3', { ...env, OERHUB_STOP_SERVERS_ON_EXIT: 'true' });
    await expectAdopted(dataDir, ada, ben, pids, kernelId, '43\n');

    // Stopping with stopServersOnExit: every Jupyter process of this hub goes, checked by pid.
    assert.equal(await stopHub(third, 'SIGINT'), 0);
    assert.ok(!isAlive(pids.ada) && !isAlive(pids.ben));
    assert.deepEqual(jupyterPids(dataDir), []);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'servers')), []);
  });

  it('after a SIGKILL with the memory store (state lost), the next start stops every Jupyter it finds, "Try it" folders included', async () => {
    const port = await freePort();
    const dataDir = tempDataDir('restart-orphans');
    dataDirs.push(dataDir);
    const env = { ...hubEnv(port, dataDir), OERHUB_STORE: 'memory', OERHUB_POOL_SIZE: '1' };
    const url = `http://127.0.0.1:${port}`;

    const first = await startHub('hub-restart-orphans-1', env);
    await createUsers({ url } as Hub, { cy: 'cy-password' });
    await signInAndStart(url, 'cy');
    // The warm "Try it" server, with its own throwaway folder.
    await eventually('a warm "Try it" server runs', () => ephemeralNames(dataDir).length === 1);
    const [warm] = ephemeralNames(dataDir);
    const warmFolder = path.join(dataDir, 'ephemeral', warm!);
    await eventually('the warm server is ready', () => fs.existsSync(path.join(warmFolder, 'samples')));
    const before = jupyterPids(dataDir);
    assert.equal(before.length, 2);

    assert.equal(await stopHub(first, 'SIGKILL'), null);
    assert.ok(before.every(isAlive), 'a killed hub leaves its servers running');

    // Nothing in the (new, empty) store knows them: the new hub must stop them for real.
    const second = await startHub('hub-restart-orphans-2', { ...env, OERHUB_POOL_SIZE: '0', OERHUB_STOP_SERVERS_ON_EXIT: 'true' });
    await eventually('the old servers are gone', () => !before.some(isAlive));
    assert.deepEqual(jupyterPids(dataDir), []);
    assert.equal(fs.existsSync(warmFolder), false, 'the "Try it" folder went with its server');
    assert.ok(fs.existsSync(path.join(dataDir, 'homes', 'cy')), "a student's home stays");
    assert.match(second.output(), /stopping orphan server/);
    assert.equal(await stopHub(second, 'SIGINT'), 0);
  });
});

/** The same server processes answer through the new hub, with the kernel's state, to the same browser cookies. */
async function expectAdopted(dataDir: string, ada: HubClient, ben: HubClient, pids: { ada: number; ben: number }, kernelId: string, expected: string): Promise<void> {
  assert.equal(serverPid(dataDir, 'ada'), pids.ada);
  assert.equal(serverPid(dataDir, 'ben'), pids.ben);
  for (const [client, name] of [[ada, 'ada'], [ben, 'ben']] as const) {
    const home = await client.get('/hub/home');
    assert.equal(home.status, 200, `${name} is still signed in`);
    assert.match(home.body, /Running/);
    assert.equal((await client.get(`/user/${name}/api/status`, { accept: 'application/json' })).status, 200);
  }
  // A course link clicked now reaches the running server; it does not start another.
  assert.equal((await ada.openServer('/lab')).handoff?.status, 302);
  const kernel = await KernelSocket.open(ada, 'ada', kernelId);
  try {
    assert.equal(await kernel.execute('x += 1; print(x)'), expected);
  } finally {
    kernel.close();
  }
  assert.deepEqual(jupyterPids(dataDir).sort(), [pids.ada, pids.ben].sort());
}


/** Names of the ephemeral servers with a state file. */
function ephemeralNames(dataDir: string): string[] {
  const dir = path.join(dataDir, 'servers');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .filter((f) => (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { ephemeral?: boolean }).ephemeral === true)
    .map((f) => f.slice(0, -'.json'.length));
}
