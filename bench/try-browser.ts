/**
 * "Try it" in Chromium (issue 14), against a real hub with the local-process spawner:
 *
 * - floor: Chromium opening the rendered index as a static page (the same bytes, from a plain
 *   HTTP server on 127.0.0.1; its scripts from the hub), measured in the same run;
 * - click → first rendered sample (the index, drawn in the workspace's frame), p50;
 * - click → a cell's result from the live (warm) kernel, run from the rendered page, p50;
 * - click → JupyterLab's notebook panel drawn (what the visitor got before), p50;
 * - the same click → result with --visitors visitors arriving one second apart;
 * - the refill's CPU during a visit (CPU seconds of the server the pool starts meanwhile);
 * - the bytes moved per visit (HTTP bodies and WebSocket frames);
 * - a burst of --burst visitors at once on a pool of --pool: what the last one sees.
 *
 *   node --import tsx bench/try-browser.ts [--runs=5] [--visitors=10] [--pool=10] [--burst=20] [--only=burst]
 *
 * All traffic goes to 127.0.0.1 / *.localhost (requests elsewhere are aborted and counted).
 * Prints results; asserts nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Hub } from '../server/index.js';
import { launchBrowser } from '../test/helpers/browser.js';
import { startTestHub } from '../test/helpers/hub.js';
import { waitForReadyPool } from '../test/helpers/try.js';

const opts = { runs: 5, visitors: 10, pool: 10, burst: 20 };
// --only=burst: just the burst (a short run on a shared machine).
let only: 'burst' | undefined;
for (const arg of process.argv.slice(2)) {
  if (arg === '--only=burst') {
    only = 'burst';
    continue;
  }
  const m = /^--(runs|visitors|pool|burst)=(\d+)$/.exec(arg);
  if (!m) throw new Error(`unknown option ${arg}`);
  opts[m[1] as keyof typeof opts] = Number(m[2]);
}

const median = (v: number[]): number => {
  if (!v.length) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const sec = (ms: number): string => (ms / 1000).toFixed(2);
const TICK = 100; // USER_HZ on Linux

interface Visit {
  rendered: number;
  cell: number;
  bytes: number;
  blocked: number;
  errors: string[];
  escapedName: string;
}

async function offline(browser: Browser): Promise<{ context: BrowserContext; counters: { bytes: number; blocked: number; errors: string[] } }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const counters = { bytes: 0, blocked: 0, errors: [] as string[] };
  await context.route('**/*', (route) => {
    const h = new URL(route.request().url()).hostname;
    if (h === '127.0.0.1' || h === 'localhost' || h.endsWith('.localhost')) return route.continue();
    counters.blocked++;
    return route.abort();
  });
  context.on('response', (r) => {
    void r
      .request()
      .sizes()
      .then((s) => (counters.bytes += s.responseBodySize + s.responseHeadersSize))
      .catch(() => undefined);
  });
  context.on('weberror', (e) => counters.errors.push(e.error().message));
  return { context, counters };
}

function watchSockets(page: Page, counters: { bytes: number }): void {
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => (counters.bytes += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length));
    ws.on('framesent', (f) => (counters.bytes += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length));
  });
}

/** One visitor: click "Try it", wait for the rendered index, then run its first cell in the warm kernel. */
async function visit(browser: Browser, hubUrl: string): Promise<Visit> {
  const { context, counters } = await offline(browser);
  const page = await context.newPage();
  watchSockets(page, counters);
  try {
    await page.goto(`${hubUrl}/hub/try`);
    const t0 = performance.now();
    await page.getByRole('button', { name: 'Try it' }).click();
    const frame = page.frameLocator('#try-frame');
    await frame.locator('article.nb').waitFor({ timeout: 120_000 });
    const rendered = performance.now() - t0;
    const run = frame.locator('.nb-code[data-cell="0"] button.nb-run');
    await run.click({ timeout: 120_000 });
    await frame.locator('.nb-code[data-cell="0"] .nb-outputs[data-live="true"]').waitFor({ timeout: 120_000 });
    const cell = performance.now() - t0;
    const escapedName = /\/user\/([^/]+)\//.exec(page.url())?.[1] ?? '';
    await sleep(300);
    return { rendered, cell, bytes: counters.bytes, blocked: counters.blocked, errors: counters.errors, escapedName };
  } finally {
    await context.close();
  }
}

