/**
 * Spawn benchmark: time from `spawner.start()` to a server that answers `api/status` with its
 * secret (what the hub waits for before routing), for the Docker spawner and the local-process
 * spawner, interleaved in one run so both see the same machine.
 *
 *   node --import tsx bench/spawn.ts [--runs=5] [--image=oerhub/python:latest]
 *
 * Needs a running Docker engine with the image (bash .ci/docker.sh) and the notebook venv
 * (npm run venv). Each run uses a new user, so the Docker figure includes creating the home
 * volume; a second start of the same user (volume present) is measured as "docker, restart".
 * Prints medians and ratios; asserts nothing. All traffic goes to 127.0.0.1; every container,
 * volume and network it makes carries a bench instance label and is removed at the end.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../server/log.js';
import { escapeName } from '../server/names.js';
import { LocalProcessSpawner, type SpawnSpec, type Spawner, type StartedServer } from '../server/spawner/index.js';
import { cleanupInstance, makeDockerSpawner, requireDockerImage, testInstance } from '../test/helpers/docker.js';
import { notebookVenv } from '../test/helpers/venv.js';

interface Options {
  runs: number;
  image: string;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { runs: 5, image: process.env.OERHUB_TEST_IMAGE ?? 'oerhub/python:latest' };
  for (const arg of argv) {
    const m = /^--(runs|image)=(.+)$/.exec(arg);
    if (!m) throw new Error(`unknown option ${arg} (--runs=N, --image=NAME)`);
    if (m[1] === 'runs') options.runs = Math.max(1, Number.parseInt(m[2]!, 10));
    else options.image = m[2]!;
  }
  return options;
}

function specFor(user: string): SpawnSpec {
  const escapedName = escapeName(user);
  return { user, escapedName, baseUrl: `/user/${escapedName}/`, secret: randomBytes(32).toString('hex'), defaultUrl: '/lab', ephemeral: false, env: {} };
}

async function timeStart(spawner: Spawner, spec: SpawnSpec): Promise<{ ms: number; server: StartedServer }> {
  const startedAt = performance.now();
  const server = await spawner.start(spec, { signal: new AbortController().signal, onProgress: () => undefined, log: createLogger('silent') });
  return { ms: performance.now() - startedAt, server };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function row(name: string, values: number[], reference: number): string {
  const fmt = (ms: number): string => (ms / 1000).toFixed(2);
  return `| ${name} | ${values.length} | ${fmt(median(values))} | ${fmt(Math.min(...values))} | ${fmt(Math.max(...values))} | ${(median(values) / reference).toFixed(2)}× |`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  await requireDockerImage(options.image);
  const instance = testInstance('bench');
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'oerhub-bench-spawn-'));
  const docker = makeDockerSpawner(instance, { profiles: [{ name: 'python', displayName: 'Python', image: options.image, description: '' }], memLimitMb: 2048 });
  const local = new LocalProcessSpawner({ venvDir: notebookVenv(), dataDir, app: 'lab', startTimeoutS: 120, log: createLogger('silent') });
  const times = { docker: [] as number[], dockerRestart: [] as number[], local: [] as number[] };
  try {
    // One unmeasured start of each warms the page cache (image layers, venv files).
    for (const spawner of [docker, local]) {
      const spec = specFor(`warmup-${spawner.kind}`);
      const { server } = await timeStart(spawner, spec);
      await spawner.stop(spec, server.state);
    }
    for (let i = 0; i < options.runs; i++) {
      // Alternate the order so neither spawner always runs on a machine the other just loaded.
      const order: ('docker' | 'local')[] = i % 2 ? ['local', 'docker'] : ['docker', 'local'];
      for (const kind of order) {
        const spawner = kind === 'docker' ? docker : local;
        const spec = specFor(`bench-${kind}-${i}`);
        const first = await timeStart(spawner, spec);
        times[kind].push(first.ms);
        await spawner.stop(spec, first.server.state);
        if (kind === 'docker') {
          const again = { ...spec, secret: randomBytes(32).toString('hex') };
          const second = await timeStart(spawner, again);
          times.dockerRestart.push(second.ms);
          await spawner.stop(again, second.server.state);
        }
      }
      process.stderr.write(`run ${i + 1}/${options.runs}: docker ${times.docker.at(-1)!.toFixed(0)} ms, docker restart ${times.dockerRestart.at(-1)!.toFixed(0)} ms, local ${times.local.at(-1)!.toFixed(0)} ms\n`);
    }
  } finally {
    await docker.close();
    await local.close();
    await cleanupInstance(instance);
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  const reference = median(times.local);
  const cpus = os.cpus();
  console.log(`Spawn-to-ready (start() until api/status answers with the secret), ${options.runs} runs each, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`Machine: ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; image ${options.image}\n`);
  console.log('| spawner | runs | median s | min s | max s | vs local |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  console.log(row('local process (reference)', times.local, reference));
  console.log(row('docker, new user (creates home volume)', times.docker, reference));
  console.log(row('docker, restart (home volume exists)', times.dockerRestart, reference));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
