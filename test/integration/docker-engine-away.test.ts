import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { cleanupInstance, docker, dockerHubConfig, requireDockerImage, testInstance } from '../helpers/docker.js';
import { createUsers, signInAndStart, startTestHub, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';

/** Bound for "soon"; never an assertion on speed. */
const EVENTUALLY_MS = 60_000;
const ENGINE_SOCKET = '/var/run/docker.sock';

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) assert.fail(`expected within ${EVENTUALLY_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * The hub's way to the real Docker engine, through a Unix socket this test owns: closing it is
 * the engine going away for the hub (the machine's dockerd is shared and must not be stopped),
 * opening it again is the engine coming back. Every request still goes to the real engine.
 */
class EngineRelay {
  private server: net.Server | undefined;
  private readonly open = new Set<net.Socket>();

  constructor(readonly socketPath: string) {}

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const engine = net.connect(ENGINE_SOCKET);
      this.open.add(client).add(engine);
      const drop = (): void => {
        client.destroy();
        engine.destroy();
        this.open.delete(client);
        this.open.delete(engine);
      };
      client.on('error', drop).on('close', drop);
      engine.on('error', drop).on('close', drop);
      client.pipe(engine).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.open) s.destroy();
    this.open.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }
}

describe('the hub while it cannot reach the Docker engine', function () {
  this.timeout(300_000);

  const instance = testInstance('away');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-engine-relay-'));
  const relay = new EngineRelay(path.join(dir, 'docker.sock'));
  let hub: Hub;
  let failed = false;

  before(async () => {
    await requireDockerImage();
    await relay.up();
    hub = await startTestHub('docker-engine-away', dockerHubConfig(instance, { dockerSocket: relay.socketPath }));
    await createUsers(hub, { hedy: 'hedy-password', ida: 'ida-password' });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    // The hub stops its containers through the relay, so it must be up.
    await relay.up().catch(() => undefined);
    await hub?.close();
    await relay.down();
    fs.rmSync(dir, { recursive: true, force: true });
    await cleanupInstance(instance, { printLogs: failed });
  });

  it('keeps every server while the engine does not answer, and checks them all once it does', async () => {
    const hedy = await signInAndStart(hub, 'hedy', 'hedy-password');
    const ida = await signInAndStart(hub, 'ida', 'ida-password');
    const kernelId = await startKernel(hedy, 'hedy');
    const notebook = await KernelSocket.open(hedy, 'hedy', kernelId);
    try {
      assert.equal(await notebook.execute('x = 1\nprint("ready")'), 'ready\n');

      await relay.down();
      // A poll while the engine does not answer keeps every server, still routed.
      const during = await hub.manager.recheck();
      assert.deepEqual([...during.unknown].sort(), ['hedy', 'ida']);
      assert.deepEqual(during.gone, []);
      assert.match((await hedy.get('/hub/home')).body, /Running\./);
      assert.equal(await notebook.execute('x += 1\nprint(x)'), '2\n');
      // Ida's container dies meanwhile.
      assert.equal((await docker(['kill', `${instance}-nb-ida`])).code, 0);
      assert.match((await ida.get('/hub/home')).body, /Running\./, 'nothing is known while the engine does not answer');

      await relay.up();
      // Nobody clicks anything: the hub checks every server once the engine answers again.
      await eventually('the hub notices that Ida\'s server died', async () => /Not running\./.test((await ida.get('/hub/home')).body));
      assert.match((await hedy.get('/hub/home')).body, /Running\./);
      assert.equal(await notebook.execute('x += 1\nprint(x)'), '3\n');
      assert.equal((await hedy.get('/user/hedy/api/status', { accept: 'application/json' })).status, 200);
      // Ida starts again and works.
      await ida.get('/hub/spawn');
      await waitForReady(ida, 'ida');
      assert.equal((await ida.get('/user/ida/api/status', { accept: 'application/json' })).status, 200);
    } finally {
      notebook.close();
    }
  });
});
