import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hub } from '../../server/index.js';
import type { PoolStatus } from '../../server/pool/index.js';
import { HubClient, type HubClientOptions, type Reply } from './client.js';
import { startTestHub } from './hub.js';

/**
 * The loopback address a visitor's connections come from: 10.B.C.D becomes 127.(100+B).C.D, a
 * real TCP peer (all of 127/8 is this machine's). X-Forwarded-For can't stand in for it: the hub
 * believes that header only through its front door socket, never on the TCP port.
 */
export function loopbackFor(address: string): string {
  const [, b, c, d] = address.split('.').map(Number);
  return `127.${100 + (b ?? 0)}.${c ?? 0}.${d ?? 1}`;
}

/** A visitor's browser: a HubClient whose connections come from their own address (loopbackFor). */
export class VisitorClient extends HubClient {
  readonly peer: string;

  constructor(
    baseUrl: string,
    readonly address: string,
    options: HubClientOptions = {},
  ) {
    super(baseUrl, { ...options, localAddress: loopbackFor(address) });
    this.peer = loopbackFor(address);
  }

  /** Click "Try it": load the page, send its form. Returns the reply to the POST. */
  async tryIt(): Promise<Reply> {
    const page = await this.get('/hub/try');
    if (page.status !== 200) throw new Error(`/hub/try answered ${page.status}`);
    return this.request('POST', '/hub/try', { form: { _csrf: HubClient.csrfFrom(page.body) } });
  }

  /** Press "Check now" on the waiting page (its script does the same once its place is served). */
  async retry(waitingPage: string): Promise<Reply> {
    return this.request('POST', '/hub/try', { form: { _csrf: HubClient.csrfFrom(waitingPage) } });
  }

  /** Who this browser is signed in as. */
  async me(): Promise<{ name: string; escaped_name: string; roles: string[]; csrf_token: string }> {
    const r = await this.get('/hub/api/user', { accept: 'application/json' });
    if (r.status !== 200) throw new Error(`/hub/api/user answered ${r.status}`);
    return JSON.parse(r.body) as { name: string; escaped_name: string; roles: string[]; csrf_token: string };
  }

  /** Open the workspace's JupyterLab once (hands out the /user/ cookie). */
  async openLab(): Promise<Reply & { path: string }> {
    return this.follow('/hub/user-redirect/lab/tree/samples/index.ipynb');
  }

  /**
   * Open the workspace page as the browser does after "Try it": the hub hands over to the
   * visitor's own origin, which serves the page. Returns the last reply and where it is.
   */
  async openWorkspace(): Promise<Reply & { path: string; url: string }> {
    return this.follow('/hub/try/workspace');
  }

  /** Press "End session" on a workspace page served on the visitor's origin (its own form and token). */
  async endFromWorkspace(page: { body: string; url: string }): Promise<Reply> {
    const action = /<form method="post" action="([^"]+)"[^>]*id="try-end"/.exec(page.body)?.[1];
    if (!action) throw new Error('no End session form on the page');
    return this.request('POST', new URL(action, page.url).href, { form: { _csrf: HubClient.csrfFrom(page.body) } });
  }

  /** Sign out on the hub (the hub-origin workspace page's End session, and JupyterLab's Log Out). */
  async endSession(): Promise<Reply> {
    const page = await this.get('/hub/logout');
    return this.request('POST', '/hub/logout', { form: { _csrf: HubClient.csrfFrom(page.body) } });
  }
}

/** The pool's counts as an admin sees them (GET /hub/api/pool). */
export async function poolStatus(admin: HubClient): Promise<PoolStatus> {
  const r = await admin.get('/hub/api/pool', { accept: 'application/json' });
  if (r.status !== 200) throw new Error(`/hub/api/pool answered ${r.status}: ${r.body}`);
  return JSON.parse(r.body) as PoolStatus;
}

/** Poll until `check` holds (or throw after timeoutMs, with the last value in the message). */
export async function waitFor<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < until) {
    last = await get();
    if (check(last)) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

/** Wait until the pool has `ready` warm servers and nothing starting. */
export function waitForReadyPool(hub: Hub, ready: number, timeoutMs = 90_000): Promise<PoolStatus> {
  return waitFor(`${ready} warm servers`, () => hub.pool.status(), (s) => s.ready === ready && s.starting === 0, timeoutMs);
}

/** Where the local-process spawner keeps an ephemeral server: its home folder and its process. */
export function localServerOf(hub: Hub, escapedName: string): { home: string; stateFile: string; pid: number | undefined } {
  const home = path.join(hub.config.dataDir, 'ephemeral', escapedName);
  const stateFile = path.join(hub.config.dataDir, 'servers', `${escapedName}.json`);
  let pid: number | undefined;
  try {
    pid = (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { pid: number }).pid;
  } catch {
    pid = undefined;
  }
  return { home, stateFile, pid };
}

/** Whether a process (or its process group, where Jupyter's kernels live) still exists. */
export function isAlive(pid: number): boolean {
  for (const target of [pid, -pid]) {
    try {
      process.kill(target, 0);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') return true;
    }
  }
  return false;
}

/**
 * Pids of processes whose command line names this server (Jupyter's --ServerApp.base_url, and
 * its kernels' connection files under the ephemeral home): what must be gone once it is destroyed.
 */
export function processesOf(escapedName: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`/${escapedName}/`) || cmdline.includes(`/${escapedName}\0`)) out.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/**
 * A test hub for "Try it": started with `overrides`, its sample notebooks executed and rendered
 * (what a visitor lands on), and failing the set-up with the reason if they did not execute.
 */
export async function startTryHub(label: string, overrides: Parameters<typeof startTestHub>[1] = {}): Promise<Hub> {
  const hub = await startTestHub(label, overrides);
  try {
    await hub.samples.prepare();
    assert.equal(hub.samples.error, undefined, `the samples did not execute: ${hub.samples.error ?? ''}`);
  } catch (err) {
    await hub.close();
    throw err;
  }
  return hub;
}
