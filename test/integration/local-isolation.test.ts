import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../server/config/index.js';
import { StartupError, type Hub } from '../../server/index.js';
import { createLogger } from '../../server/log.js';
import { LocalProcessSpawner, planLocalIsolation } from '../../server/spawner/index.js';
import { accountNameOf } from '../../server/spawner/unix-accounts.js';
import { HubClient } from '../helpers/client.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { ADMIN_PASSWORD, createUsers, signInAndStart, startTestHub, waitForReady } from '../helpers/hub.js';
import { notebookVenv } from '../helpers/venv.js';
import { makeSpec, spawnerContract } from '../contracts/spawner.contract.js';
import { VisitorClient, localServerOf, processesOf, waitFor } from '../helpers/try.js';

/**
 * Issue 9, "Local processes isolated from each other and from the hub": with the hub running
 * as root (as here and in CI), each local server runs as its own Unix account. Everything is
 * tried from inside real kernels, as a student's code would.
 */

/** Python that tries each path (a folder is listed, a file read) and prints what happened, as JSON. */
function probeCode(paths: string[]): string {
  return [
    'import json, os',
    'def _probe(p):',
    '    try:',
    '        if os.path.isdir(p): os.listdir(p)',
    "        else: open(p, 'rb').read(1)",
    "        return 'read'",
    '    except Exception as e:',
    '        return type(e).__name__',
    `print(json.dumps({p: _probe(p) for p in ${JSON.stringify(paths)}}))`,
  ].join('\n');
}

async function probe(kernel: KernelSocket, paths: string[]): Promise<Record<string, string>> {
  const out = await kernel.execute(probeCode(paths));
  assert.doesNotMatch(out, /ERROR:/, out);
  return JSON.parse(out) as Record<string, string>;
}

function serverPid(hub: Hub, escapedName: string): number {
  return (JSON.parse(fs.readFileSync(path.join(hub.config.dataDir, 'servers', `${escapedName}.json`), 'utf8')) as { pid: number }).pid;
}

/** Every file and folder the hub keeps in its data folder, outside the servers' homes. */
function hubFiles(dataDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (dir === dataDir && (entry.name === 'homes' || entry.name === 'ephemeral')) continue;
      out.push(full);
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dataDir);
  return out;
}

/** Accounts this test made (the hub keeps a student's account for good; a test leaves none behind). */
function removeAccounts(escapedNames: string[]): void {
  for (const name of escapedNames.map(accountNameOf)) {
    if (fs.readFileSync('/etc/passwd', 'utf8').includes(`\n${name}:`)) execFileSync('/usr/sbin/userdel', [name]);
  }
}

/** The built hub (npm test builds dist/ first), run as `nobody` the way an ordinary user would start it. */
function runHubAsNobody(env: Record<string, string>): { done: Promise<{ code: number | null; output: string }>; stop(): void; output(): string } {
  const main = path.resolve(__dirname, '../../dist/server/main.js');
  assert.ok(fs.existsSync(main), `${main} is missing: build with npx tsc -p tsconfig.json`);
  const child = spawn('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, main], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OERHUB_PORT: '0', OERHUB_NOTEBOOK_VENV: notebookVenv(), OERHUB_ADMIN_PASSWORD: ADMIN_PASSWORD, OERHUB_POOL_SIZE: '0', OERHUB_STOP_SERVERS_ON_EXIT: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const done = new Promise<{ code: number | null; output: string }>((resolve) => child.once('exit', (code) => resolve({ code, output })));
  return { done, stop: () => child.kill('SIGTERM'), output: () => output };
}

/** A data folder the unprivileged hub can write. */
function nobodysDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-nobody-'));
  fs.chownSync(dir, 65534, 65534);
  return dir;
}

async function openKernel(client: HubClient, escapedName: string): Promise<KernelSocket> {
  return KernelSocket.open(client, escapedName, await startKernel(client, escapedName));
}

