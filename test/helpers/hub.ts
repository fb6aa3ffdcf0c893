import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type ConfigKey } from '../../server/config/index.js';
import { createHub, type Hub } from '../../server/index.js';
import { notebookVenv } from './venv.js';
import { HubClient } from './client.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';
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
      fs.rmSync(ownDataDir, { recursive: true, force: true });
    },
  });
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
