import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, startTestHub, waitForReady } from '../helpers/hub.js';
import { jupyterPids, reportFault, saveFile, readFile, secondsSince } from './support.js';

describe('fault: a double-clicked start', function () {
  this.timeout(300_000);
  let hub: Hub | undefined;

  after(async () => {
    await hub?.close();
  });

  it('a student who clicks Start twice (and a course link at the same moment) gets one server, in two tabs', async () => {
    hub = await startTestHub('fault-double-start');
    await createUsers(hub, { dot: 'dot-password' });
    const dot = new HubClient(hub.url);
    assert.equal((await dot.login('dot', 'dot-password')).status, 303);
    const page = await dot.get('/hub/home');
    const csrf = HubClient.csrfFrom(page.body);

    const clickedAt = Date.now();
    const clicks = await Promise.all([
      dot.request('POST', '/hub/spawn', { form: { _csrf: csrf } }),
      dot.request('POST', '/hub/spawn', { form: { _csrf: csrf } }),
      dot.get('/hub/spawn'),
      dot.get('/hub/user-redirect/lab'),
    ]);
    for (const c of clicks) assert.ok(c.status === 302 || c.status === 303, `a click answered ${c.status}: ${c.body.slice(0, 200)}`);
    await waitForReady(dot, 'dot');
    const ready = secondsSince(clickedAt);
    const link = await dot.openServer('/lab');
    assert.equal(link.handoff?.status, 302);
    assert.equal((await dot.get('/user/dot/api/status', { accept: 'application/json' })).status, 200);

    const pids = jupyterPids(hub.config.dataDir, 'dot');
    assert.equal(pids.length, 1, `one Jupyter for dot, found ${pids.length}`);
    await saveFile(dot, 'dot', 'work.txt', 'mine');
    // One more click once it runs: it reaches the same server.
    await dot.get('/hub/spawn');
    assert.deepEqual(jupyterPids(hub.config.dataDir, 'dot'), pids);
    assert.equal(await readFile(dot, 'dot', 'work.txt'), 'mine');
    reportFault('a double-clicked start (4 clicks at once)', 'one server starting, then running', 'none', `${ready} (one start)`);
  });
});