/** Click "Try it" and go to JupyterLab's notebook directly (the landing before issue 14). */
async function visitLab(browser: Browser, hubUrl: string): Promise<number> {
  const { context } = await offline(browser);
  const page = await context.newPage();
  try {
    await page.goto(`${hubUrl}/hub/try`);
    const t0 = performance.now();
    await page.getByRole('button', { name: 'Try it' }).click();
    await page.waitForURL(/\/oerhub\/workspace$/, { timeout: 120_000 });
    const name = /\/user\/([^/]+)\//.exec(page.url())?.[1] ?? '';
    await page.goto(`${new URL(page.url()).origin}/user/${name}/lab/tree/samples/index.ipynb`);
    await page.locator('.jp-NotebookPanel .jp-Cell').first().waitFor({ timeout: 180_000 });
    return performance.now() - t0;
  } finally {
    await context.close();
  }
}

/** The floor: the rendered index's bytes as a static page from 127.0.0.1. */
async function floor(browser: Browser, html: string): Promise<{ ms: number; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/index`;
  const { context } = await offline(browser);
  const page = await context.newPage();
  const t0 = performance.now();
  await page.goto(url);
  await page.locator('article.nb').waitFor();
  const ms = performance.now() - t0;
  await context.close();
  return { ms, close: () => new Promise((r) => server.close(() => r())) };
}

/** CPU seconds used so far by every process of the given Unix users. */
function cpuOfUsers(uids: Set<number>): number {
  let ticks = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      if (!uids.has(uid)) continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone meanwhile */
    }
  }
  return ticks / TICK;
}

/** Uids of the Unix accounts this hub made for "Try it" servers (its dataDir/accounts; other hubs on the machine have theirs). */
function anonymousUids(dataDir: string): number[] {
  const uids: number[] = [];
  for (const f of fs.readdirSync(`${dataDir}/accounts`, { withFileTypes: true })) {
    try {
      const { uid } = JSON.parse(fs.readFileSync(`${dataDir}/accounts/${f.name}`, 'utf8')) as { uid?: unknown };
      if (typeof uid === 'number') uids.push(uid);
    } catch {
      /* not an account record */
    }
  }
  return uids;
}

function uidOf(escapedName: string): number | undefined {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`oh-${escapedName}:`));
  return line ? Number(line.split(':')[2]) : undefined;
}

async function main(): Promise<void> {
  console.log(`# "Try it" in Chromium: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, runs=${opts.runs}`);
  const browser = await launchBrowser();
  const common = { tryMaxPerAddress: 1000, tryStartsPerAddress: 100000, logLevel: 'warn' };
  try {
    if (only !== 'burst') await visits(browser, common);
    await crowds(browser, common);
  } finally {
    await browser.close();
  }
}

