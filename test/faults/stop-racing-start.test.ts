import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, startTestHub, waitForReady } from '../helpers/hub.js';
import { eventually, jupyterPids, readFile, reportFault, saveFile, secondsSince } from './support.js';

/** How long after the start the stop is sent, in ms: at once, mid-start, near the end of the start. */
const DELAYS_MS = [0, 50, 300, 1000, 2500];

describe('fault: stop racing start', function () {
  this.timeout(600_000);
  let hub: Hub | undefined;

  after(async () => {
    await hub?.close();
  });

  it('a student who clicks Stop while the server is still starting ends with it stopped or running, never half of each, and no Jupyter left without its record', async () => {
    hub = await startTestHub('fault-stop-start');
    await createUsers(hub, { sam: 'sam-password' });
    const sam = new HubClient(hub.url);
    assert.equal((await sam.login('sam', 'sam-password')).status, 303);
    const me = JSON.parse((await sam.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    const api = { 'x-csrf-token': me.csrf_token, accept: 'application/json' };
    // A file from before the races: it must be there at the end.
    await sam.get('/hub/spawn');
    await waitForReady(sam, 'sam');
    assert.equal((await sam.openServer('/lab')).handoff?.status, 302);
    await saveFile(sam, 'sam', 'before.txt', 'kept');
    assert.equal((await sam.request('DELETE', '/hub/api/users/sam/server', { headers: api })).status, 204);

    const outcomes: string[] = [];
    let slowest = 0;
    for (const delay of DELAYS_MS) {
      const started = sam.request('POST', '/hub/api/users/sam/server', { headers: api });
      await new Promise((resolve) => setTimeout(resolve, delay));
      const stopAt = Date.now();
      const [start, stop] = await Promise.all([started, sam.request('DELETE', '/hub/api/users/sam/server', { headers: api })]);
      assert.ok([201, 202].includes(start.status), `start answered ${start.status}: ${start.body}`);
      assert.equal(stop.status, 204, `stop answered ${stop.status}: ${stop.body}`);
      // Settled: the hub says stopped or running, and the processes agree.
      let server = '';
      await eventually('the server settles', async () => {
        const m = JSON.parse((await sam.get('/hub/api/user', { accept: 'application/json' })).body) as { server: string | null; pending: string | null };
        // JupyterHub's fields: a URL once running, pending 'spawn' while starting.
        server = m.pending === 'spawn' ? 'starting' : m.server === null ? 'stopped' : 'running';
        return server !== 'starting';
      });
      slowest = Math.max(slowest, Date.now() - stopAt);
      if (server === 'stopped') {
        await eventually('no Jupyter of sam is left', () => jupyterPids(hub!.config.dataDir, 'sam').length === 0, 30_000);
        const proxied = await sam.get('/user/sam/api/status', { accept: 'application/json' });
        assert.notEqual(proxied.status, 200, 'a stopped server is not routed');
      } else {
        assert.equal(server, 'running');
        assert.equal(jupyterPids(hub.config.dataDir, 'sam').length, 1);
        assert.equal((await sam.get('/user/sam/api/status', { accept: 'application/json' })).status, 200);
        assert.equal((await sam.request('DELETE', '/hub/api/users/sam/server', { headers: api })).status, 204);
        await eventually('no Jupyter of sam is left', () => jupyterPids(hub!.config.dataDir, 'sam').length === 0, 30_000);
      }
      outcomes.push(`${delay} ms: ${server}`);
    }
    // And a plain start works after all that, with the file.
    await sam.get('/hub/spawn');
    await waitForReady(sam, 'sam');
    assert.equal((await sam.openServer('/lab')).handoff?.status, 302);
    assert.equal(jupyterPids(hub.config.dataDir, 'sam').length, 1);
    assert.equal(await readFile(sam, 'sam', 'before.txt'), 'kept');
    reportFault(`stop racing start (stop sent after ${outcomes.join(', ')})`, 'the server stopped (or ran, then Stop worked); no orphan process', 'none', `at most ${(slowest / 1000).toFixed(1)} s from Stop to a settled state`);
  });
});
