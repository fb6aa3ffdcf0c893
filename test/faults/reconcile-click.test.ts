import assert from 'node:assert/strict';
import net from 'node:net';
import type { HubClient, Reply } from '../helpers/client.js';
import type { HubProcess } from '../helpers/hub-process.js';
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

/** Three tabs at once (a course link, Start, a reload of the notebook), as an impatient student does. */
function click(client: HubClient): Promise<{ path: string; reply: Reply | undefined }[]> {
  return Promise.all(CLICKS.map((path) => client.get(path).then((reply) => ({ path, reply }), () => ({ path, reply: undefined }))));
}

/** The reconcile window's answer: the server is safe, and no Start button that would replace it. */
function assertHubStarting(path: string, reply: Reply): void {
  assert.match(reply.body, /The hub is starting/, path);
  assert.match(reply.body, /Your server and your files are safe/, path);
  assert.doesNotMatch(reply.body, /Start my server/, path);
  assert.equal(reply.headers.get('retry-after'), '5');
}

/** Try to connect until the hub accepts (before, a browser says "can't connect"). */
async function untilListening(url: string, hub: HubProcess): Promise<void> {
  const { hostname, port } = new URL(url);
  for (;;) {
    if (hub.child.exitCode !== null) assert.fail(`the hub exited:\n${hub.output()}`);
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepted) return;
  }
}

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

    // The reconcile window lasts a few milliseconds on an idle machine, far longer on a loaded
    // one or with many servers. To land clicks in it every time, the restarted hub is held
    // (SIGSTOP) the moment it accepts connections, as a busy machine would hold it; the three
    // tabs' requests queue meanwhile and are answered when it runs on. If it had already
    // reconciled when held, it is killed and started again (at most three times).
    let second: HubProcess | undefined;
    let restartedAt = 0;
    let starts = 0;
    const inWindow: Reply[] = [];
    for (let attempt = 1; attempt <= 3 && !inWindow.length; attempt++) {
      starts = attempt;
      if (second) await hubs.stop(second, 'SIGKILL');
      second = await hubs.start(`fault-reconcile-${attempt + 1}`, { OERHUB_STOP_SERVERS_ON_EXIT: 'true' }, { waitForRunning: false });
      restartedAt = Date.now();
      await untilListening(hubs.url, second);
      second.child.kill('SIGSTOP');
      const clicks = click(rex);
      await new Promise((resolve) => setTimeout(resolve, 300));
      second.child.kill('SIGCONT');
      for (const { path, reply } of await clicks) {
        if (reply?.status === 503) {
          assertHubStarting(path, reply);
          inWindow.push(reply);
        }
      }
    }
    assert.ok(second);
    assert.ok(inWindow.length > 0, 'some clicks landed in the reconcile window (the hub listens before it has reconciled)');

    // The student keeps clicking until the course link works.
    let reached: Reply | undefined;
    while (!reached) {
      if (Date.now() - restartedAt > 120_000) assert.fail('the course link never worked after the restart');
      if (second.child.exitCode !== null) assert.fail(`the hub exited:\n${second.output()}`);
      for (const { path, reply } of await click(rex)) {
        assert.ok(reply, `${path}: the hub stopped listening`);
        if (reply.status === 503) {
          assertHubStarting(path, reply);
          inWindow.push(reply);
          continue;
        }
        // Past the window: the link leads to the running server.
        if (path === '/hub/user-redirect/lab') {
          assert.equal(reply.status, 302, `${path} answered ${reply.status}`);
          // To rex's own origin, through the one-time sign-in handoff, and on to the same page.
          const target: URL = new URL(reply.location ?? '', 'http://x');
          assert.equal(target.pathname, '/user/rex/oerhub-login', String(reply.location));
          assert.equal(target.searchParams.get('next'), '/user/rex/lab');
          reached = reply;
        } else assert.ok([200, 302, 303].includes(reply.status), `${path} answered ${reply.status}: ${reply.body.slice(0, 200)}`);
      }
    }
    const recovered = secondsSince(restartedAt);

    assert.equal((await rex.get('/user/rex/api/status', { accept: 'application/json' })).status, 200);
    assert.equal(serverPid(dataDir, 'rex'), pid, 'the same server process, adopted');
    assert.deepEqual(jupyterPids(dataDir, 'rex'), [pid], 'no second server was started');
    assert.equal(jupyterPids(dataDir).length, STUDENTS.length);
    assert.equal(await readFile(rex, 'rex', 'lab1.py'), 'answer = 42\n');

    assert.equal(await hubs.stop(second, 'SIGINT'), 0);
    reportFault(
      `a click during the reconcile window (hub SIGKILLed and restarted with ${STUDENTS.length} servers; ${inWindow.length} clicks answered during reconcile, 3 tabs clicking; the hub held as it began to listen, ${starts} start(s))`,
      '"The hub is starting. Your server and your files are safe" (503, no Start button), then the same server',
      'none (same pid)',
      `${recovered} from the restart to the course link working`,
    );
  });
});
