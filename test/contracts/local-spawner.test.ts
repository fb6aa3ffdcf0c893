import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { SpawnFailed, SpawnTimeout } from '../../server/errors.js';
import { createLogger } from '../../server/log.js';
import { LocalProcessSpawner, type SpawnSpec, type StartedServer } from '../../server/spawner/index.js';
import { notebookVenv } from '../helpers/venv.js';
import { auth, makeSpec, request, spawnerContract, startOptions } from './spawner.contract.js';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SPAWNER_MODULE = path.join(REPO_ROOT, 'server', 'spawner', 'local-process-spawner.ts');
const run = promisify(execFile);

async function makeDataDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'oerhub-local-spawner-'));
}

function makeSpawner(dataDir: string, venvDir = notebookVenv(), startTimeoutS = 60): LocalProcessSpawner {
  return new LocalProcessSpawner({ venvDir, dataDir, app: 'lab', startTimeoutS, log: createLogger('silent') });
}

/** Stops every server a (possibly earlier) spawner left in dataDir, then deletes the folder. */
async function removeDataDir(dataDir: string): Promise<void> {
  const spawner = makeSpawner(dataDir, notebookVenv());
  for (const found of await spawner.listRunning()) {
    const spec = makeSpec({ user: found.escapedName, escapedName: found.escapedName, baseUrl: `/user/${found.escapedName}/` });
    await spawner.stop(spec, found.state);
  }
  await spawner.close();
  await fs.rm(dataDir, { recursive: true, force: true });
}

