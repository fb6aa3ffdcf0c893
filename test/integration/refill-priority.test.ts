import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../server/log.js';
import { escapeName, normalizeUsername } from '../../server/names.js';
import { LocalProcessSpawner, type SpawnSpec, type Spawner, type StartedServer } from '../../server/spawner/index.js';
import { LOW_PRIORITY_CPU_SHARES, LOW_PRIORITY_NICE } from '../../server/spawner/spawner.js';
import { makeSpec, startOptions } from '../contracts/spawner.contract.js';
import { cleanupInstance, docker, makeDockerSpawner, requireDockerImage, testInstance } from '../helpers/docker.js';
import { notebookVenv } from '../helpers/venv.js';

/** Issue 14: the pool's refills run at a lower CPU priority than students' servers. */

function specFor(label: string, overrides: Partial<SpawnSpec>): SpawnSpec {
  const user = normalizeUsername(`tst-${label}-${Math.random().toString(16).slice(2, 8)}`);
  const escapedName = escapeName(user);
  return makeSpec({ user, escapedName, baseUrl: `/user/${escapedName}/`, ...overrides });
}

/** Field 19 of /proc/PID/stat: the process's nice value. */
async function niceOf(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
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
      await spawner.stop(servers.pool.spec, servers.pool.started.state);
      await spawner.stop(servers.student.spec, servers.student.started.state);
    } finally {
      await spawner.close();
      await cleanupInstance(instance);
    }
  });
});