// Start, stop, poll, adoption and cancelling behave the same when each server is its own account.
spawnerContract('LocalProcessSpawner, each server as its own Unix account', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-unix-accounts-'));
  const make = (): LocalProcessSpawner =>
    new LocalProcessSpawner({ venvDir: notebookVenv(), dataDir, app: 'lab', startTimeoutS: 60, isolation: 'unix-users', log: createLogger('silent') });
  return {
    spawner: make(),
    cleanup: async () => {
      const spawner = make();
      for (const found of await spawner.listRunning()) {
        await spawner.stop(makeSpec({ user: found.escapedName, escapedName: found.escapedName, baseUrl: `/user/${found.escapedName}/` }), found.state);
      }
      await spawner.close();
      const accounts = path.join(dataDir, 'accounts');
      removeAccounts(fs.existsSync(accounts) ? fs.readdirSync(accounts).map((f) => f.replace(/\.json$/, '')) : []);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
});

describe('local servers as their own Unix accounts: a student can reach only their own files', function () {
  this.timeout(300_000);
  let hub: Hub;
  let alice: HubClient;
  let bob: HubClient;
  let aliceKernel: KernelSocket;
  let bobKernel: KernelSocket;
  /** Escaped names whose accounts this suite may have made. */
  const made = ['alice', 'bob'];

  before(async function () {
    // CI and these machines run the hub as root; a run as another user must fail, not skip.
    assert.equal(process.geteuid?.(), 0, 'these tests need the hub to run as root (as in CI)');
    hub = await startTestHub('local-isolation');
    await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
    [alice, bob] = await Promise.all([signInAndStart(hub, 'alice', 'alice-password'), signInAndStart(hub, 'bob', 'bob-password')]);
    [aliceKernel, bobKernel] = await Promise.all([openKernel(alice, 'alice'), openKernel(bob, 'bob')]);
  });

  after(async () => {
    aliceKernel?.close();
    bobKernel?.close();
    await hub?.close();
    removeAccounts(made);
  });

  it("each student's code runs as their own unprivileged account, in a home only they can open", async () => {
    const whoami = async (k: KernelSocket): Promise<{ uid: number; name: string; home: string; groups: number[] }> =>
      JSON.parse(await k.execute("import os, pwd, json; print(json.dumps({'uid': os.getuid(), 'name': pwd.getpwuid(os.getuid()).pw_name, 'home': os.path.expanduser('~'), 'groups': os.getgroups()}))")) as {
        uid: number;
        name: string;
        home: string;
        groups: number[];
      };
    const [a, b] = await Promise.all([whoami(aliceKernel), whoami(bobKernel)]);
    assert.notEqual(a.uid, 0);
    assert.notEqual(b.uid, 0);
    assert.notEqual(a.uid, b.uid);
    assert.equal(a.name, accountNameOf('alice'));
    assert.equal(b.name, 'oh-bob');
    // No supplementary groups carried over from the hub (root's would include group 0).
    assert.ok(!a.groups.includes(0), `groups ${a.groups.join(',')}`);
    const home = path.join(hub.config.dataDir, 'homes', 'alice');
    assert.equal(a.home, home);
    const stat = fs.statSync(home);
    assert.equal(stat.uid, a.uid);
    assert.equal(stat.mode & 0o777, 0o700);
    assert.equal(fs.statSync(hub.config.dataDir).mode & 0o777, 0o711, 'the data folder can be passed through, not listed');
  });

  it("a student's kernel can't read a classmate's files, the classmate's server environment, the hub's data folder or the hub's environment", async () => {
    await bobKernel.execute("open(os.path.expanduser('~/answers.txt'), 'w').write('bob only')");
    const bobKernelPid = Number((await bobKernel.execute('import os; print(os.getpid())')).trim());
    const bobHome = path.join(hub.config.dataDir, 'homes', 'bob');
    const attempts = [
      bobHome,
      path.join(bobHome, 'answers.txt'),
      `/proc/${serverPid(hub, 'bob')}/environ`,
      `/proc/${bobKernelPid}/environ`,
      hub.config.dataDir,
      path.join(hub.config.dataDir, 'cookie-secret'),
      path.join(hub.config.dataDir, 'servers', 'bob.json'),
      path.join(hub.config.dataDir, 'logs', 'bob.log'),
      path.join(hub.config.dataDir, 'accounts', 'bob.json'),
      `/proc/${process.pid}/environ`,
    ];
    const results = await probe(aliceKernel, attempts);
    for (const p of attempts) assert.equal(results[p], 'PermissionError', `${p}: ${results[p]}`);

    // The same kinds of reads on her own things work: the refusals above are about whose they are.
    const own = await probe(aliceKernel, [path.join(hub.config.dataDir, 'homes', 'alice'), `/proc/${serverPid(hub, 'alice')}/environ`]);
    assert.deepEqual(Object.values(own), ['read', 'read']);
    assert.equal((await bobKernel.execute("print(open(os.path.expanduser('~/answers.txt')).read())")).trim(), 'bob only');
  });

  it("no file the hub keeps in its data folder can be opened from a student's kernel", async () => {
    const files = hubFiles(hub.config.dataDir);
    assert.ok(files.some((f) => f.endsWith('cookie-secret')), 'the hub has written its files');
    const results = await probe(aliceKernel, files);
    const readable = files.filter((f) => results[f] !== 'PermissionError');
    assert.deepEqual(readable, [], `readable from a kernel: ${readable.map((f) => `${f} (${results[f]})`).join(', ')}`);
  });

  it("a student's files survive a restart of their server, and the restarted server is still their own account", async () => {
    await aliceKernel.execute("open(os.path.expanduser('~/notes.txt'), 'w').write('kept')");
    const uidBefore = fs.statSync(path.join(hub.config.dataDir, 'homes', 'alice', 'notes.txt')).uid;
    aliceKernel.close();
    const me = JSON.parse((await alice.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    const stop = await alice.request('DELETE', '/hub/api/users/alice/server', { headers: { 'x-csrf-token': me.csrf_token, accept: 'application/json' } });
    assert.equal(stop.status, 204);
    const start = await alice.request('POST', '/hub/api/users/alice/server', { headers: { 'x-csrf-token': me.csrf_token, accept: 'application/json' } });
    assert.ok([201, 202].includes(start.status), `start answered ${start.status}: ${start.body}`);
    await waitForReady(alice, 'alice');
    aliceKernel = await openKernel(alice, 'alice');
    const out = await aliceKernel.execute("import os; print(open(os.path.expanduser('~/notes.txt')).read(), os.getuid())");
    assert.equal(out.trim(), `kept ${uidBefore}`);
  });

  it('an anonymous visitor\'s server runs as an account of its own, which is removed once the visitor leaves', async () => {
    const visitor = new VisitorClient(hub.url, '198.51.100.7');
    const tried = await visitor.tryIt();
    assert.equal(tried.status, 303, tried.body.slice(0, 300));
    const { escaped_name: escapedName } = await visitor.me();
    made.push(escapedName);
    await waitFor('the visitor\'s server', async () => visitor.openWorkspace(), (w) => w.status === 200 && w.path.endsWith('/oerhub/workspace') && !w.body.includes('data-starting="true"'), 90_000, 300);
    assert.equal((await visitor.openLab()).status, 200);
    const kernel = await openKernel(visitor, escapedName);
    const account = accountNameOf(escapedName);
    try {
      assert.equal((await kernel.execute('import os, pwd; print(pwd.getpwuid(os.getuid()).pw_name)')).trim(), account);
      const results = await probe(kernel, [path.join(hub.config.dataDir, 'homes', 'bob'), path.join(hub.config.dataDir, 'cookie-secret'), `/proc/${serverPid(hub, 'bob')}/environ`]);
      assert.deepEqual(Object.values(results), ['PermissionError', 'PermissionError', 'PermissionError']);
    } finally {
      kernel.close();
    }
    // A visitor's sign-out lands on "Your session ended".
    assert.equal((await visitor.endSession()).location, '/hub/try/ended');
    const where = localServerOf(hub, escapedName);
    await waitFor('the visitor\'s server destroyed', async () => fs.existsSync(where.stateFile) || processesOf(escapedName).length > 0, (left) => !left, 30_000);
    assert.ok(fs.readFileSync('/etc/passwd', 'utf8').includes(`\n${account}:`), 'the account outlives its server only until the next start');
    // Accounts of gone "Try it" servers are removed before the next start.
    const me = JSON.parse((await bob.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
    await bob.request('DELETE', '/hub/api/users/bob/server', { headers: { 'x-csrf-token': me.csrf_token, accept: 'application/json' } });
    bobKernel.close();
    await bob.request('POST', '/hub/api/users/bob/server', { headers: { 'x-csrf-token': me.csrf_token, accept: 'application/json' } });
    await waitForReady(bob, 'bob');
    assert.ok(!fs.readFileSync('/etc/passwd', 'utf8').includes(`\n${account}:`), 'the visitor\'s account is gone');
    assert.ok(fs.readFileSync('/etc/passwd', 'utf8').includes('\noh-bob:'), 'a student keeps their account');
  });
});

describe('at start, the hub decides how to isolate local servers, and refuses what would be unsafe', function () {
  this.timeout(180_000);
  const base = { adminUsers: ['admin'], localIsolation: 'auto' as const, tryMaxServers: 20, bindHost: '127.0.0.1', publicUrl: undefined };
  const notRoot = { uid: 1000, hasUserTools: true };

  it('reachable from outside and not root, it refuses to start with "Try it" on, naming the fixes', () => {
    for (const reach of [{ publicUrl: 'https://hub.example.edu' }, { bindHost: '0.0.0.0' }]) {
      const plan = planLocalIsolation({ ...base, ...reach }, notRoot);
      assert.equal(plan.mode, 'none');
      assert.equal(plan.problems.length, 1);
      assert.match(plan.problems[0]!, /"Try it" can't be offered/);
      assert.match(plan.problems[0]!, /run the hub as root/);
      assert.match(plan.problems[0]!, /spawner=docker/);
      assert.match(plan.problems[0]!, /tryMaxServers=0/);
    }
  });

  it('a hub started by an ordinary user and reachable from outside stops at start with "Try it" on, naming the fixes', async () => {
    const dataDir = nobodysDataDir();
    try {
      const { code, output } = await runHubAsNobody({ OERHUB_DATA_DIR: dataDir, OERHUB_PUBLIC_URL: 'https://hub.example.edu' }).done;
      assert.equal(code, 1, output);
      assert.match(output, /"Try it" can't be offered: notebook servers are not isolated \(the hub does not run as root/);
      assert.match(output, /OERHUB_TRY_MAX_SERVERS=0/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a hub started by an ordinary user on loopback only runs as before and warns at start', async () => {
    const dataDir = nobodysDataDir();
    const hub = runHubAsNobody({ OERHUB_DATA_DIR: dataDir });
    try {
      await waitFor('the hub to start', async () => hub.output(), (out) => out.includes('hub started') || out.includes('oerhub:'), 60_000);
      assert.match(hub.output(), /Notebook servers are not isolated/);
      assert.match(hub.output(), /hub started/);
    } finally {
      hub.stop();
      await hub.done;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('reachable from outside with "Try it" off, it starts but serves admins only, with a warning', () => {
    const plan = planLocalIsolation({ ...base, publicUrl: 'https://hub.example.edu', tryMaxServers: 0, adminUsers: ['Admin', 'ops'] }, notRoot);
    assert.deepEqual(plan.problems, []);
    assert.deepEqual(plan.onlyUsers, ['admin', 'ops']);
    assert.match(plan.warnings.join('\n'), /only admins/);
  });

  it('on loopback only, it runs as before and warns at start', () => {
    const plan = planLocalIsolation({ ...base, publicUrl: 'http://127.0.0.1:8000' }, notRoot);
    assert.deepEqual(plan.problems, []);
    assert.equal(plan.onlyUsers, undefined);
    assert.match(plan.warnings.join('\n'), /not isolated/);
  });

  it('as root, auto gives each server its own account; unix-users without root is a start-up error', () => {
    assert.deepEqual(planLocalIsolation({ ...base, publicUrl: 'https://hub.example.edu' }, { uid: 0, hasUserTools: true }), { mode: 'unix-users', problems: [], warnings: [] });
    const plan = planLocalIsolation({ ...base, localIsolation: 'unix-users' }, notRoot);
    assert.match(plan.problems.join('\n'), /does not run as root/);
  });

  it('a root hub whose notebook environment other accounts cannot run refuses to start, naming the fix', async () => {
    // A venv inside a private (0700) folder, as pyenv's interpreters under /root are.
    const hidden = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-private-'));
    try {
      fs.mkdirSync(path.join(hidden, 'venv', 'bin'), { recursive: true });
      fs.writeFileSync(path.join(hidden, 'venv', 'bin', 'jupyter'), '#!/bin/sh\n', { mode: 0o755 });
      await assert.rejects(startTestHub('local-isolation-private-venv', { notebookVenv: path.join(hidden, 'venv') }), (err) => {
        assert.ok(err instanceof StartupError, String(err));
        assert.match(err.message, /notebookVenv/);
        assert.match(err.message, new RegExp(`${hidden} must be readable by others`));
        assert.match(err.message, /npm run venv/);
        return true;
      });
    } finally {
      fs.rmSync(hidden, { recursive: true, force: true });
    }
  });

  it('every hub user gets a valid Unix account name of at most 32 characters, distinct from every other', () => {
    const long = 'a'.repeat(40);
    const names = ['bob', '-7eabc', long, `${long}b`, 'a'.repeat(29), 'a'.repeat(30)].map(accountNameOf);
    for (const n of names) {
      assert.ok(n.length <= 32, n);
      assert.match(n, /^[a-z][-a-z0-9_]*$/);
    }
    assert.equal(new Set(names).size, names.length);
    assert.equal(accountNameOf('a'.repeat(29)), `oh-${'a'.repeat(29)}`);
  });

  it('a public hub told not to isolate (localIsolation=none) does not start while "Try it" is on', async () => {
    await assert.rejects(startTestHub('local-isolation-refused', { localIsolation: 'none', publicUrl: 'https://hub.example.edu', tryMaxServers: 5 }), (err) => {
      assert.ok(err instanceof StartupError, String(err));
      assert.match(err.message, /tryMaxServers=0/);
      return true;
    });
    // The check runs before any part starts, from config alone.
    assert.ok(loadConfig({ overrides: { localIsolation: 'none' } }).localIsolation === 'none');
  });

  it('a public hub without isolation starts servers for admins only; a student is told why', async () => {
    const hub = await startTestHub('local-isolation-admins', { localIsolation: 'none', publicUrl: 'https://hub.example.edu', tryMaxServers: 0 });
    try {
      await createUsers(hub, { carol: 'carol-password' });
      const carol = new HubClient(hub.url);
      assert.equal((await carol.login('carol', 'carol-password')).status, 303);
      await carol.get('/hub/spawn');
      await assert.rejects(waitForReady(carol, 'carol'), /administrators only/);
      const admin = await signInAndStart(hub, 'admin', ADMIN_PASSWORD);
      const lab = await admin.get('/user/admin/api/status');
      assert.equal(lab.status, 200);
    } finally {
      await hub.close();
    }
  });
});
