import assert from 'node:assert/strict';
import os from 'node:os';
import { runOerhub } from '../helpers/cli.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, removeServerAccounts, tempDataDir } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { hubEnv, reapDataDir, startHubProcess, stopHubProcess, type HubProcess } from '../helpers/hub-process.js';

/*
 * `oerhub token` as an operator uses it on a machine without a browser: a token for an account
 * or a service, printed once; the hub program (SQLite, stopped while the command runs) then
 * takes it, within its scopes and no further.
 */
describe('oerhub token (the hub program, SQLite)', function () {
  this.timeout(300_000);
  let hub: HubProcess | undefined;
  const dataDir = tempDataDir('cli-token');

  after(async () => {
    if (hub) await stopHubProcess(hub, 'SIGKILL');
    removeServerAccounts(dataDir);
    reapDataDir(dataDir);
  });

  it('makes a scoped token for an account and one for a service; each works within its scopes only, and refuses what it cannot make', async () => {
    const port = await freePort();
    const env = { ...hubEnv(port, dataDir), OERHUB_API_SERVICES: JSON.stringify([{ name: 'scraper', scopes: ['read:metrics'] }]) };
    assert.equal((await runOerhub(['users', 'create', 'clitok', '--roles', 'student'], env)).code, 0);

    const mine = await runOerhub(['token', 'clitok', '--scopes', 'read:users:name!user=clitok', '--note', 'a script'], env);
    assert.equal(mine.code, 0, mine.stderr);
    const userToken = mine.stdout.trim();
    assert.match(userToken, /^oh_\S+$/);
    assert.match(mine.stderr, /shown once/);
    const service = await runOerhub(['token', '--service', 'scraper'], env);
    assert.equal(service.code, 0, service.stderr);
    const serviceToken = service.stdout.trim();
    // A student's token can't be given an admin's power; a service that isn't configured has none.
    const beyond = await runOerhub(['token', 'clitok', '--scopes', 'admin:users'], env);
    assert.equal(beyond.code, 1);
    assert.match(beyond.stderr, /does not have them/);
    const ghost = await runOerhub(['token', '--service', 'ghost'], env);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /no service named ghost/);
    assert.equal((await runOerhub(['token'], env)).code, 2);
    const roles = await runOerhub(['users', 'modify', 'clitok', '--add-role', 'instructor'], env);
    assert.equal(roles.code, 0, roles.stderr);

    hub = await startHubProcess('cli-token-hub', env);
    const url = `http://127.0.0.1:${port}`;
    const get = (path: string, token: string) => fetch(url + path, { headers: { authorization: `token ${token}` } });
    const self = await get('/hub/api/users/clitok', userToken);
    assert.equal(self.status, 200);
    assert.equal(((await self.json()) as { name: string }).name, 'clitok');
    assert.equal((await get('/hub/api/users', userToken)).status, 403, 'listing users is beyond the token');
    assert.equal((await get('/hub/metrics', userToken)).status, 403);
    const metrics = await get('/hub/metrics', serviceToken);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# HELP oerhub_/m);
    assert.equal((await get('/hub/api/users/clitok', serviceToken)).status, 403, 'the scraper reads metrics only');

    // What the operator did from the shell (the hub stopped, as SQLite needs) is in the hub's audit log.
    const admin = new HubClient(url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const csv = await admin.get('/hub/admin/audit.csv');
    assert.equal(csv.status, 200);
    const rows = csv.body.split('\r\n').slice(1).filter(Boolean);
    const actor = `cli:${os.userInfo().username}`;
    // CSV: time,actor,action,target,address,details (a JSON object, its quotes doubled). A service token inherits its configured scopes.
    const has = (action: string, target: string, detail: RegExp): boolean => rows.some((r) => r.includes(`,${actor},${action},${target},`) && detail.test(r));
    assert.ok(has('user.create', 'clitok', /""roles"":""student""/), csv.body);
    assert.ok(has('token.create', 'clitok', /""scopes"":""read:users:name!user=clitok""/), csv.body);
    assert.ok(has('token.create', 'service:scraper', /""scopes"":""inherit""/), csv.body);
    assert.ok(has('user.roles', 'clitok', /""before"":""student"",""after"":""student instructor""/), csv.body);
    assert.ok(!rows.some((r) => r.includes('oh_')), 'no token itself in the log');
    assert.equal(await stopHubProcess(hub, 'SIGTERM'), 0);
    hub = undefined;
  });
});
