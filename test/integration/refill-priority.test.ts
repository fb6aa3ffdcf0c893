import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../server/log.js';
import { escapeName, normalizeUsername } from '../../server/names.js';
import { LocalProcessSpawner, type SpawnSpec, type Spawner, type StartedServer } from '../../server/spawner/index.js';
import { LOW_PRIORITY_CPU_SHARES, LOW_PRIORITY_NICE, NORMAL_CPU_SHARES, NORMAL_NICE } from '../../server/spawner/spawner.js';
import { auth, makeSpec, request, startOptions } from '../contracts/spawner.contract.js';
import { cleanupInstance, docker, makeDockerSpawner, requireDockerImage, testInstance } from '../helpers/docker.js';
import { notebookVenv } from '../helpers/venv.js';
import { startTestHub } from '../helpers/hub.js';
import { startKernel } from '../helpers/kernel.js';
import { VisitorClient, localServerOf, processesOf, waitFor, waitForReadyPool } from '../helpers/try.js';

/** Issue 14: the pool's refills run at a lower CPU priority than students' servers. */

function specFor(label: string, overrides: Partial<SpawnSpec>): SpawnSpec {
  const user = normalizeUsername(`tr2-${label}-${Math.random().toString(16).slice(2, 8)}`);
  const escapedName = escapeName(user);
  return makeSpec({ user, escapedName, baseUrl: `/user/${escapedName}/`, ...overrides });
}

