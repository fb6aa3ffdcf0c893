import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type ConfigKey } from '../../server/config/index.js';
import { createHub, type Hub } from '../../server/index.js';
import { notebookVenv } from './venv.js';
import { HubClient } from './client.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';
/** The cookie secret of test hubs on Redis (config requires one with store=redis). */
export const TEST_COOKIE_SECRET = 'cookie-secret-for-tests-0123456789abcdef';
const OUTPUT = path.resolve(__dirname, '../../test-output');

/** A fresh data folder for one test hub. */
export function tempDataDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `oerhub-${label}-`));
}

/**
 * A real hub on an ephemeral port, with the real proxy and local-process spawner. Logs go to
 * test-output/<label>.log so a failing test can be read afterwards.
 */
export async function startTestHub(label: string, overrides: Partial<Record<ConfigKey, unknown>> = {}): Promise<Hub> {
  fs.mkdirSync(OUTPUT, { recursive: true });
  const ownDataDir = overrides.dataDir === undefined ? tempDataDir(label) : undefined;
  const config = loadConfig({
    overrides: {
      port: 0,
      dataDir: ownDataDir,
      notebookVenv: notebookVenv(),
      adminPassword: ADMIN_PASSWORD,
      logLevel: 'debug',
      stopServersOnExit: true,
      // No warm pool unless a test asks for one: it would start servers nobody uses.
      poolSize: 0,
      // The executed samples are shared by every test hub (keyed by their content): run once per machine.
      trySamplesCacheDir: path.join(OUTPUT, 'samples-cache'),
      // store=redis requires a configured secret (the same on every hub sharing the Redis), as in production.
      ...(overrides.store === 'redis' ? { cookieSecret: TEST_COOKIE_SECRET } : {}),
      ...overrides,
    },
  });
  const log = pino({ level: config.logLevel }, pino.destination({ dest: path.join(OUTPUT, `${label}.log`), sync: true, append: true }));
  let hub: Hub;
  try {
    hub = await createHub(config, { log });
  } catch (err) {
    if (ownDataDir) fs.rmSync(ownDataDir, { recursive: true, force: true });
    throw err;
  }
  if (!ownDataDir) return hub;
  // Leave nothing behind: the data folder goes with the hub (after its servers are stopped).
  return Object.assign(Object.create(Object.getPrototypeOf(hub) as object) as Hub, hub, {
    close: async () => {
      await hub.close();
      removeServerAccounts(ownDataDir);
      fs.rmSync(ownDataDir, { recursive: true, force: true });
    },
  });
}

/**
 * Remove the Unix accounts a root hub made for its servers (dataDir/accounts), so test users
 * don't pile up in /etc/passwd across runs. A hub that stops its servers on exit has let go of
 * them; one that is still in use (a process left running) is kept by userdel, which is fine.
 */
export function removeServerAccounts(dataDir: string): void {
  let files: string[];
  try {
    files = fs.readdirSync(path.join(dataDir, 'accounts'));
  } catch {
    return;
  }
  for (const file of files) {
    try {
      const { name } = JSON.parse(fs.readFileSync(path.join(dataDir, 'accounts', file), 'utf8')) as { name?: unknown };
      if (typeof name === 'string' && /^oh[-_][a-z0-9_-]+$/.test(name)) spawnSync('userdel', [name], { stdio: 'ignore' });
    } catch {
      // Not an account record: nothing to remove.
    }
  }
}

/** Create local users through the admin API, as an admin would. */
export async function createUsers(hub: Hub, users: Record<string, string>): Promise<void> {
  const admin = new HubClient(hub.url);
  const res = await admin.login('admin', ADMIN_PASSWORD);
  if (res.status !== 303) throw new Error(`admin login answered ${res.status}`);
  const me = JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
  for (const [name, password] of Object.entries(users)) {
    const r = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token, accept: 'application/json' },
      body: JSON.stringify({ name, password }),
    });
    if (r.status !== 201) throw new Error(`creating ${name} answered ${r.status}: ${r.body}`);
  }
}

/** A browser-like client for this hub: user servers on their own origins, or on the hub's in single-origin mode. */
export function clientFor(hub: Hub): HubClient {
  return new HubClient(hub.url, hub.config.originMode === 'single' ? { contentOrigin: () => hub.url } : {});
}

/** Sign in and start the user's server through the pages; resolves when it is routed. */
export async function signInAndStart(hub: Hub, name: string, password: string): Promise<HubClient> {
  const client = clientFor(hub);
  const login = await client.login(name, password);
  if (login.status !== 303) throw new Error(`login of ${name} answered ${login.status}`);
  const user = await hub.users.get(name);
  if (!user) throw new Error(`no user ${name}`);
  await client.get('/hub/spawn');
  await waitForReady(client, user.escapedName);
  // user-redirect hands the sign-in over to the server's own origin once it runs; that origin sets its cookie.
  const { hub: r, handoff } = await client.openServer('/lab');
  // In single-origin mode the hub sets the cookie itself and redirects straight to the server.
  const landed = hub.config.originMode === 'single' ? r.location : handoff?.location;
  if (landed !== `/user/${user.escapedName}/lab`) throw new Error(`user-redirect answered ${r.status} ${r.location}, then ${handoff?.status} ${handoff?.location}`);
  return client;
}

/** Read the progress stream until it says ready (or failed). */
export async function waitForReady(client: HubClient, escapedName: string): Promise<string[]> {
  const res = await client.get(`/hub/api/users/${escapedName}/server/progress`, { accept: 'text/event-stream' });
  const events = res.body
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)) as { message: string; ready?: boolean; failed?: boolean });
  const last = events.at(-1);
  if (!last?.ready) throw new Error(`server of ${escapedName} did not start: ${JSON.stringify(events)}`);
  return events.map((e) => e.message);
}
