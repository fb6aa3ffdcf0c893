import assert from 'node:assert/strict';
import type { Reply } from '../helpers/client.js';
import {
  jupyterPids,
  readFile,
  reportFault,
  restartedHubs,
  saveFile,
  secondsSince,
  serverPid,
  studentsAtWork,
} from './support.js';

const STUDENTS = ['rex', 'rio', 'roy', 'ria'];
const CLICKS = ['/hub/user-redirect/lab', '/hub/spawn', '/user/rex/lab'];

describe('fault: a click during the restarted hub\'s reconcile window', function () {
  this.timeout(600_000);
  const hubs = restartedHubs('fault-reconcile');

  it('a student clicking a course link while the hub reconciles gets "the hub is starting, your server is safe", and the running server is adopted, not replaced', async () => {
    const { dataDir } = hubs;
    const first = await hubs.start('fault-reconcile-1');
    const rex = (await studentsAtWork(hubs.url, STUDENTS)).get('rex');
    assert.ok(rex);
    await saveFile(rex, 'rex', 'lab1.py', 'answer = 42\n');
    const pid = serverPid(dataDir, 'rex');

    assert.equal(await hubs.stop(first, 'SIGKILL'), null);
    const second = await hubs.start('fault-reconcile-2', { OERHUB_STOP_SERVERS_ON_EXIT: 'true' }, { waitForRunning: false });
    const restartedAt = Date.now();

    // The student keeps clicking from the moment the hub starts until the course link works.
    let refused = 0;
    const inWindow: Reply[] = [];
    let reached: Reply | undefined;
    while (!reached) {
      if (Date.now() - restartedAt > 120_000) assert.fail('the course link never worked after the restart');
      if (second.child.exitCode !== null) assert.fail(`the hub exited:\n${second.output()}`);
      // Three tabs at once (a course link, Start, a reload of the notebook), as an impatient student does.
      const replies: { path: string; reply: Reply | undefined }[] = await Promise.all(
        CLICKS.map((path) => rex.get(path).then((reply) => ({ path, reply }), () => ({ path, reply: undefined }))),
      );
      for (const { path, reply } of replies) {
        if (!reply) {
          refused++; // not listening yet: the browser's own "can't connect"
          continue;
        }
        if (reply.status === 503) {
          assert.match(reply.body, /The hub is starting/, path);
          assert.match(reply.body, /Your server and your files are safe/, path);
          assert.doesNotMatch(reply.body, /Start my server/, path);
          assert.equal(reply.headers.get('retry-after'), '5');
          inWindow.push(reply);
          continue;
        }
        // Past the window: the link leads to the running server.
        if (path === '/hub/user-redirect/lab') {
          assert.equal(reply.status, 302, `${path} answered ${reply.status}`);
          // To rex's own origin, through the one-time sign-in handoff, and on to the same page.
          const target = new URL(reply.location ?? '', 'http://x');
          assert.equal(target.pathname, '/user/rex/oerhub-login', String(reply.location));
          assert.equal(target.searchParams.get('next'), '/user/rex/lab');
          reached = reply;
        } else assert.ok([200, 302, 303].includes(reply.status), `${path} answered ${reply.status}: ${reply.body.slice(0, 200)}`);
      }
      if (replies.every((r) => !r.reply)) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const recovered = secondsSince(restartedAt);
    assert.ok(inWindow.length > 0, 'some clicks landed in the reconcile window (the hub listens before it has reconciled)');

    assert.equal((await rex.get('/user/rex/api/status', { accept: 'application/json' })).status, 200);
    assert.equal(serverPid(dataDir, 'rex'), pid, 'the same server process, adopted');
    assert.deepEqual(jupyterPids(dataDir, 'rex'), [pid], 'no second server was started');
    assert.equal(jupyterPids(dataDir).length, STUDENTS.length);
    assert.equal(await readFile(rex, 'rex', 'lab1.py'), 'answer = 42\n');

    assert.equal(await hubs.stop(second, 'SIGINT'), 0);
    reportFault(
      `a click during the reconcile window (hub SIGKILLed and restarted with ${STUDENTS.length} servers; ${inWindow.length} clicks answered during reconcile, ${refused} refused before it listened, 3 tabs clicking)`,
      '"The hub is starting. Your server and your files are safe" (503, no Start button), then the same server',
      'none (same pid)',
      `${recovered} from the restart to the course link working`,
    );
  });
});