/** Field 19 of /proc/PID/stat: the process's nice value. */
async function niceOf(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The nice value of every thread of every process of a server (Linux keeps one per thread). */
async function nicesOf(pids: readonly number[]): Promise<number[]> {
  const out: number[] = [];
  for (const pid of pids) {
    let tids: string[] = [];
    try {
      tids = await fs.readdir(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        out.push(await niceOf(Number(tid)));
      } catch {
        // the thread ended while we looked
      }
    }
  }
  return out;
}

/** Pids of the server's processes other than Jupyter itself: its kernels. */
function kernelsOf(escapedName: string, jupyterPid: number): number[] {
  return processesOf(escapedName).filter((p) => p !== jupyterPid);
}

/** Start a kernel straight on the server (the hub's proxy is not part of these spawner tests). */
async function startKernelOn(spec: SpawnSpec, started: StartedServer): Promise<string> {
  const r = await request(started.endpoint, 'POST', `${spec.baseUrl}api/kernels`, { ...auth(spec), 'content-type': 'application/json' }, JSON.stringify({ name: 'python3' }));
  assert.equal(r.status, 201, r.body);
  return (JSON.parse(r.body) as { id: string }).id;
}

async function startBoth(spawner: Spawner): Promise<{ pool: { spec: SpawnSpec; started: StartedServer }; student: { spec: SpawnSpec; started: StartedServer } }> {
  const poolSpec = specFor('pool', { ephemeral: true, lowPriority: true });
  const studentSpec = specFor('student', { ephemeral: false });
  const [pool, student] = await Promise.all([spawner.start(poolSpec, startOptions()), spawner.start(studentSpec, startOptions())]);
  return { pool: { spec: poolSpec, started: pool }, student: { spec: studentSpec, started: student } };
}

describe('Refill at a lower CPU priority', function () {
  this.timeout(180_000);

  it('local spawner: a pool server\'s Jupyter runs at a higher nice value, a student\'s at the normal one', async function () {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'oerhub-tst-nice-'));
    const spawner = new LocalProcessSpawner({ venvDir: notebookVenv(), dataDir, app: 'lab', startTimeoutS: 90, log: createLogger('silent') });
    let servers: Awaited<ReturnType<typeof startBoth>> | undefined;
    try {
      servers = await startBoth(spawner);
      const base = os.getPriority(process.pid);
      assert.equal(await niceOf(Number(servers.pool.started.state.pid)), LOW_PRIORITY_NICE);
      assert.equal(await niceOf(Number(servers.student.started.state.pid)), base);
      assert.ok(LOW_PRIORITY_NICE > base);
    } finally {
      if (servers) {
        await spawner.stop(servers.pool.spec, servers.pool.started.state);
        await spawner.stop(servers.student.spec, servers.student.started.state);
      }
      await spawner.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('local spawner: once claimed, the server, its running kernel and a kernel started later run at the normal nice value', async function () {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'oerhub-tr2-nice-'));
    const spawner = new LocalProcessSpawner({ venvDir: notebookVenv(), dataDir, app: 'lab', startTimeoutS: 90, log: createLogger('silent') });
    const spec = specFor('claim', { ephemeral: true, lowPriority: true });
    let started: StartedServer | undefined;
    try {
      started = await spawner.start(spec, startOptions());
      const pid = Number(started.state.pid);
      // The warm pool's landing kernel, started while the server was a refill.
      await startKernelOn(spec, started);
      const warmKernels = await waitFor('the warm kernel', async () => kernelsOf(spec.escapedName, pid), (k) => k.length === 1, 30_000);
      const before = await nicesOf([pid, ...warmKernels]);
      assert.ok(before.length > 2 && before.every((n) => n === LOW_PRIORITY_NICE), `refill threads at nice ${LOW_PRIORITY_NICE}: ${before.join(',')}`);

      assert.ok(spawner.setPriority);
      await spawner.setPriority(started.state, 'normal');
      const after = await nicesOf([pid, ...warmKernels]);
      assert.ok(after.length > 2 && after.every((n) => n === NORMAL_NICE), `claimed server's threads at nice ${NORMAL_NICE}: ${after.join(',')}`);

      // The visitor's own kernel, started after the claim, inherits the normal value.
      await startKernelOn(spec, started);
      const kernels = await waitFor('the second kernel', async () => kernelsOf(spec.escapedName, pid), (k) => k.length === 2, 30_000);
      const fresh = kernels.filter((k) => !warmKernels.includes(k));
      assert.equal(fresh.length, 1);
      assert.deepEqual([...new Set(await nicesOf(fresh))], [NORMAL_NICE]);

      // A repeat, and a server that is gone, are no errors.
      await spawner.setPriority(started.state, 'normal');
      await spawner.stop(spec, started.state);
      await spawner.setPriority(started.state, 'normal');
      started = undefined;
    } finally {
      if (started) await spawner.stop(spec, started.state);
      await spawner.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a visitor who takes a warm server gets it, and its warm kernel, back at normal priority', async function () {
    const hub = await startTestHub('tr2-prio', { poolSize: 1, poolMaxStarting: 1, tryMaxServers: 2 });
    try {
      await waitForReadyPool(hub, 1);
      const visitor = new VisitorClient(hub.url, '127.0.0.31');
      const r = await visitor.tryIt();
      assert.equal(r.status, 303, r.body.slice(0, 200));
      const me = await visitor.me();
      const pid = localServerOf(hub, me.escaped_name).pid;
      assert.ok(pid !== undefined, 'the claimed server runs');
      // The pool started the landing kernel while it was a refill; the claim moves all of it back.
      const threads = await waitFor(
        'normal priority after the claim',
        async () => nicesOf([pid, ...kernelsOf(me.escaped_name, pid)]),
        (n) => n.length > 2 && n.every((v) => v === NORMAL_NICE),
        15_000,
      );
      assert.ok(kernelsOf(me.escaped_name, pid).length >= 1, `the warm landing kernel runs (${threads.length} threads)`);
      const known = kernelsOf(me.escaped_name, pid);
      assert.equal((await visitor.openLab()).status, 200);
      await startKernel(visitor, me.escaped_name);
      const fresh = (await waitFor('the visitor\'s kernel', async () => kernelsOf(me.escaped_name, pid), (k) => k.length > known.length, 30_000)).filter((k) => !known.includes(k));
      assert.deepEqual([...new Set(await nicesOf(fresh))], [NORMAL_NICE]);
      // The refill that replaces it still starts at low priority.
      await waitForReadyPool(hub, 1);
      const others = (await fs.readdir(path.join(hub.config.dataDir, 'servers'))).filter((f) => f.endsWith('.json') && f !== `${me.escaped_name}.json`);
      assert.equal(others.length, 1, `one refill: ${others.join(',')}`);
      const refillPid = localServerOf(hub, others[0]!.slice(0, -'.json'.length)).pid;
      assert.ok(refillPid !== undefined);
      assert.equal(await niceOf(refillPid), LOW_PRIORITY_NICE);
    } finally {
      await hub.close();
    }
  });

  it('Docker spawner: a pool container gets lower CpuShares than a student\'s', async function () {
    await requireDockerImage();
    const instance = testInstance('tstprio');
    const spawner = makeDockerSpawner(instance);
    try {
      const servers = await startBoth(spawner);
      const shares = async (spec: SpawnSpec): Promise<number> => {
        const r = await docker(['inspect', '--format', '{{.HostConfig.CpuShares}}', spawner.containerName(spec.escapedName)]);
        assert.equal(r.code, 0, r.stderr);
        return Number(r.stdout.trim());
      };
      assert.equal(await shares(servers.pool.spec), LOW_PRIORITY_CPU_SHARES);
      // 0 means the engine's default, 1024: the normal share.
      const student = await shares(servers.student.spec);
      assert.ok(student === 0 || student === 1024, `student's CpuShares ${student}`);
      // Claimed: the container (Jupyter and every kernel in it) gets the normal share back.
      assert.ok(spawner.setPriority);
      await spawner.setPriority(servers.pool.started.state, 'normal');
      assert.equal(await shares(servers.pool.spec), NORMAL_CPU_SHARES);
      await spawner.stop(servers.pool.spec, servers.pool.started.state);
      await spawner.stop(servers.student.spec, servers.student.started.state);
      // A container that is gone is no error.
      await spawner.setPriority(servers.pool.started.state, 'normal');
    } finally {
      await spawner.close();
      await cleanupInstance(instance);
    }
  });
});
