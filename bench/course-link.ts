/**
 * A student opening a course link into their running server, in Chromium (issue 14): time from
 * opening `/hub/courses/CODE/open/NOTEBOOK` to the notebook drawn in JupyterLab and its kernel
 * idle, with an empty browser cache (a new browser profile, signed in) and with the cache of an
 * earlier visit; and the bytes of JupyterLab's static files, as sent (compressed by the proxy)
 * and uncompressed. The first open (it starts the server) is printed apart.
 *
 *   node --import tsx bench/course-link.ts [--runs=3]
 *
 * All traffic goes to 127.0.0.1 / *.localhost (other hosts don't resolve; requests to them are counted). Prints
 * results; asserts nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchBrowser, signInInBrowser } from '../test/helpers/browser.js';
import { localhostLookup } from '../test/helpers/client.js';
import { createUsersWithRoles, signedIn, upload } from '../test/helpers/courses.js';
import { startTestHub } from '../test/helpers/hub.js';

let runs = 3;
for (const arg of process.argv.slice(2)) {
  const m = /^--runs=(\d+)$/.exec(arg);
  if (!m) throw new Error(`unknown option ${arg} (--runs=N)`);
  runs = Math.max(1, Number(m[1]));
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const sec = (ms: number): string => (ms / 1000).toFixed(2);
const kib = (b: number): string => `${(b / 1024).toFixed(0)} KiB`;

interface Open {
  ms: number;
  /** The /static/ URLs the visit loaded (from the network or the cache). */
  urls: Set<string>;
  /** Bytes of /static/ answers as they came over the wire, and decoded; files served from the browser cache count 0. */
  staticSent: number;
  fromCache: number;
  blocked: number;
}

async function openLink(context: BrowserContext, url: string): Promise<Open> {
  const page = await context.newPage();
  const o: Open = { ms: 0, urls: new Set(), staticSent: 0, fromCache: 0, blocked: 0 };
  const pending: Promise<void>[] = [];
  page.on('response', (r) => {
    if (!new URL(r.url()).pathname.includes('/static/')) return;
    pending.push(
      (async () => {
        if (r.fromServiceWorker()) return;
        o.urls.add(r.url());
        const sizes = await r.request().sizes();
        // A body from the browser's memory or disk cache has no transfer (Chromium says -1 or 0).
        if (sizes.responseBodySize <= 0 && r.status() === 200) o.fromCache++;
        else o.staticSent += sizes.responseBodySize;
      })().catch(() => undefined),
    );
  });
  const t0 = performance.now();
  await page.goto(url, { timeout: 180_000 });
  await page.locator('.jp-NotebookPanel:visible').waitFor({ timeout: 180_000 });
  await page.locator('#jp-main-statusbar').getByText(/\| Idle/).waitFor({ timeout: 180_000 });
  o.ms = performance.now() - t0;
  await Promise.all(pending);
  await page.close();
  return o;
}

/**
 * A browser profile. No request interception (Playwright's routing turns the HTTP cache off, and
 * the cache is what this measures): the browser is launched with every host but this machine's
 * unresolvable instead, and requests elsewhere are counted.
 */
async function offlineContext(browser: Browser, storageState?: Awaited<ReturnType<BrowserContext['storageState']>>): Promise<{ context: BrowserContext; blocked: () => number }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...(storageState ? { storageState } : {}) });
  let blocked = 0;
  context.on('request', (r) => {
    const h = new URL(r.url()).hostname;
    if (!(h === '127.0.0.1' || h === 'localhost' || h.endsWith('.localhost')) && !/^(data|blob):/.test(r.url())) blocked++;
  });
  return { context, blocked: () => blocked };
}

