import assert from 'node:assert/strict';
import { waitForReady } from '../helpers/hub.js';
import {
  eventually,
  isAlive,
  jupyterPids,
  readFile,
  reportFault,
  restartedHubs,
  saveFile,
  secondsSince,
  serverPid,
  studentsAtWork,
} from './support.js';

const STUDENTS = ['cal0', 'cal1', 'cal2', 'cal3', 'cal4'];
/** A short idle timeout so the culler is at work within seconds of the servers starting. */
const CULLING = { OERHUB_CULLER_IDLE_TIMEOUT_S: '5', OERHUB_CULLER_INTERVAL_MS: '1000', OERHUB_ACTIVITY_FLUSH_MS: '500' };

describe('fault: the culler racing a hub restart', function () {
  this.timeout(900_000);
  const hubs = restartedHubs('fault-cull-restart');

  it('a server the culler was stopping when the hub died is, after the restart, either stopped or running, never half of each, and its files are kept', async () => {
    const { dataDir } = hubs;
    // The first hub culls nobody (0: off) while the servers start one after another.
    const first = await hubs.start('fault-cull-restart-1', { ...CULLING, OERHUB_CULLER_IDLE_TIMEOUT_S: '0' });
    const clients = await studentsAtWork(hubs.url, STUDENTS, (name, client) => saveFile(client, name, 'notes.txt', `${name}'s notes`));
    const pids = new Map(STUDENTS.map((s) => [s, serverPid(dataDir, s)]));
    assert.equal(await hubs.stop(first, 'SIGINT'), 0);

    // A hub with the short timeout: every server is idle, so it culls at once. It is killed
    // the moment the first Jupyter goes, mid-pass (the rest are queued or being stopped).
    const culling = await hubs.start('fault-cull-restart-2', CULLING);
    await eventually('the culler stops a first server', () => [...pids.values()].some((pid) => !isAlive(pid)), 120_000, 10);
    assert.equal(await hubs.stop(culling, 'SIGKILL'), null);
    const killedAt = Date.now();
    const culledBeforeKill = [...pids.values()].filter((pid) => !isAlive(pid)).length;

    // The restarted hub does not cull (an operator turned it off): what it shows is what the race left.
    const restarted = await hubs.start('fault-cull-restart-3', { OERHUB_STOP_SERVERS_ON_EXIT: 'true' });
    const outcome = new Map<string, string>();
    const sawStopping = new Set<string>();
    await eventually('every student sees a settled server', async () => {
      for (const [name, client] of clients) {
        const me = await client.get('/hub/api/user', { accept: 'application/json' });
        if (me.status !== 200) return false;
        const m = JSON.parse(me.body) as { server: string | null; pending: string | null };
        const server = m.pending === 'spawn' ? 'starting' : m.server === null ? 'stopped' : 'running';
        if (server === 'starting') return false;
        // A stop that died with its hub shows "Stopping…, reload in a moment" until its lock expires.
        const home = await client.get('/hub/home');
        if (home.status !== 200) return false;
        if (/Stopping…/.test(home.body)) {
          sawStopping.add(name);
          return false;
        }
        outcome.set(name, server);
      }
      return true;
    });
    const settled = secondsSince(killedAt);

    for (const [name, client] of clients) {
      const own = jupyterPids(dataDir, name);
      const proxied = await client.get(`/user/${name}/api/status`, { accept: 'application/json' });
      if (outcome.get(name) === 'running') {
        assert.deepEqual(own, [pids.get(name)], `${name} runs, on the same process`);
        assert.equal(proxied.status, 200, `${name}'s running server is routed`);
      } else {
        assert.equal(outcome.get(name), 'stopped');
        assert.deepEqual(own, [], `${name} is stopped: no Jupyter left for them`);
        assert.notEqual(proxied.status, 200);
        assert.match((await client.get('/hub/home')).body, /Start my server/);
        // And Start works, with the files.
        await client.get('/hub/spawn');
        await waitForReady(client, name);
        assert.equal((await client.openServer('/lab')).handoff?.status, 302);
      }
      assert.equal(await readFile(client, name, 'notes.txt'), `${name}'s notes`);
    }
    assert.equal(jupyterPids(dataDir).length, STUDENTS.length, 'one Jupyter per student, no orphan');

    assert.equal(await hubs.stop(restarted, 'SIGINT'), 0);
    assert.deepEqual(jupyterPids(dataDir), []);
    const stopped = [...outcome.values()].filter((s) => s === 'stopped').length;
    reportFault(
      `the culler racing a restart (hub SIGKILLed as it culled the first of ${STUDENTS.length} idle servers; ${culledBeforeKill} gone at the kill)`,
      `${sawStopping.size ? `"Stopping…, reload in a moment" for ${[...sawStopping].join(', ')}, then ` : ''}${stopped} "not running, Start my server", ${STUDENTS.length - stopped} still running; none half-stopped`,
      'none',
      `${settled} from the kill to every server settled (a dead hub's server lock expires after 30 s)`,
    );
  });
});
