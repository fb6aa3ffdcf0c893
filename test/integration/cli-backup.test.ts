import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HubClient } from '../helpers/client.js';
import { runOerhub } from '../helpers/cli.js';
import Redis from 'ioredis';
import { removeServerAccounts, startTestHub, tempDataDir, waitForReady } from '../helpers/hub.js';
import { startRedis } from '../helpers/redis.js';
import { freePort } from '../helpers/ports.js';
import { hubEnv, isAlive, jupyterPids, reapDataDir, serverPid, startHubProcess, stopHubProcess, type HubProcess } from '../helpers/hub-process.js';

/*
 * `oerhub users`, `oerhub backup` and `oerhub restore` as an operator uses them, against the
 * real hub program on its default store (SQLite) and local spawner: accounts made from the
 * command line sign in; a backup taken of a hub with a user, a session and a running server,
 * restored after the hub's state is wiped, brings all three back.
 */

describe('oerhub users, backup and restore (SQLite, the hub program, a real Jupyter)', function () {
  this.timeout(600_000);
  const running: HubProcess[] = [];
  const cleanup: string[] = [];

  after(async () => {
    for (const h of [...running]) await stopHubProcess(h, 'SIGKILL');
    for (const dir of cleanup) {
      removeServerAccounts(dir);
      reapDataDir(dir);
    }
  });

  async function startHub(label: string, env: Record<string, string>): Promise<HubProcess> {
    const hub = await startHubProcess(label, env);
    running.push(hub);
    return hub;
  }

  async function stopHub(hub: HubProcess): Promise<void> {
    running.splice(running.indexOf(hub), 1);
    assert.equal(await stopHubProcess(hub, 'SIGTERM'), 0);
  }

  it('users made and changed with the command sign in; while the hub runs on SQLite the command refuses and says what to do', async () => {
    const dataDir = tempDataDir('cli-users');
    cleanup.push(dataDir);
    const port = await freePort();
    const env = hubEnv(port, dataDir);

    const made = await runOerhub(['users', 'create', 'cliute', '--roles', 'instructor', '--password-stdin'], env, 'cliute-password\n');
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /created cliute \(roles: instructor\)/);
    assert.doesNotMatch(made.stdout, /cliute-password/, 'a password from stdin is never echoed');
    const generated = await runOerhub(['users', 'create', 'cligen'], env);
    assert.equal(generated.code, 0, generated.stderr);
    const genPassword = /password: (\S+)/.exec(generated.stdout)?.[1];
    assert.ok(genPassword && genPassword.length >= 16, generated.stdout);
    const taken = await runOerhub(['users', 'create', 'CLIUTE'], env);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already exists/);
    const badRole = await runOerhub(['users', 'create', 'clix', '--roles', 'root'], env);
    assert.equal(badRole.code, 1);
    assert.match(badRole.stderr, /unknown role "root"/);
    const short = await runOerhub(['users', 'create', 'clix', '--password-stdin'], env, 'short\n');
    assert.equal(short.code, 1);
    assert.match(short.stderr, /at least 8 characters/);
    const modified = await runOerhub(['users', 'modify', 'cligen', '--add-role', 'admin'], env);
    assert.equal(modified.code, 0, modified.stderr);
    assert.match(modified.stdout, /cligen: roles now admin, student/);
    const list = await runOerhub(['users', 'list', '--json'], env);
    const rows = JSON.parse(list.stdout) as { name: string; roles: string[]; source: string }[];
    assert.deepEqual(rows.map((r) => [r.name, r.roles.sort().join(',')]), [['cligen', 'admin,student'], ['cliute', 'instructor']]);

    const hub = await startHub('cli-users-hub', env);
    const url = `http://127.0.0.1:${port}`;
    const ute = new HubClient(url);
    assert.equal((await ute.login('cliute', 'cliute-password')).status, 303);
    const me = JSON.parse((await ute.get('/hub/api/user', { accept: 'application/json' })).body) as { roles: string[] };
    assert.deepEqual(me.roles, ['instructor']);
    const gen = new HubClient(url);
    assert.equal((await gen.login('cligen', genPassword)).status, 303);
    assert.equal((await gen.get('/hub/admin')).status, 200, 'the role granted from the command line opens the admin page');

    // The running hub holds the SQLite file: the command says so, and how to go on.
    const refused = await runOerhub(['users', 'create', 'clilate'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use by another oerhub process \(process \d+/);
    assert.match(refused.stderr, /stop the hub first/);
    assert.match(refused.stderr, /\/hub\/admin or the REST API/);
    const backupWhileRunning = await runOerhub(['backup', path.join(os.tmpdir(), `oerhub-cli-never-${process.pid}`)], env);
    assert.equal(backupWhileRunning.code, 1);
    assert.match(backupWhileRunning.stderr, /held by a running hub/);
    assert.equal(fs.existsSync(path.join(os.tmpdir(), `oerhub-cli-never-${process.pid}`)), false, 'a refused backup leaves no folder');
    await stopHub(hub);
  });

  it('back up a hub with a user, a session and a running server, wipe its state, restore: the session still works, the user signs in, the same server is adopted', async () => {
    const dataDir = tempDataDir('cli-restore');
    const backupDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-cli-backup-')), 'b');
    cleanup.push(dataDir, path.dirname(backupDir));
    const port = await freePort();
    const env = hubEnv(port, dataDir);
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await runOerhub(['users', 'create', 'clirose', '--password-stdin'], env, 'clirose-password\n')).code, 0);

    const first = await startHub('cli-restore-1', env);
    const browser = new HubClient(url);
    assert.equal((await browser.login('clirose', 'clirose-password')).status, 303);
    await browser.get('/hub/spawn');
    await waitForReady(browser, 'clirose');
    assert.equal((await browser.openServer('/lab')).handoff?.status, 302);
    const pid = serverPid(dataDir, 'clirose');
    await stopHub(first);
    assert.ok(isAlive(pid), 'the server keeps running while the hub is stopped');

    const saved = await runOerhub(['backup', backupDir], env);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /copied with SQLite's online backup/);
    assert.match(saved.stdout, new RegExp(`folder ${path.join(dataDir, 'homes')}: students' homes`));
    assert.match(saved.stdout, /Docker volume|image oerhub\/python:latest/);
    assert.equal(fs.statSync(backupDir).mode & 0o777, 0o700);
    assert.ok(fs.existsSync(path.join(backupDir, 'datadir', 'cookie-secret')));

    // Wipe everything the hub keeps, except the homes (the operator's own backup covers those).
    for (const entry of fs.readdirSync(dataDir)) if (entry !== 'homes') fs.rmSync(path.join(dataDir, entry), { recursive: true, force: true });
    assert.deepEqual(fs.readdirSync(dataDir), ['homes']);

    const restored = await runOerhub(['restore', backupDir], env);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /store: .*oerhub\.sqlite restored/);
    assert.match(restored.stdout, /Not in this backup/);

    const second = await startHub('cli-restore-2', env);
    assert.doesNotMatch(second.output(), /First admin account/, 'the accounts came back, the admin too');
    // The browser's session from before the backup still counts (store and cookie secret are back).
    const home = await browser.get('/hub/home');
    assert.equal(home.status, 200);
    assert.match(home.body, /clirose/);
    // The same Jupyter process, adopted, not restarted, and reachable through the new hub.
    assert.equal(serverPid(dataDir, 'clirose'), pid);
    assert.deepEqual(jupyterPids(dataDir, 'clirose'), [pid]);
    const status = await browser.get('/user/clirose/api/status', { accept: 'application/json' });
    assert.equal(status.status, 200, status.body);
    // And a fresh sign-in (another browser) works and finds the server running.
    const other = new HubClient(url);
    assert.equal((await other.login('clirose', 'clirose-password')).status, 303);
    const api = JSON.parse((await other.get('/hub/api/user', { accept: 'application/json' })).body) as { server: unknown };
    assert.ok(api.server, `the server is running: ${JSON.stringify(api)}`);
    assert.equal((await other.openServer('/lab')).handoff?.status, 302);
    await stopHub(second);
  });
});