/** One visitor at a time: the rendered index, a cell, JupyterLab, the floor, the refill's CPU, bytes. */
async function visits(browser: Browser, common: Record<string, unknown>): Promise<void> {
  const hub: Hub = await startTestHub('bench-try-browser', { ...common, poolSize: 2, tryMaxServers: 4 });
  try {
    await hub.samples.prepare();
    const rendered: number[] = [];
    const cells: number[] = [];
    const labs: number[] = [];
    const floors: number[] = [];
    const bytes: number[] = [];
    const refillCpu: number[] = [];
    let blocked = 0;
    let errors = 0;
    let indexHtml = '';
    for (let i = 0; i < opts.runs; i++) {
      await waitForReadyPool(hub, 2);
      await sleep(1000);
      const before = new Set<number>();
      for (const name of await hub.pool.readyNames()) {
        const u = await hub.users.get(name);
        const uid = u ? uidOf(u.escapedName) : undefined;
        if (uid !== undefined) before.add(uid);
      }
      const v = await visit(browser, hub.url);
      // The servers the pool started during this visit (accounts that were not ready before): their CPU so far.
      const visitor = uidOf(v.escapedName);
      const newUids = new Set(anonymousUids(hub.config.dataDir).filter((u) => !before.has(u) && u !== visitor));
      refillCpu.push(cpuOfUsers(newUids));
      rendered.push(v.rendered);
      cells.push(v.cell);
      bytes.push(v.bytes);
      blocked += v.blocked;
      errors += v.errors.length;
      await hub.pool.release((await hub.users.getByEscaped(v.escapedName))?.name ?? '', 'logout');
      // The floor, same run: the rendered index as a static file.
      if (!indexHtml) {
        const s = hub.samples.get('index');
        indexHtml = s ? `<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="${hub.url}/hub/static/notebook-view.css"></head><body class="nb-view">${s.html}<script src="${hub.url}/hub/static/notebook-view.js"></script></body></html>` : '';
      }
      const f = await floor(browser, indexHtml);
      floors.push(f.ms);
      await f.close();
      await waitForReadyPool(hub, 2);
      labs.push(await visitLab(browser, hub.url));
      console.log(`run ${i + 1}: rendered ${sec(v.rendered)} s, cell ${sec(v.cell)} s, JupyterLab ${sec(labs.at(-1)!)} s, floor ${sec(f.ms)} s, ${(v.bytes / 1024).toFixed(0)} KiB, refill CPU ${refillCpu.at(-1)!.toFixed(2)} s`);
      for (const s of await hub.pool.sessions()) await hub.pool.release(s.name, 'logout');
    }
    console.log('\n| from the "Try it" click | p50 | ratio |\n| --- | --- | --- |');
    console.log(`| floor: the rendered index as a static page | ${sec(median(floors))} s | 1.0 |`);
    console.log(`| first rendered sample (the index) | ${sec(median(rendered))} s | ${(median(rendered) / median(floors)).toFixed(1)}× floor (floor + ${sec(median(rendered) - median(floors))} s) |`);
    console.log(`| a cell's result from the live kernel | ${sec(median(cells))} s | |`);
    console.log(`| JupyterLab's notebook drawn (the old landing) | ${sec(median(labs))} s | ${(median(labs) / median(rendered)).toFixed(1)}× the rendered view |`);
    console.log(`| the refill's CPU during a visit | ${median(refillCpu).toFixed(2)} CPU-s | |`);
    console.log(`| bytes moved per visit (rendered index + a cell) | ${(median(bytes) / 1024).toFixed(0)} KiB | |`);
    console.log(`third-party requests blocked: ${blocked}; page errors: ${errors}`);
  } finally {
    await hub.close();
  }
}

/** A visitor of the burst: what they see first and when, then (if in) when a cell runs in their kernel. */
interface BurstVisit {
  seen: string;
  rendered: number;
  live: number;
  error?: string;
}

/** A visitor on the "Try it" page, ready to click (loaded before the burst, so the burst is the clicks). */
async function burstVisitor(browser: Browser, hubUrl: string): Promise<() => Promise<BurstVisit>> {
  const { context, counters } = await offline(browser);
  const page = await context.newPage();
  await page.goto(`${hubUrl}/hub/try`, { timeout: 120_000 });
  return () => burstVisit(context, page, counters);
}

