import assert from 'node:assert/strict';
import type { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';

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
