import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { TEST_IMAGE, cleanupInstance, containersOf, docker, requireDockerImage, testInstance } from '../helpers/docker.js';
import { ADMIN_PASSWORD, TEST_COOKIE_SECRET, createUsers, tempDataDir, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { freePort } from '../helpers/ports.js';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO_ROOT, 'dist', 'server', 'main.js');
const OUTPUT = path.join(REPO_ROOT, 'test-output');

interface ChildHub {
  url: string;
  child: ChildProcess;
  output(): string;
}

/** The real hub program (`node dist/server/main.js`) in its own process, so it can be SIGKILLed. */
async function startChildHub(label: string, env: Record<string, string>): Promise<ChildHub> {
  const port = await freePort();
  const logFile = path.join(OUTPUT, `${label}.log`);
  fs.mkdirSync(OUTPUT, { recursive: true });
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    // Only what the hub needs: any other OERHUB_* variable of the test process would be refused.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', OERHUB_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    fs.appendFileSync(logFile, chunk);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  process.once('exit', () => child.kill('SIGKILL'));
  const deadline = Date.now() + 60_000;
  while (!output.includes('oerhub is running')) {
    if (child.exitCode !== null) throw new Error(`hub exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) throw new Error(`hub did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${port}`, child, output: () => output };
}

function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

describe('a hub killed with SIGKILL while students work in Docker containers', function () {
  this.timeout(300_000);

  const instance = testInstance('adopt');
  const users = ['ada', 'ben', 'cy'];
  let redis: TestRedis;
  const hubs: ChildHub[] = [];
  let failed = false;

  before(async () => {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first (npm test does)`);
    await requireDockerImage();
    redis = await startRedis();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    for (const h of hubs) await kill(h.child, 'SIGKILL');
    if (failed) for (const h of hubs) console.error(`--- hub output ---\n${h.output().slice(-4000)}`);
    await cleanupInstance(instance, { printLogs: failed });
    await redis?.stop();
  });

  it('adopts all three running servers with their kernels alive, and removes an unknown labelled container', async () => {
    const env = {
      OERHUB_STORE: 'redis',
      OERHUB_REDIS_URL: redis.url,
      OERHUB_COOKIE_SECRET: TEST_COOKIE_SECRET,
      OERHUB_REDIS_KEY_PREFIX: `${instance}:`,
      OERHUB_DATA_DIR: tempDataDir('docker-adopt'),
      OERHUB_ADMIN_PASSWORD: ADMIN_PASSWORD,
      OERHUB_SPAWNER: 'docker',
      OERHUB_DOCKER_INSTANCE: instance,
      OERHUB_DOCKER_PROFILES: JSON.stringify([{ name: 'python', displayName: 'Python', image: TEST_IMAGE }]),
      OERHUB_DOCKER_MEM_LIMIT_MB: '1024',
      OERHUB_START_TIMEOUT_S: '90',
      OERHUB_LOG_LEVEL: 'info',
      // No warm "Try it" pool: only the three students' containers are of interest here.
      OERHUB_POOL_SIZE: '0',
    };
    const first = await startChildHub('docker-adopt-1', env);
    hubs.push(first);
    await createUsers({ url: first.url } as Hub, Object.fromEntries(users.map((u) => [u, `${u}-password`])));

    const clients = new Map<string, { client: HubClient; kernelId: string }>();
    await Promise.all(
      users.map(async (name, i) => {
        const client = new HubClient(first.url);
        assert.equal((await client.login(name, `${name}-password`)).status, 303);
        await client.get('/hub/spawn');
        await waitForReady(client, name);
        assert.equal((await client.openServer('/lab')).handoff?.status, 302);
        const kernelId = await startKernel(client, name);
        const kernel = await KernelSocket.open(client, name, kernelId);
        await kernel.execute(`x = ${i + 40}`);
        kernel.close();
        clients.set(name, { client, kernelId });
      }),
    );

    await kill(first.child, 'SIGKILL');
    // A container with our labels the store has never heard of (a hub that died mid-start, a
    // hand-made one): it must be reported and removed, never kept.
    const ghost = `${instance}-nb-ghost`;
    const made = await docker(['run', '-d', '--name', ghost, '--label', `org.oerhub.instance=${instance}`, '--label', 'org.oerhub.user=ghost', '-p', '127.0.0.1::8888', TEST_IMAGE, 'sleep', '600']);
    assert.equal(made.code, 0, made.stderr);

    const second = await startChildHub('docker-adopt-2', env);
    hubs.push(second);
    for (const [i, name] of users.entries()) {
      const { client: old, kernelId } = clients.get(name)!;
      // The same browser (cookies) against the restarted hub.
      const client = Object.assign(Object.create(Object.getPrototypeOf(old) as object) as HubClient, old, { baseUrl: second.url });
      const status = await client.get(`/user/${name}/api/status`, { accept: 'application/json' });
      assert.equal(status.status, 200, `${name}: ${status.status}`);
      const kernel = await KernelSocket.open(client, name, kernelId);
      try {
        assert.equal(await kernel.execute('print(x)'), `${i + 40}\n`, `${name}'s kernel lost its state`);
      } finally {
        kernel.close();
      }
    }
    const left = await containersOf(instance);
    assert.ok(!left.includes(ghost), 'the unknown container is still there');
    assert.deepEqual(left.sort(), users.map((u) => `${instance}-nb-${u}`).sort());
    assert.match(second.output(), /stopping orphan server the hub does not know/);
    assert.match(second.output(), /"orphans":\["ghost"\]/);
  });
});
