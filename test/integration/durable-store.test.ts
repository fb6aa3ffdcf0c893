import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { StartupError, type Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { signInAndStart, startTestHub, tempDataDir } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { notebookVenv } from '../helpers/venv.js';

const MAIN = path.resolve(__dirname, '../../dist/server/main.js');

/** The same browser (cookie jar) pointed at another hub process. */
function sameBrowserOn(client: HubClient, hub: Hub): HubClient {
  return Object.assign(Object.create(Object.getPrototypeOf(client) as object) as HubClient, client, { baseUrl: hub.url });
}

async function whoAmI(client: HubClient): Promise<number> {
  return (await client.get('/hub/api/user', { accept: 'application/json' })).status;
}

describe('state kept on the default store (SQLite in dataDir) across restarts', function () {
  this.timeout(180_000);
  const hubs: Hub[] = [];
  let dataDir: string;

  before(() => {
    dataDir = tempDataDir('durable');
  });

  after(async () => {
    for (const h of hubs.reverse()) await h.close().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('an account, its sign-in, its server and the admin password all survive a hub restart', async () => {
    // No store setting and no admin password: the quick start's defaults.
    const first = await startTestHub('durable-1', { dataDir, adminPassword: undefined, stopServersOnExit: false });
    hubs.push(first);
    assert.equal(first.config.store, 'sqlite');
    assert.ok(fs.existsSync(path.join(dataDir, 'oerhub.sqlite')), 'the database is in the data folder');
    const adminPassword = first.generatedAdminPassword;
    assert.ok(adminPassword, 'the first start generates an admin password');

    const admin = new HubClient(first.url);
    assert.equal((await admin.login('admin', adminPassword)).status, 303);
    const me = JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    const created = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token, accept: 'application/json' },
      body: JSON.stringify({ name: 'frida', password: 'frida-password' }),
    });
    assert.equal(created.status, 201, created.body);
    const frida = await signInAndStart(first, 'frida', 'frida-password');
    assert.equal((await frida.get('/user/frida/api/status', { accept: 'application/json' })).status, 200);
    await first.close();
    hubs.length = 0;

    const second = await startTestHub('durable-2', { dataDir, adminPassword: undefined, stopServersOnExit: true });
    hubs.push(second);
    assert.equal(second.generatedAdminPassword, undefined, 'no new admin password on the second start');

    // The old cookies still sign the same browsers in, and the same server answers.
    const fridaAgain = sameBrowserOn(frida, second);
    assert.equal(await whoAmI(fridaAgain), 200);
    assert.equal((await fridaAgain.get('/user/frida/api/status', { accept: 'application/json' })).status, 200);
    assert.match((await fridaAgain.get('/hub/home')).body, /Running/);
    assert.equal(await whoAmI(sameBrowserOn(admin, second)), 200);

    // A new sign-in with the same passwords works too.
    assert.equal((await new HubClient(second.url).login('frida', 'frida-password')).status, 303);
    assert.equal((await new HubClient(second.url).login('admin', adminPassword)).status, 303);
    assert.equal((await new HubClient(second.url).login('frida', 'wrong-password')).status, 401);
  });

  it('a second hub on the same data folder is refused with a message that says what to do, and the first keeps working', async () => {
    const running = hubs[0] ?? (await startTestHub('durable-3', { dataDir }));
    if (!hubs.includes(running)) hubs.push(running);
    await assert.rejects(startTestHub('durable-refused', { dataDir }), (err: unknown) => {
      assert.ok(err instanceof StartupError, String(err));
      assert.match(err.message, /oerhub\.sqlite is in use by another oerhub process \(process \d+/);
      assert.match(err.message, /stop the other hub, give this one its own dataDir, or use store=redis/);
      return true;
    });
    assert.equal((await new HubClient(running.url).login('frida', 'frida-password')).status, 303);
  });
});

describe('the memory store, chosen explicitly', function () {
  it('warns in the hub log at start that everything is lost when the hub stops', async () => {
    const label = `memory-warning-${process.pid}-${Date.now()}`;
    const hub = await startTestHub(label, { store: 'memory' });
    try {
      assert.equal(hub.config.store, 'memory');
      const log = fs.readFileSync(path.resolve(__dirname, '../../test-output', `${label}.log`), 'utf8');
      const warning = log
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .find((r) => r.msg.startsWith('store=memory'));
      assert.ok(warning, 'a warning about store=memory');
      assert.equal(warning.level, 40);
      assert.match(warning.msg, /lost when the hub stops/);
    } finally {
      await hub.close();
    }
  });
});

/** `npm start` as a user runs it: node dist/server/main.js with nothing but a data folder and a port. */
class HubProcess {
  readonly exited: Promise<number | null>;
  private out = '';

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => (this.out += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.out += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(dataDir: string, port: number): HubProcess {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, OERHUB_DATA_DIR: dataDir, OERHUB_PORT: String(port), OERHUB_NOTEBOOK_VENV: notebookVenv(), OERHUB_POOL_SIZE: '0' };
    return new HubProcess(spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get output(): string {
    return this.out;
  }

  /** Resolves once the hub says it is running; rejects if it exits first. */
  async running(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!this.out.includes('oerhub is running')) {
      if (this.child.exitCode !== null) throw new Error(`the hub exited (${this.child.exitCode}):\n${this.out}`);
      if (Date.now() > deadline) throw new Error(`the hub did not start:\n${this.out}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

describe('npm start, SIGKILL, npm start', function () {
  this.timeout(180_000);
  const processes: HubProcess[] = [];
  let dataDir: string;

  before(() => {
    assert.ok(fs.existsSync(MAIN), `${MAIN} is missing: run npx tsc -p tsconfig.json first`);
    dataDir = tempDataDir('durable-main');
  });

  after(async () => {
    for (const p of processes) await p.kill('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the accounts and the admin password, and refuses a second hub on the same data folder', async () => {
    const port = await freePort();
    const first = HubProcess.start(dataDir, port);
    processes.push(first);
    await first.running();
    const shown = /First admin account: admin \/ (\S+)/.exec(first.output);
    assert.ok(shown, first.output);
    const adminPassword = shown[1]!;
    const url = `http://127.0.0.1:${port}`;
    const admin = new HubClient(url);
    assert.equal((await admin.login('admin', adminPassword)).status, 303);
    const me = JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    const created = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token, accept: 'application/json' },
      body: JSON.stringify({ name: 'gustav', password: 'gustav-password' }),
    });
    assert.equal(created.status, 201, created.body);

    // No shutdown at all: whatever was answered before the kill must be on disk.
    await first.kill('SIGKILL');

    const second = HubProcess.start(dataDir, port);
    processes.push(second);
    await second.running();
    assert.doesNotMatch(second.output, /First admin account/);
    assert.equal(await whoAmI(admin), 200, 'the admin cookie from before the kill still works');
    assert.equal((await new HubClient(url).login('gustav', 'gustav-password')).status, 303);
    assert.equal((await new HubClient(url).login('admin', adminPassword)).status, 303);

    const third = HubProcess.start(dataDir, await freePort());
    processes.push(third);
    assert.equal(await third.exited, 1);
    assert.match(third.output, /oerhub: The hub's database can't be used: .*oerhub\.sqlite is in use by another oerhub process \(process \d+/);
    assert.equal(await whoAmI(admin), 200, 'the running hub is unaffected');
  });
});
