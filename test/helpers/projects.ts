import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { Hub } from '../../server/index.js';
import { clientFor, removeServerAccounts } from './hub.js';
import { HubClient, type Reply } from './client.js';
import type { TestSmtp } from './smtp.js';

/** Unmount every project filesystem a test hub left under its data folder (a failing test, say). */
export function unmountUnder(dir: string): void {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(dir + '/')).reverse()) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // Already gone.
    }
  }
}

/**
 * The projects tests' teardown: the hub closes (its servers stop), then, whatever that did,
 * the mail server closes, and the project filesystems, Unix accounts and data folder go.
 */
export async function closeProjectHub(hub: Hub | undefined, smtp: TestSmtp, dataDir: string): Promise<void> {
  try {
    await hub?.close();
  } finally {
    await smtp.close();
    unmountUnder(dataDir);
    removeServerAccounts(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The path and query of an emailed link (the test talks to the hub's own address). */
export function pathOf(link: string): string {
  const u = new URL(link);
  return u.pathname + u.search;
}

/** Post a form as its page would: the page first (for the XSRF field), then the form. */
export async function formPost(client: HubClient, pagePath: string, action: string, form: Record<string, string | string[]>): Promise<Reply> {
  const page = await client.get(pagePath);
  const body = new URLSearchParams({ _csrf: HubClient.csrfFrom(page.body) });
  for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  return client.request('POST', action, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}

/** Follow an emailed invitation, choose a username and password; returns the signed-in client. */
export async function acceptInvite(hub: Hub, link: string, username: string, password: string): Promise<HubClient> {
  const client = clientFor(hub);
  const page = await client.get(pathOf(link));
  if (page.status !== 200) throw new Error(`invitation page answered ${page.status}: ${page.body.slice(0, 300)}`);
  const res = await client.request('POST', pathOf(link), { form: { _csrf: HubClient.csrfFrom(page.body), username, password, confirm: password } });
  if (res.status !== 303) throw new Error(`accepting the invitation answered ${res.status}: ${res.body.slice(0, 300)}`);
  return client;
}