/** Length of the body the hub sends for `url` with this Accept-Encoding (as sent: compressed stays compressed). */
function bodyBytes(url: URL, cookie: string, acceptEncoding: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, lookup: localhostLookup, agent: false, headers: { cookie, 'accept-encoding': acceptEncoding } }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(res.statusCode === 200 ? n : 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  console.log(`# A course link into a running server, in Chromium: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, runs=${runs}`);
  const hub = await startTestHub('bench-course-link', { logLevel: 'warn' });
  const browser = await launchBrowser(['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1']);
  try {
    await createUsersWithRoles(hub, {
      'tr2-prof': { password: 'tr2-prof-password', roles: ['instructor'] },
      'tr2-stu': { password: 'tr2-stu-password', roles: ['student'] },
    });
    const prof = await signedIn(hub, 'tr2-prof', 'tr2-prof-password');
    const created = await prof.client.request('POST', '/hub/courses', { form: { _csrf: prof.csrf, code: 'tr2c', title: 'Bench course' } });
    if (created.status !== 303) throw new Error(`course create answered ${created.status}`);
    // A realistic notebook: the samples' index, with its saved outputs.
    const nb = fs.readFileSync(path.resolve(__dirname, '..', 'course-notebooks', 'samples', 'index.ipynb'), 'utf8');
    const up = await upload(prof.client, prof.csrf, '/hub/courses/tr2c/publish', [{ name: 'lab1.ipynb', data: nb }]);
    if (up.status !== 200) throw new Error(`publish answered ${up.status}`);
    const link = `${hub.url}/hub/courses/tr2c/open/lab1.ipynb`;

    // Signed in once; each cold run is a new profile with that sign-in and an empty cache.
    const first = await offlineContext(browser);
    const page = await first.context.newPage();
    await signInInBrowser(page, hub.url, 'tr2-stu', 'tr2-stu-password');
    await page.close();
    const t0 = performance.now();
    const start = await openLink(first.context, link);
    console.log(`first open (starts the server, copies the course): ${sec(performance.now() - t0)} s, static ${kib(start.staticSent)} sent`);
    const state = await first.context.storageState();

    const cold: Open[] = [];
    const warm: Open[] = [];
    let blocked = 0;
    for (let i = 0; i < runs; i++) {
      const c = await offlineContext(browser, state);
      cold.push(await openLink(c.context, link));
      // The same profile again: JupyterLab's hashed files come from the browser's cache.
      warm.push(await openLink(c.context, link));
      blocked += c.blocked();
      await c.context.close();
      console.log(`run ${i + 1}: empty cache ${sec(cold.at(-1)!.ms)} s (${kib(cold.at(-1)!.staticSent)} sent), cached ${sec(warm.at(-1)!.ms)} s (${kib(warm.at(-1)!.staticSent)} sent, ${warm.at(-1)!.fromCache} from cache)`);
    }
    await first.context.close();
    // The same files uncompressed (what the proxy sent before issue 14): asked for with identity.
    const cookie = (host: string): string => state.cookies.filter((c) => c.domain === host || c.domain === `.${host}`).map((c) => `${c.name}=${c.value}`).join('; ');
    let identity = 0;
    let compressed = 0;
    for (const u of cold[0]!.urls) {
      const url = new URL(u);
      identity += await bodyBytes(url, cookie(url.hostname), 'identity');
      compressed += await bodyBytes(url, cookie(url.hostname), 'br, gzip');
    }
    console.log('\n| course link → notebook drawn, kernel idle | p50 | static files over the wire |\n| --- | --- | --- |');
    console.log(`| empty browser cache | ${sec(median(cold.map((o) => o.ms)))} s | ${kib(median(cold.map((o) => o.staticSent)))} |`);
    console.log(`| cache of an earlier visit | ${sec(median(warm.map((o) => o.ms)))} s | ${kib(median(warm.map((o) => o.staticSent)))} (${median(warm.map((o) => o.fromCache))} files from the cache) |`);
    console.log(`\nthe ${cold[0]!.urls.size} static files of a visit: ${kib(identity)} uncompressed, ${kib(compressed)} as the proxy sends them (brotli): ${kib(identity - compressed)} saved per visit with an empty cache`);
    console.log(`requests to other hosts (unresolvable here): ${blocked}`);
  } finally {
    await browser.close();
    await hub.close();
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exitCode = 1;
});
