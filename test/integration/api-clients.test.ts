import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { ADMIN_PASSWORD, createUsers, startTestHub } from '../helpers/hub.js';
import { eventually } from '../helpers/hub-process.js';
import { pyTools, type PyTools } from '../helpers/py-tools.js';

// What jupyterhub-idle-culler's README says it needs (and nothing more).
const CULLER_SCOPES = ['list:users', 'read:users:activity', 'read:servers', 'delete:servers'];

interface Json {
  status: number;
  body: unknown;
}

describe('JupyterHub\'s own clients drive oerhub: jupyterhub-idle-culler, requests, @jupyterlab/services', function () {
  this.timeout(240_000);
  let hub: Hub;
  let tools: PyTools;
  let adminToken: string;
  const children: ChildProcess[] = [];

  async function api(token: string, method: string, pathname: string, body?: unknown): Promise<Json> {
    const r = await new HubClient(hub.url).request(method, pathname, {
      headers: { authorization: `token ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, body: r.body ? (JSON.parse(r.body) as unknown) : null };
  }

  async function startAndWait(name: string): Promise<void> {
    const r = await api(adminToken, 'POST', `/hub/api/users/${name}/server`);
    assert.ok(r.status === 201 || r.status === 202, JSON.stringify(r));
    await eventually(`${name}'s server is ready`, async () => {
      const m = (await api(adminToken, 'GET', `/hub/api/users/${name}`)).body as { servers: Record<string, { ready: boolean }> };
      return m.servers['']?.ready === true;
    }, 90_000, 250);
  }

  function run(cmd: string, args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
    let out = '';
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => out, exited };
  }

  before(async function () {
    this.timeout(400_000);
    tools = pyTools();
    hub = await startTestHub('api-clients', { apiServices: [{ name: 'idle-culler', scopes: CULLER_SCOPES }] });
    await createUsers(hub, { apicull: 'apicull-password', apibusy: 'apibusy-password', apipy: 'apipy-password', apilab: 'apilab-password' });
    // The admin's token, made through the API with the admin's session, as a person would on /hub/token.
    const admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const csrf = (JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
    const r = await admin.request('POST', '/hub/api/users/admin/tokens', { headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' }, body: JSON.stringify({ note: 'tests' }) });
    assert.equal(r.status, 201, r.body);
    adminToken = (JSON.parse(r.body) as { token: string }).token;
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await hub?.close();
  });

  it('jupyterhub-idle-culler, unchanged from PyPI, stops an idle server and leaves a busy one, with a token of just its scopes', async () => {
    await Promise.all([startAndWait('apicull'), startAndWait('apibusy')]);
    // The service's token, as an admin makes it; it has the culler's four scopes and nothing more.
    const made = await api(adminToken, 'POST', '/hub/api/services/idle-culler/tokens', { note: 'idle culler' });
    assert.equal(made.status, 201, JSON.stringify(made));
    const cullerToken = (made.body as { token: string; scopes: string[] }).token;
    const me = (await api(cullerToken, 'GET', '/hub/api/user')).body as { kind: string; name: string; scopes: string[] };
    assert.equal(me.kind, 'service');
    assert.deepEqual(me.scopes, [...CULLER_SCOPES, 'read:users:name'].sort());

    // apibusy reports activity every half second (as a server extension would); apicull says nothing.
    let busy = true;
    const keepBusy = (async () => {
      while (busy) {
        const now = new Date().toISOString();
        const r = await api(adminToken, 'POST', '/hub/api/users/apibusy/activity', { last_activity: now, servers: { '': { last_activity: now } } });
        assert.equal(r.status, 200, JSON.stringify(r));
        await new Promise((res) => setTimeout(res, 500));
      }
    })();
    const culler = run(tools.idleCuller, [`--url=${hub.url}/hub/api`, '--timeout=6', '--cull-every=2', '--concurrency=2', '--api-page-size=1', '--IdleCuller.log_level=DEBUG'], { JUPYTERHUB_API_TOKEN: cullerToken });
    try {
      const cullUser = await hub.users.get('apicull');
      await eventually('the culler stops apicull\'s idle server', async () => (await hub.manager.status(cullUser!)) === 'stopped', 60_000, 250);
      assert.match(culler.output(), /Culling server apicull/);
      // One user per page: it followed JupyterHub's pagination links to see both servers.
      assert.match(culler.output(), /Fetching page 2/);
      // Two more rounds of the culler: the busy server stays.
      const rounds = (culler.output().match(/Got \d+ users/g) ?? []).length;
      await eventually('two more culler rounds', () => (culler.output().match(/Got \d+ users/g) ?? []).length >= rounds + 2 || /Culling server apibusy/.test(culler.output()), 30_000, 250);
      assert.doesNotMatch(culler.output(), /Culling server apibusy/);
      assert.equal(await hub.manager.status((await hub.users.get('apibusy'))!), 'running');
      assert.doesNotMatch(culler.output(), /Traceback|Error processing|HTTP 4\d\d|HTTP 5\d\d/, culler.output());
      assert.equal(culler.child.exitCode, null, 'the culler keeps running');
    } finally {
      busy = false;
      await keepBusy;
      culler.child.kill('SIGTERM');
      await culler.exited;
    }

    // The same token, for what its scopes don't allow: 403, and nothing happens.
    const create = await api(cullerToken, 'POST', '/hub/api/users', { name: 'apisneaky', password: 'apisneaky-password' });
    assert.equal(create.status, 403, JSON.stringify(create));
    assert.equal(await hub.users.get('apisneaky'), null);
    assert.equal((await api(cullerToken, 'POST', '/hub/api/users/apicull/server')).status, 403);
    assert.equal((await api(cullerToken, 'POST', '/hub/api/services/idle-culler/tokens', {})).status, 403);
    // Nor may it use a server through the proxy (no access:servers).
    const proxied = await new HubClient(hub.url).get('/user/apibusy/api/status', { authorization: `token ${cullerToken}`, accept: 'application/json' });
    assert.equal(proxied.status, 403, proxied.body);
    assert.equal(await hub.manager.status((await hub.users.get('apibusy'))!), 'running');
  });

  it('a plain requests script lists users, starts a server, waits for it to be ready and stops it, as JupyterHub\'s docs show', async () => {
    const made = await api(adminToken, 'POST', '/hub/api/users/apipy/tokens', { note: 'requests script', expires_in: 600 });
    assert.equal(made.status, 201);
    const token = (made.body as { token: string }).token;
    const script = run(tools.python, [path.resolve(__dirname, '../py-tools/drive_api.py'), `${hub.url}/hub/api`, 'apipy'], { JUPYTERHUB_API_TOKEN: token });
    const code = await script.exited;
    assert.equal(code, 0, script.output());
    const steps = script.output().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const at = (name: string): Record<string, unknown> => steps.find((s) => s.step === name) ?? assert.fail(`no step ${name} in ${script.output()}`);
    // A student's own token sees only themselves in the listing.
    assert.deepEqual(at('users').names, ['apipy']);
    assert.ok([201, 202].includes(at('start').status as number));
    assert.equal(at('ready').url, '/user/apipy/');
    assert.equal(at('ready').server, '/user/apipy/');
    assert.deepEqual(at('ready-users').names, ['apipy']);
    assert.equal(at('stop').status, 204);
    assert.equal(at('after').server, null);
    assert.deepEqual(at('after').servers, {});
    assert.equal(await hub.manager.status((await hub.users.get('apipy'))!), 'stopped');
  });

  it('@jupyterlab/services drives a user\'s server through the hub with an access:servers token; the server never sees the hub token', async () => {
    await startAndWait('apilab');
    // As JupyterHub: a second start of a running server is a 400, not a restart.
    const again = await api(adminToken, 'POST', '/hub/api/users/apilab/server');
    assert.equal(again.status, 400, JSON.stringify(again));
    assert.match((again.body as { message: string }).message, /already running/);
    const made = await api(adminToken, 'POST', '/hub/api/users/apilab/tokens', { note: 'jupyterlab services', scopes: ['access:servers!user=apilab'] });
    assert.equal(made.status, 201, JSON.stringify(made));
    const token = (made.body as { token: string }).token;
    const { ServerConnection, ContentsManager, KernelSpecAPI, KernelManager } = await import('@jupyterlab/services');
    const settings = ServerConnection.makeSettings({ baseUrl: `${hub.url}/user/apilab/`, token });
    const specs = await KernelSpecAPI.getSpecs(settings);
    assert.ok(Object.keys(specs.kernelspecs).length > 0);
    const contents = new ContentsManager({ serverSettings: settings });
    await contents.save('from-services.txt', { type: 'file', format: 'text', content: 'written through the hub with a token' });
    const back = await contents.get('from-services.txt', { content: true });
    assert.equal(back.content, 'written through the hub with a token');
    // A kernel over the proxied WebSocket (services put the token in the WebSocket URL).
    const wsSettings = ServerConnection.makeSettings({ baseUrl: `${hub.url}/user/apilab/`, token, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
    const kernels = new KernelManager({ serverSettings: wsSettings });
    try {
      const kernel = await kernels.startNew({ name: 'python3' });
      let out = '';
      const future = kernel.requestExecute({ code: 'print(6*7)' });
      future.onIOPub = (msg) => {
        if (msg.header.msg_type === 'stream') out += (msg.content as { text: string }).text;
      };
      await future.done;
      assert.equal(out, '42\n');
      await kernel.shutdown();
    } finally {
      kernels.dispose();
    }
    // The hub token is not what reaches Jupyter: Jupyter itself refuses it when asked directly.
    const route = hub.routes.get('apilab');
    assert.ok(route);
    const direct = await fetch(`${route.target.origin}/user/apilab/api/contents/from-services.txt`, { headers: { authorization: `token ${token}` } });
    assert.equal(direct.status, 403);
    // A token for another user's server (or without access:servers) gets 403 on this one.
    const other = await api(adminToken, 'POST', '/hub/api/users/admin/tokens', { scopes: ['access:servers!user=apibusy'] });
    const otherSettings = ServerConnection.makeSettings({ baseUrl: `${hub.url}/user/apilab/`, token: (other.body as { token: string }).token });
    await assert.rejects(KernelSpecAPI.getSpecs(otherSettings), (err: Error & { response?: Response }) => err.response?.status === 403);
    const revoked = await api(adminToken, 'GET', '/hub/api/users/apilab/tokens');
    const id = (revoked.body as { api_tokens: { id: string }[] }).api_tokens[0].id;
    assert.equal((await api(adminToken, 'DELETE', `/hub/api/users/apilab/tokens/${id}`)).status, 204);
    await assert.rejects(KernelSpecAPI.getSpecs(settings), (err: Error & { response?: Response }) => err.response?.status === 403);
  });
});