async function burstVisit(context: BrowserContext, page: Page, counters: { errors: string[] }): Promise<BurstVisit> {
  try {
    const t0 = performance.now();
    await page.getByRole('button', { name: 'Try it' }).click({ timeout: 120_000, noWaitAfter: true });
    const frame = page.frameLocator('#try-frame');
    const seen = await Promise.race([
      frame.locator('article.nb').waitFor({ timeout: 120_000 }).then(async () => ((await page.locator('#try-starting').isVisible()) ? 'rendered sample, own server starting' : 'rendered sample, warm server')),
      page.locator('#try-position').waitFor({ timeout: 120_000 }).then(async () => `waiting page, place ${await page.locator('#try-position').innerText()}`),
      page.waitForURL(/\/hub\/spawn-pending\//, { timeout: 120_000 }).then(() => 'progress page'),
    ]);
    const rendered = performance.now() - t0;
    if (!seen.startsWith('rendered')) return { seen, rendered, live: NaN };
    // Live: a cell of the index run in the visitor's own kernel, from the rendered page.
    await frame.locator('.nb-code[data-cell="0"] button.nb-run').click({ timeout: 180_000 });
    await frame.locator('.nb-code[data-cell="0"] .nb-outputs[data-live="true"]').waitFor({ timeout: 180_000 });
    const live = performance.now() - t0;
    return { seen, rendered, live, ...(counters.errors.length ? { error: counters.errors[0] } : {}) };
  } catch (err) {
    return { seen: 'error', rendered: NaN, live: NaN, error: (err as Error).message.split('\n')[0] };
  } finally {
    await context.close();
  }
}

/** Visitors one second apart, and a burst at once, on a pool of opts.pool with the default cap. */
async function crowds(browser: Browser, common: Record<string, unknown>): Promise<void> {
  const big: Hub = await startTestHub('bench-try-burst', { ...common, poolSize: opts.pool });
  try {
    await big.samples.prepare();
    console.log(`\nwaiting for ${opts.pool} warm servers (cap ${big.config.tryMaxServers})…`);
    await waitForReadyPool(big, opts.pool, 600_000);
    if (only === 'burst') {
      await burst(browser, big);
      return;
    }
    const spaced = await Promise.all(
      Array.from({ length: opts.visitors }, async (_, i) => {
        await sleep(i * 1000);
        return visit(browser, big.url).catch((err: Error) => ({ rendered: NaN, cell: NaN, bytes: 0, blocked: 0, errors: [err.message], escapedName: '' }));
      }),
    );
    const ok = spaced.filter((v) => !Number.isNaN(v.cell));
    console.log(`\n${opts.visitors} visitors 1 s apart: rendered p50 ${sec(median(ok.map((v) => v.rendered)))} s, cell p50 ${sec(median(ok.map((v) => v.cell)))} s, max ${sec(Math.max(...ok.map((v) => v.cell)))} s, failures ${spaced.length - ok.length}`);
    for (const s of await big.pool.sessions()) await big.pool.release(s.name, 'logout');
    await waitForReadyPool(big, opts.pool, 600_000);
    await burst(browser, big);
  } finally {
    await big.close();
  }
}

/** The burst: everyone at once. What each sees first and when, and when their kernel runs a cell. */
async function burst(browser: Browser, big: Hub): Promise<void> {
  console.log(`load before the burst: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const ready: (() => Promise<BurstVisit>)[] = [];
  for (let i = 0; i < opts.burst; i++) ready.push(await burstVisitor(browser, big.url));
  await sleep(2000);
  console.log(`load before the clicks: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const visits = await Promise.all(ready.map((go) => go()));
  const kinds = new Map<string, number>();
  for (const v of visits) {
    const k = v.seen.replace(/place \d+/, 'place N');
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  const byRendered = [...visits].sort((a, b) => a.rendered - b.rendered);
  const lastIn = byRendered.at(-1)!;
  const lives = visits.map((v) => v.live).filter((x) => !Number.isNaN(x));
  console.log(`\nburst of ${opts.burst} at once (pool ${opts.pool}, cap ${big.config.tryMaxServers}): ${[...kinds].map(([k, n]) => `${n}× ${k}`).join(', ')}`);
  console.log(`| the burst's visitors | p50 | the ${opts.burst}th (slowest) |\n| --- | --- | --- |`);
  console.log(`| click → first page with the rendered sample (or a place) | ${sec(median(visits.map((v) => v.rendered)))} s | ${sec(lastIn.rendered)} s (${lastIn.seen}) |`);
  console.log(`| click → a cell's result from their own kernel | ${sec(median(lives))} s | ${sec(Math.max(...lives))} s |`);
  const errs = visits.filter((v) => v.error);
  console.log(`errors: ${errs.length}${errs.length ? ` (${errs.map((e) => e.error).join('; ')})` : ''}; waiting pages: ${visits.filter((v) => v.seen.startsWith('waiting')).length}; progress pages: ${visits.filter((v) => v.seen === 'progress page').length}`);
  console.log(`load after the burst: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const s of await big.pool.sessions()) await big.pool.release(s.name, 'logout');
}

main().catch((err: Error) => {
  console.error(err);
  process.exitCode = 1;
});
