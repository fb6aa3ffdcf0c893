import assert from 'node:assert/strict';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, tempDataDir, waitForReady } from '../helpers/hub.js';
import { hubEnv, reapDataDir, startHubProcess, stopHubProcess, type HubProcess } from '../helpers/hub-process.js';
import { xsrfToken } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';

export { REPO_ROOT, eventually, hubEnv, isAlive, jupyterPids, reapDataDir, serverPid, startHubProcess, stopHubProcess, untilRunning, type HubProcess } from '../helpers/hub-process.js';

/*
 * Shared by the fault cases: the one-line figure each case prints and files read and saved as
 * JupyterLab does; the hub program and its processes come from test/helpers/hub-process.ts.
 */

/** Print the case's one line: what happened, and its measured figure (never asserted). */
export function reportFault(fault: string, studentSaw: string, dataLost: string, recovered: string): void {
  console.log(`fault: ${fault} — student saw: ${studentSaw}; data lost: ${dataLost}; recovered in ${recovered}`);
}

/** Seconds since `start` (a Date.now()), one decimal, for the printed figure. */
export function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)} s`;
}

/** Save a text file in the student's server through Jupyter's contents API, as JupyterLab does. */
export async function saveFile(client: HubClient, name: string, file: string, content: string): Promise<void> {
  const res = await client.request('PUT', `/user/${name}/api/contents/${file}`, {
    headers: { 'content-type': 'application/json', 'x-xsrftoken': await xsrfToken(client, name), accept: 'application/json' },
    body: JSON.stringify({ type: 'file', format: 'text', content }),
  });
  assert.ok(res.status === 200 || res.status === 201, `saving ${file} answered ${res.status}: ${res.body.slice(0, 200)}`);
}

/** Read a text file back through the proxy. */
export async function readFile(client: HubClient, name: string, file: string): Promise<string> {
  const res = await client.get(`/user/${name}/api/contents/${file}?content=1&format=text&type=file`, { accept: 'application/json' });
  assert.equal(res.status, 200, `reading ${file} answered ${res.status}: ${res.body.slice(0, 200)}`);
  return (JSON.parse(res.body) as { content: string }).content;
}

/**
 * The hub program a restart case runs, again and again, on one port and one data folder, as an
 * operator's service manager would. Call it in a `describe`: every hub still running after the
 * case is SIGKILLed and the servers it left are reaped.
 */
export interface RestartedHubs {
  readonly url: string;
  readonly dataDir: string;
  /** Start the hub program (`label` names its log file); `extra` is added to the environment. */
  start(label: string, extra?: Record<string, string>, options?: { waitForRunning?: boolean }): Promise<HubProcess>;
  /** Stop a hub started here with `signal`; resolves to its exit code (null when killed by the signal). */
  stop(hub: HubProcess, signal: NodeJS.Signals): Promise<number | null>;
}

export function restartedHubs(dataLabel: string): RestartedHubs {
  const running: HubProcess[] = [];
  let port = 0;
  let dataDir = '';
  before(async () => {
    port = await freePort();
    dataDir = tempDataDir(dataLabel);
  });
  after(async () => {
    for (const h of running) await stopHubProcess(h, 'SIGKILL');
    if (dataDir) reapDataDir(dataDir);
  });
  return {
    get url() { return `http://127.0.0.1:${port}`; },
    get dataDir() { return dataDir; },
    async start(label, extra = {}, options = {}) {
      const hub = await startHubProcess(label, hubEnv(port, dataDir, extra), options);
      running.push(hub);
      return hub;
    },
    async stop(hub, signal) {
      const code = await stopHubProcess(hub, signal);
      running.splice(running.indexOf(hub), 1);
      return code;
    },
  };
}

/**
 * Make each student an account, sign them in, start their server and open JupyterLab, one after
 * another as they would arrive; `each` then runs for every student (to save their work).
 */
export async function studentsAtWork(
  url: string,
  names: readonly string[],
  each: (name: string, client: HubClient) => Promise<void> = async () => {},
): Promise<Map<string, HubClient>> {
  await createUsers({ url } as Hub, Object.fromEntries(names.map((s) => [s, `${s}-password`])));
  const clients = new Map<string, HubClient>();
  for (const name of names) {
    const client = new HubClient(url);
    assert.equal((await client.login(name, `${name}-password`)).status, 303);
    await client.get('/hub/spawn');
    await waitForReady(client, name);
    assert.equal((await client.openServer('/lab')).handoff?.status, 302);
    await each(name, client);
    clients.set(name, client);
  }
  return clients;
}
