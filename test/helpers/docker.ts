import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../server/log.js';
import { DockerSpawner, type DockerSpawnerOptions } from '../../server/spawner/index.js';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** The image every Docker test runs, built once by .ci/docker.sh (images/build.sh) before the tests. */
export const TEST_IMAGE = process.env.OERHUB_TEST_IMAGE ?? 'oerhub/python:latest';
export const TEST_R_IMAGE = process.env.OERHUB_TEST_R_IMAGE ?? 'oerhub/r:latest';
/** Every Docker object a test makes carries a name starting with this (and the instance label). */
export const TEST_PREFIX = 'oerhubtest';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `docker ARGS...`; never throws for a non-zero exit (the caller checks `code`). */
export async function docker(args: string[], timeoutMs = 120_000): Promise<ExecResult> {
  try {
    const { stdout, stderr } = await run('docker', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

/**
 * Fails (never skips) with what to do when the engine or the shared test image is missing:
 * CI builds the image once, before the tests, with `bash .ci/docker.sh`.
 */
export async function requireDockerImage(image = TEST_IMAGE): Promise<void> {
  const info = await docker(['info', '--format', '{{.ServerVersion}}'], 20_000);
  if (info.code !== 0) throw new Error(`The Docker engine does not answer (${info.stderr.trim()}). Start it and build the images with: bash .ci/docker.sh`);
  const img = await docker(['image', 'inspect', '--format', '{{.Id}}', image]);
  if (img.code !== 0) throw new Error(`The notebook image ${image} is missing. Build it with: bash .ci/docker.sh (or bash images/build.sh)`);
}

/** A fresh, unique spawner instance name for one suite (prefix of all its Docker objects). */
export function testInstance(label: string): string {
  return `${TEST_PREFIX}-${label}-${randomBytes(3).toString('hex')}`.slice(0, 24).replace(/-+$/, '');
}

export type DockerSpawnerOverrides = Partial<Omit<DockerSpawnerOptions, 'instance'>>;

/** A DockerSpawner for tests: the shared image, small limits, a test instance. */
export function makeDockerSpawner(instance: string, overrides: DockerSpawnerOverrides = {}): DockerSpawner {
  return new DockerSpawner({
    socketPath: '/var/run/docker.sock',
    instance,
    profiles: [{ name: 'python', displayName: 'Python', image: TEST_IMAGE, description: '' }],
    datasets: [],
    notebookHome: '/home/student',
    app: 'lab',
    memLimitMb: 1024,
    cpuLimit: 1,
    pidsLimit: 256,
    logMaxSizeMb: 5,
    logMaxFiles: 2,
    stopGraceS: 2,
    startTimeoutS: 90,
    log: createLogger('silent'),
    ...overrides,
  });
}

/** Hub config overrides that select the Docker spawner for a test instance. */
export function dockerHubConfig(instance: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    spawner: 'docker',
    dockerInstance: instance,
    dockerProfiles: [{ name: 'python', displayName: 'Python', image: TEST_IMAGE, description: '' }],
    dockerMemLimitMb: 1024,
    dockerStopGraceS: 2,
    startTimeoutS: 90,
    // No warm "Try it" pool: its ephemeral containers would share the instance and the CPU.
    poolSize: 0,
    ...extra,
  };
}

/** Names of the containers carrying the instance label (any state). */
export async function containersOf(instance: string): Promise<string[]> {
  const r = await docker(['ps', '-a', '--filter', `label=org.oerhub.instance=${instance}`, '--format', '{{.Names}}']);
  return r.stdout.split('\n').filter(Boolean);
}

export async function volumesOf(instance: string): Promise<string[]> {
  const r = await docker(['volume', 'ls', '--filter', `label=org.oerhub.instance=${instance}`, '--format', '{{.Name}}']);
  return r.stdout.split('\n').filter(Boolean);
}

/** Print the logs of every container of the instance (after a failed test). */
export async function printContainerLogs(instance: string): Promise<void> {
  for (const name of await containersOf(instance)) {
    const logs = await docker(['logs', '--tail', '60', name]);
    console.error(`--- logs of container ${name} ---\n${logs.stdout}${logs.stderr}`);
  }
}

/**
 * Remove everything of a test instance: containers (logs printed first when `printLogs`),
 * volumes and networks carrying its label, plus `extra` objects the test made by hand.
 */
export async function cleanupInstance(instance: string, options: { printLogs?: boolean; extraVolumes?: string[]; extraImages?: string[] } = {}): Promise<void> {
  if (options.printLogs) await printContainerLogs(instance);
  const containers = await containersOf(instance);
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]);
  const volumes = [...(await volumesOf(instance)), ...(options.extraVolumes ?? [])];
  if (volumes.length) await docker(['volume', 'rm', '-f', ...volumes]);
  const networks = await docker(['network', 'ls', '--filter', `label=org.oerhub.instance=${instance}`, '--format', '{{.Name}}']);
  for (const net of networks.stdout.split('\n').filter(Boolean)) await docker(['network', 'rm', net]);
  if (options.extraImages?.length) await docker(['image', 'rm', '-f', ...options.extraImages]);
}

/** Run a command inside a running container, as its own (notebook) user unless `user` says otherwise. */
export async function dockerExec(container: string, command: string[], user?: string): Promise<ExecResult> {
  return docker(['exec', ...(user ? ['-u', user] : []), container, ...command], 60_000);
}

/** Stop the dockerd that .ci/docker.sh started (the "Docker going away" test). */
export async function stopDockerDaemon(): Promise<void> {
  await runScript(['daemon-stop']);
}

/** Start dockerd again through .ci/docker.sh and wait until it answers. */
export async function startDockerDaemon(): Promise<void> {
  await runScript(['daemon-start']);
}

function runScript(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(REPO_ROOT, '.ci', 'docker.sh'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`.ci/docker.sh ${args.join(' ')} failed (${code}):\n${output}`))));
  });
}