/** A stand-in venv whose `bin/jupyter` is a small shell script: one behaviour per fake (crash, hang, ...). */
async function makeFakeVenv(dataDir: string, script: string): Promise<string> {
  const venv = path.join(dataDir, `fake-venv-${Math.random().toString(16).slice(2)}`);
  await fs.mkdir(path.join(venv, 'bin'), { recursive: true });
  await fs.writeFile(path.join(venv, 'bin', 'jupyter'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return venv;
}

async function processIsGone(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

spawnerContract('LocalProcessSpawner', async () => {
  const dataDir = await makeDataDir();
  return { spawner: makeSpawner(dataDir), cleanup: () => removeDataDir(dataDir) };
});

describe('LocalProcessSpawner', function () {
  this.timeout(120_000);

  let dataDir: string;
  let spawner: LocalProcessSpawner;
  const started: { spec: SpawnSpec; server: StartedServer }[] = [];

  async function startServer(spec: SpawnSpec): Promise<StartedServer> {
    const server = await spawner.start(spec, startOptions());
    started.push({ spec, server });
    return server;
  }

  before(async () => {
    dataDir = await makeDataDir();
    spawner = makeSpawner(dataDir);
  });

  afterEach(async () => {
    for (const { spec, server } of started.splice(0)) await spawner.stop(spec, server.state);
  });

  after(async () => {
    await spawner.close();
    await removeDataDir(dataDir);
  });

  it('a hub without the notebook environment says how to install it', async () => {
    const broken = makeSpawner(dataDir, path.join(dataDir, 'no-such-venv'));
    await assert.rejects(broken.start(makeSpec(), startOptions()), (err) => {
      assert.ok(err instanceof SpawnFailed);
      assert.equal(err.userMessage, 'The notebook environment is not installed on this hub (run `npm run venv`).');
      return true;
    });
  });

  it("a student's server keeps running when the hub exits, and the restarted hub finds it", async () => {
    const spec = makeSpec();
    // A separate hub process that starts the server and exits: the server must outlive it.
    const script = path.join(dataDir, 'hub-once.mts');
    await fs.writeFile(
      script,
      [
        `import { LocalProcessSpawner } from ${JSON.stringify(pathToFileURL(SPAWNER_MODULE).href)};`,
        `import { createLogger } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'server', 'log.ts')).href)};`,
        'const [venvDir, dataDir, specJson] = process.argv.slice(2);',
        "const spawner = new LocalProcessSpawner({ venvDir, dataDir, app: 'lab', startTimeoutS: 60, log: createLogger('silent') });",
        "const server = await spawner.start(JSON.parse(specJson), { signal: new AbortController().signal, onProgress: () => {}, log: createLogger('silent') });",
        'await spawner.close();',
        'console.log(JSON.stringify(server));',
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script, notebookVenv(), dataDir, JSON.stringify(spec)], {
      cwd: REPO_ROOT,
      timeout: 90_000,
    });
    const fromOldHub = JSON.parse(stdout) as StartedServer;
    started.push({ spec, server: fromOldHub });

    const restarted = makeSpawner(dataDir);
    const found = (await restarted.listRunning()).find((s) => s.escapedName === spec.escapedName);
    assert.ok(found, 'the restarted hub did not find the server');
    assert.deepEqual(found.state, fromOldHub.state);
    assert.equal(await restarted.poll(found.state), 'running');
    const status = await request(found.endpoint, 'GET', `${spec.baseUrl}api/status`, auth(spec));
    assert.equal(status.status, 200);

    await restarted.stop(spec, found.state);
    assert.equal(await spawner.poll(fromOldHub.state), 'stopped');
    await restarted.close();
  });

  it('the secret never reaches the browser, and the page load sets the _xsrf cookie on the base URL', async () => {
    const spec = makeSpec();
    const { endpoint } = await startServer(spec);
    const paths = ['lab', 'lab/tree', 'api/status', 'api/me', 'api/contents', 'api/kernelspecs', 'lab/api/settings', 'lab/api/workspaces', 'login'];
    for (const p of paths) {
      const reply = await request(endpoint, 'GET', `${spec.baseUrl}${p}`, { ...auth(spec), host: 'hub.example.edu' });
      assert.ok(!reply.body.includes(spec.secret), `${p}: the secret is in the body`);
      assert.ok(!JSON.stringify(reply.headers).includes(spec.secret), `${p}: the secret is in a header`);
      if (p !== 'login') assert.equal(reply.status, 200, `${p}: ${reply.status}`);
    }

    const lab = await request(endpoint, 'GET', `${spec.baseUrl}lab`, auth(spec));
    const xsrf = (lab.headers['set-cookie'] ?? []).find((c) => c.startsWith('_xsrf='));
    assert.ok(xsrf, 'GET lab did not set _xsrf');
    assert.match(xsrf, new RegExp(`; Path=${spec.baseUrl}(;|$)`));
    // Jupyter only sets it when the request has none, so the browser's copy stays stable.
    const again = await request(endpoint, 'GET', `${spec.baseUrl}lab`, { ...auth(spec), cookie: xsrf.split(';')[0]! });
    assert.equal(again.headers['set-cookie'], undefined);
    const api = await request(endpoint, 'GET', `${spec.baseUrl}api/status`, auth(spec));
    assert.equal(api.headers['set-cookie'], undefined);
    assert.equal(api.headers['access-control-allow-origin'], undefined, 'Jupyter must not grant CORS');

    const runtimeDir = path.join(dataDir, 'homes', spec.escapedName, '.local', 'share', 'jupyter', 'runtime');
    for (const file of await fs.readdir(runtimeDir)) {
      if (!file.endsWith('.json')) continue;
      const text = await fs.readFile(path.join(runtimeDir, file), 'utf8');
      assert.ok(!text.includes(spec.secret), `${file} in the home holds the secret`);
    }
  });

  it("a student's terminal does not inherit the secret", async () => {
    const spec = makeSpec();
    const { endpoint, state } = await startServer(spec);
    const created = await request(endpoint, 'POST', `${spec.baseUrl}api/terminals`, auth(spec));
    assert.equal(created.status, 200, created.body);
    // The terminal's shell is a child of the Jupyter process.
    const children: number[] = [];
    for (const entry of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === state.pid) children.push(Number(entry));
    }
    let checked = 0;
    for (const pid of children) {
      let environ: string;
      try {
        environ = await fs.readFile(`/proc/${pid}/environ`, 'utf8');
      } catch (err) {
        // A short-lived child of Jupyter's that exited since the listing holds nothing any more.
        if ((err as NodeJS.ErrnoException).code === 'ESRCH' || (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      assert.ok(!environ.includes(spec.secret), `process ${pid} holds the secret in its environment`);
      assert.match(environ, /(^|\0)OERHUB_USER=/);
      checked++;
    }
    assert.ok(checked > 0, 'no terminal process found');
  });

  it('Jupyter keeps its WebSocket Origin check: same-site passes with the Host passed through, cross-site is refused', async () => {
    const spec = makeSpec();
    const { endpoint } = await startServer(spec);
    const upgrade = (origin: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({
          host: endpoint.host,
          port: endpoint.port,
          path: `${spec.baseUrl}api/events/subscribe`,
          agent: false,
          headers: {
            ...auth(spec),
            host: 'hub.example.edu',
            origin,
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          },
        });
        req.once('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.once('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.once('error', reject);
        req.end();
      });
    assert.equal(await upgrade('https://hub.example.edu'), 101);
    assert.equal(await upgrade('https://evil.example'), 403);
    const crossSiteApi = await request(endpoint, 'GET', `${spec.baseUrl}api/status`, { ...auth(spec), host: 'hub.example.edu', origin: 'https://evil.example' });
    assert.equal(crossSiteApi.status, 404);
    const sameSiteApi = await request(endpoint, 'GET', `${spec.baseUrl}api/status`, { ...auth(spec), host: 'hub.example.edu', origin: 'https://hub.example.edu' });
    assert.equal(sameSiteApi.status, 200);
  });

  it('a persistent home is private and stays; an ephemeral server takes its files with it', async () => {
    const spec = makeSpec();
    const persistent = await spawner.start(spec, startOptions());
    const home = path.join(dataDir, 'homes', spec.escapedName);
    assert.equal((await fs.stat(home)).mode & 0o777, 0o700);
    const record = JSON.parse(await fs.readFile(path.join(dataDir, 'servers', `${spec.escapedName}.json`), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(record, { ...persistent.state, ephemeral: false });
    await spawner.stop(spec, persistent.state);
    assert.ok((await fs.stat(home)).isDirectory(), 'the persistent home was deleted');
    await assert.rejects(fs.stat(path.join(dataDir, 'servers', `${spec.escapedName}.json`)), 'state file left behind');

    const trySpec = makeSpec({ ephemeral: true });
    const ephemeral = await spawner.start(trySpec, startOptions());
    const scratch = path.join(dataDir, 'ephemeral', trySpec.escapedName);
    assert.ok((await fs.stat(scratch)).isDirectory());
    await spawner.stop(trySpec, ephemeral.state);
    await assert.rejects(fs.stat(scratch), 'the ephemeral folder survived stop');
  });

  it('a server that crashes while starting gives the student a reason and the log its last words', async () => {
    const venv = await makeFakeVenv(dataDir, 'echo "ModuleNotFoundError: No module named boom" >&2\nexit 3');
    const crashing = makeSpawner(dataDir, venv);
    const spec = makeSpec();
    await assert.rejects(crashing.start(spec, startOptions()), (err) => {
      assert.ok(err instanceof SpawnFailed);
      assert.match(err.userMessage, /stopped while it was starting/);
      assert.match(err.detail ?? '', /No module named boom/);
      assert.ok(!(err.detail ?? '').includes(spec.secret));
      return true;
    });
    assert.deepEqual(await crashing.listRunning(), []);
  });

  it('a server that never answers times out and is killed', async () => {
    const pidFile = path.join(dataDir, 'hanging.pid');
    const venv = await makeFakeVenv(dataDir, `echo $$ > ${pidFile}\nexec sleep 600`);
    const hanging = makeSpawner(dataDir, venv, 2);
    await assert.rejects(hanging.start(makeSpec(), startOptions()), (err) => err instanceof SpawnTimeout);
    const pid = Number(await fs.readFile(pidFile, 'utf8'));
    assert.ok(await processIsGone(pid), `process ${pid} is still running`);
    assert.deepEqual(await hanging.listRunning(), []);
  });

  it('a port another program grabs first is retried on a new port (and the old log is kept)', async () => {
    const marker = path.join(dataDir, 'port-taken-once');
    // First run fails like Jupyter does on a taken port; later runs are the real Jupyter.
    const venv = await makeFakeVenv(
      dataDir,
      [
        `if [ ! -e ${marker} ]; then`,
        `  touch ${marker}`,
        '  echo "[C ServerApp] ERROR: the Jupyter server could not be started because port 1234 is not available."',
        '  exit 1',
        'fi',
        `exec ${path.join(notebookVenv(), 'bin', 'jupyter')} "$@"`,
      ].join('\n'),
    );
    const retrying = makeSpawner(dataDir, venv);
    const spec = makeSpec();
    const server = await retrying.start(spec, startOptions());
    started.push({ spec, server });
    const previousLog = await fs.readFile(path.join(dataDir, 'logs', `${spec.escapedName}.log.1`), 'utf8');
    assert.match(previousLog, /port 1234 is not available/);
    assert.equal(await retrying.poll(server.state), 'running');
  });
});