describe('oerhub backup and restore with store=redis (a real Redis with a password)', function () {
  this.timeout(300_000);

  it("copies the hub's keys with Redis' own DUMP, leaves other prefixes alone, and a restore after they are deleted brings the account and its sign-in back", async () => {
    const redis = await startRedis();
    const dataDir = tempDataDir('cli-redis');
    const backupDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-cli-rbackup-')), 'b');
    const client = new Redis(redis.url);
    const prefix = `cli-${process.pid}:`;
    const env = { OERHUB_STORE: 'redis', OERHUB_REDIS_URL: redis.url, OERHUB_REDIS_KEY_PREFIX: prefix, OERHUB_COOKIE_SECRET: 'cookie-secret-for-cli-redis-0123456789', OERHUB_DATA_DIR: dataDir };
    try {
      assert.equal((await runOerhub(['users', 'create', 'cliredis', '--roles', 'instructor', '--password-stdin'], env, 'cliredis-password\n')).code, 0);
      await client.set('someone-else:key', 'theirs');
      const saved = await runOerhub(['backup', backupDir], env);
      assert.equal(saved.code, 0, saved.stderr);
      const copied = Number(/store: (\d+) Redis keys/.exec(saved.stdout)?.[1]);
      assert.ok(copied >= 3, saved.stdout);
      assert.doesNotMatch(fs.readFileSync(path.join(backupDir, 'redis-keys.ndjson'), 'utf8'), /someone-else/);

      const ours = await client.keys(`${prefix}*`);
      assert.equal(ours.length, copied);
      await client.del(...ours);
      assert.equal((await runOerhub(['users', 'list', '--json'], env)).stdout.trim(), '[]');

      const restored = await runOerhub(['restore', backupDir], env);
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stdout, new RegExp(`store: ${copied} Redis keys restored`));
      assert.equal(await client.get('someone-else:key'), 'theirs', 'keys under other prefixes are untouched');
        const hub = await startTestHub('cli-redis-hub', { store: 'redis', redisUrl: redis.url, redisKeyPrefix: prefix, cookieSecret: env.OERHUB_COOKIE_SECRET });
      try {
        const browser = new HubClient(hub.url);
        assert.equal((await browser.login('cliredis', 'cliredis-password')).status, 303);
        const me = JSON.parse((await browser.get('/hub/api/user', { accept: 'application/json' })).body) as { roles: string[] };
        assert.deepEqual(me.roles, ['instructor']);
      } finally {
        await hub.close();
      }
    } finally {
      client.disconnect();
      await redis.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(path.dirname(backupDir), { recursive: true, force: true });
    }
  });
});
