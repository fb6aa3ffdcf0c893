import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { KernelSocket } from '../helpers/kernel.js';
import { ADMIN_PASSWORD, createUsers, removeServerAccounts, startTestHub, tempDataDir } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/try.js';

const USER = 'fx2tok';

/** Resolves true once the socket closed, false if it is still open after `ms` (a bound, so a miss fails instead of hanging; not a speed check). */
function closesWithin(socket: KernelSocket, ms: number): Promise<boolean> {
  return Promise.race([socket.closed.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), ms).unref())]);
}

describe('kernel WebSockets opened with an API token end with the token, on every hub process', function () {
  this.timeout(180_000);
  let redis: TestRedis;
  let dataDir: string;
  let a: Hub | undefined;
  let b: Hub | undefined;
  let adminToken: string;
  const open: KernelSocket[] = [];

  async function api(hub: Hub, token: string, method: string, pathname: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await new HubClient(hub.url).request(method, pathname, {
      headers: { authorization: `token ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, json: r.body ? (JSON.parse(r.body) as Record<string, unknown>) : {} };
  }

  /** A token of the user's for their own server only, made by the admin on hub A. */
  async function serverToken(extra: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
    const r = await api(a!, adminToken, 'POST', `/hub/api/users/${USER}/tokens`, { scopes: [`access:servers!user=${USER}`], note: 'kernel script', ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return r.json as { id: string; token: string };
  }

  /** A kernel started with the token (plain HTTP through the proxy, no cookie, no XSRF). */
  async function startKernelWith(hub: Hub, token: string): Promise<string> {
    const r = await api(hub, token, 'POST', `/user/${USER}/api/kernels`, { name: 'python3' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return r.json.id as string;
  }

  /** The kernel's channels as @jupyterlab/services opens them: the token in the URL. */
  async function kernelSocket(hub: Hub, kernelId: string, token: string): Promise<KernelSocket> {
    const s = await KernelSocket.openUrl(`${hub.url.replace(/^http/, 'ws')}/user/${USER}/api/kernels/${kernelId}/channels?token=${encodeURIComponent(token)}`);
    open.push(s);
    return s;
  }

  before(async () => {
    redis = await startRedis();
    dataDir = tempDataDir('fx2-token-ws');
    const shared = { store: 'redis', redisUrl: redis.url, redisKeyPrefix: 'fx2-token-ws:', dataDir, poolSize: 0 };
    a = await startTestHub('token-ws-a', { ...shared, stopServersOnExit: false });
    // B trusts a checked token for a minute: only the revocation sent through Redis can end it sooner.
    b = await startTestHub('token-ws-b', { ...shared, apiTokenCacheMs: 60_000 });
    await createUsers(a, { [USER]: 'fx2tok-password' });
    const admin = new HubClient(a.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const csrf = (JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string }).csrf_token;
    const made = await admin.request('POST', '/hub/api/users/admin/tokens', { headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' }, body: JSON.stringify({ note: 'tests' }) });
    assert.equal(made.status, 201, made.body);
    adminToken = (JSON.parse(made.body) as { token: string }).token;
    const start = await api(a, adminToken, 'POST', `/hub/api/users/${USER}/server`);
    assert.ok(start.status === 201 || start.status === 202, JSON.stringify(start.json));
    await waitFor(`${USER}'s server is ready`, async () => (await api(a!, adminToken, 'GET', `/hub/api/users/${USER}`)).json, (m) => (m.servers as Record<string, { ready: boolean }>)['']?.ready === true, 90_000, 250);
  });

  after(async () => {
    for (const s of open) s.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
    removeServerAccounts(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('revoking the token (DELETE …/tokens/ID on one hub) closes its kernel sockets on both, and a new one is refused', async () => {
    const { id, token } = await serverToken();
    const kernelId = await startKernelWith(b!, token);
    const viaB = await kernelSocket(b!, kernelId, token);
    const viaA = await kernelSocket(a!, kernelId, token);
    assert.equal(await viaB.execute('print(6*7)'), '42\n');
    assert.equal(await viaA.execute('print(7*8)'), '56\n');

    assert.equal((await api(a!, adminToken, 'DELETE', `/hub/api/users/${USER}/tokens/${id}`)).status, 204);
    assert.ok(await closesWithin(viaA, 15_000), 'the socket through A (where it was revoked) closed');
    assert.ok(await closesWithin(viaB, 15_000), 'the socket through B (which had the token cached) closed');
    for (const hub of [a!, b!]) {
      await assert.rejects(kernelSocket(hub, kernelId, token), /upgrade refused: 403/, `a new socket on ${hub.url}`);
      assert.equal((await api(hub, token, 'GET', `/user/${USER}/api/kernels`)).status, 403);
    }
    // Another token of the same user is untouched by it.
    const other = await serverToken();
    const still = await kernelSocket(b!, kernelId, other.token);
    assert.equal(await still.execute('print(1+1)'), '2\n');
    still.close();
  });

  it('an expiring token\'s kernel socket closes when the token expires, and it opens no new one', async () => {
    const { token } = await serverToken({ expires_in: 4 });
    const kernelId = await startKernelWith(b!, token);
    const socket = await kernelSocket(b!, kernelId, token);
    assert.equal(await socket.execute('print(3*3)'), '9\n');
    assert.ok(await closesWithin(socket, 20_000), 'the socket closed once the token expired');
    await assert.rejects(kernelSocket(b!, kernelId, token), /upgrade refused: 403/);
  });

  it('disabling the account stops its tokens at once on both hubs (the one that cached it too), and enabling it brings them back', async () => {
    const { token } = await serverToken({ scopes: [`access:servers!user=${USER}`, `read:users!user=${USER}`] });
    const kernelId = await startKernelWith(b!, token);
    const socket = await kernelSocket(b!, kernelId, token);
    assert.equal(await socket.execute('print(2*5)'), '10\n');
    for (const hub of [a!, b!]) assert.equal((await api(hub, token, 'GET', '/hub/api/user')).status, 200, `the token works on ${hub.url} before`);

    const admin = new HubClient(a!.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    const userPage = await admin.get(`/hub/admin/users/${USER}`);
    const disable = await admin.request('POST', `/hub/admin/users/${USER}/disable`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: HubClient.csrfFrom(userPage.body) }).toString(),
    });
    assert.equal(disable.status, 303);
    assert.ok(await closesWithin(socket, 15_000), 'the token\'s kernel socket closed');
    for (const hub of [a!, b!]) {
      assert.equal((await api(hub, token, 'GET', '/hub/api/user')).status, 403, `the token is dead on ${hub.url}, B's minute-long cache included`);
      await assert.rejects(kernelSocket(hub, kernelId, token), /upgrade refused: 403/);
    }
    const refused = await api(a!, adminToken, 'POST', `/hub/api/users/${USER}/tokens`, { note: 'while disabled' });
    assert.equal(refused.status, 409, JSON.stringify(refused.json));
    assert.match(String(refused.json.message), /disabled/);

    const enablePage = await admin.get(`/hub/admin/users/${USER}`);
    const enable = await admin.request('POST', `/hub/admin/users/${USER}/enable`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: HubClient.csrfFrom(enablePage.body) }).toString(),
    });
    assert.equal(enable.status, 303);
    for (const hub of [a!, b!]) assert.equal((await api(hub, token, 'GET', '/hub/api/user')).status, 200, `the same token works again on ${hub.url}`);
    // And through B's proxy, whose cache held the refusal: the server (stopped by the disable) is started again.
    const start = await api(a!, adminToken, 'POST', `/hub/api/users/${USER}/server`);
    assert.ok(start.status === 201 || start.status === 202, JSON.stringify(start.json));
    await waitFor(`${USER}'s server is ready again`, async () => (await api(a!, adminToken, 'GET', `/hub/api/users/${USER}`)).json, (m) => (m.servers as Record<string, { ready: boolean }>)['']?.ready === true, 90_000, 250);
    assert.equal((await api(b!, token, 'GET', `/user/${USER}/api/kernels`)).status, 200);
  });
});
