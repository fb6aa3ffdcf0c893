/**
 * "Try it" benchmark (issue 5, item 7), against real hubs with the local-process spawner:
 *
 * 1. Time from clicking "Try it" to a usable notebook (the POST answered, the workspace page
 *    and JupyterLab loaded, the samples there, a kernel started and its first cell answered),
 *    with a warm pool versus an empty one (poolSize 0: a start on demand), interleaved in one
 *    run so both see the same machine; median of --runs.
 * 2. How many concurrent ephemeral sessions this machine holds, each with a kernel running a
 *    small computation: sessions are added one at a time (up to --max) and every live session
 *    runs the computation at once; the step stops when the median time of one computation
 *    exceeds --limit-ms, a start fails, or free memory drops under 300 MB.
 *
 *   node --import tsx bench/try.ts [--runs=5] [--max=16] [--limit-ms=2000]
 *   node --import tsx bench/try.ts --burst=20 [--pool=10]   (only 3: a burst at once, default cap)
 *   node --import tsx bench/try.ts --burst=10 --apart-ms=1000   (only 3: 10 visitors one second apart)
 *
 * 3. With --burst: N visitors clicking at once over HTTP (no browser, so a browser's own drawing
 *    on this shared machine doesn't count as the hub's): click → the rendered sample received,
 *    click → a cell's result from their own kernel, waiting pages, errors.
 *
 * Needs the notebook venv (npm run venv). All traffic goes to 127.0.0.1; every server it
 * starts is destroyed at the end. Prints results; asserts nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hub } from '../server/index.js';
import { startTestHub } from '../test/helpers/hub.js';
import { KernelSocket, startKernel } from '../test/helpers/kernel.js';
import { VisitorClient, waitFor, waitForReadyPool } from '../test/helpers/try.js';

interface Options {
  runs: number;
  max: number;
  limitMs: number;
  /** With --burst=N: only the burst of N visitors at once, on a pool of --pool (default cap). */
  burst: number;
  pool: number;
  /** With --burst: the visitors click this far apart (0: all at once). */
  apartMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { runs: 5, max: 16, limitMs: 2000, burst: 0, pool: 10, apartMs: 0 };
  for (const arg of argv) {
    const m = /^--(runs|max|limit-ms|burst|pool|apart-ms)=(\d+)$/.exec(arg);
    if (!m) throw new Error(`unknown option ${arg} (--runs=N, --max=N, --limit-ms=N, --burst=N, --pool=N, --apart-ms=N)`);
    const v = Math.max(1, Number.parseInt(m[2]!, 10));
    if (m[1] === 'runs') o.runs = v;
    else if (m[1] === 'max') o.max = v;
    else if (m[1] === 'burst') o.burst = v;
    else if (m[1] === 'pool') o.pool = v;
    else if (m[1] === 'apart-ms') o.apartMs = v;
    else o.limitMs = v;
  }
  return o;
}

interface BurstResult {
  /** What the visitor got first: the rendered sample (warm or starting), the waiting page, an error. */
  seen: string;
  /** Click → the rendered sample's HTML received (the hub's part of "something to look at"). */
  renderedMs: number;
  /** Click → a cell's result from the visitor's own kernel (the landing kernel the pool starts). */
  liveMs: number;
  error?: string;
}

/**
 * One visitor of a burst, over HTTP as a browser would go: POST "Try it", the workspace page on
 * their origin, the rendered index in its frame; then, as the rendered page does, wait for the
 * index's kernel (api/sessions) and run a cell in it. A waiting page counts with its place.
 */
async function burstVisitor(hub: Hub, address: string, form: { _csrf: string }, visitor: VisitorClient): Promise<BurstResult> {
  const t0 = performance.now();
  try {
    const r = await visitor.request('POST', '/hub/try', { form });
    if (r.status === 503) return { seen: `waiting page, place ${/id="try-position"[^>]*>(\d+)/.exec(r.body)?.[1] ?? '?'}`, renderedMs: performance.now() - t0, liveMs: NaN };
    if (r.status !== 303) throw new Error(`"Try it" answered ${r.status}`);
    const workspace = await visitor.openWorkspace();
    if (workspace.status !== 200) throw new Error(`workspace answered ${workspace.status} at ${workspace.path}`);
    const frame = /id="try-frame" src="([^"]+)"/.exec(workspace.body)?.[1] ?? '';
    const sample = await visitor.get(new URL(frame, workspace.url).href);
    if (sample.status !== 200 || !sample.body.includes('class="nb')) throw new Error(`rendered sample answered ${sample.status}`);
    const renderedMs = performance.now() - t0;
    const seen = workspace.body.includes('data-starting="true"') ? 'rendered sample, own server starting' : 'rendered sample, warm server';
    const { escaped_name: escapedName } = await visitor.me();
    const kernelId = await waitFor(
      'the landing kernel',
      async () => {
        const s = await visitor.get(`/user/${escapedName}/api/sessions`, { accept: 'application/json' });
        if (s.status !== 200) return undefined;
        return (JSON.parse(s.body) as { path: string; kernel?: { id: string } }[]).find((x) => x.path === 'samples/index.ipynb')?.kernel?.id;
      },
      (id) => id !== undefined,
      300_000,
      500,
    );
    const kernel = await KernelSocket.open(visitor, escapedName, kernelId!);
    try {
      await kernel.execute('print(1 + 1)', 120_000);
    } finally {
      kernel.ws.close();
    }
    return { seen, renderedMs, liveMs: performance.now() - t0 };
  } catch (err) {
    return { seen: 'error', renderedMs: NaN, liveMs: NaN, error: `${address}: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** --burst: N visitors click at once on a pool of --pool, with the default cap and per-address limits. */
async function burst(o: Options): Promise<void> {
  const load = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const hub = await startTestHub('bench-try-burst', { poolSize: o.pool, logLevel: 'warn' });
  try {
    await hub.samples.prepare();
    console.log(`waiting for ${o.pool} warm servers (cap ${hub.config.tryMaxServers})…`);
    await waitForReadyPool(hub, o.pool, 900_000);
    // Each visitor from an address of their own (as on the internet); the pages loaded first, so the burst is the clicks.
    const visitors = await Promise.all(
      Array.from({ length: o.burst }, async (_, i) => {
        const address = `10.7.${Math.floor(i / 250)}.${(i % 250) + 1}`;
        const visitor = new VisitorClient(hub.url, address);
        const page = await visitor.get('/hub/try');
        return { address, visitor, form: { _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '' } };
      }),
    );
    console.log(`load before the clicks: ${load()}`);
    const results = await Promise.all(visitors.map((v, i) => sleep(i * o.apartMs).then(() => burstVisitor(hub, v.address, v.form, v.visitor))));
    const kinds = new Map<string, number>();
    for (const r of results) kinds.set(r.seen.replace(/place \d+/, 'place N'), (kinds.get(r.seen.replace(/place \d+/, 'place N')) ?? 0) + 1);
    const rendered = results.map((r) => r.renderedMs).filter((x) => !Number.isNaN(x));
    const live = results.map((r) => r.liveMs).filter((x) => !Number.isNaN(x));
    const when = o.apartMs ? `${o.apartMs} ms apart` : 'at once';
    console.log(`\n${o.burst} visitors ${when} (pool ${o.pool}, cap ${hub.config.tryMaxServers}): ${[...kinds].map(([k, n]) => `${n}× ${k}`).join(', ')}`);
    console.log(`| the burst's visitors (HTTP, no browser) | p50 | the ${o.burst}th (slowest) |\n| --- | --- | --- |`);
    console.log(`| click → rendered sample received (or a place) | ${sec(median(rendered))} s | ${sec(Math.max(...rendered))} s |`);
    console.log(`| click → a cell's result from their own kernel | ${sec(median(live))} s | ${sec(Math.max(...live))} s |`);
    const errors = results.filter((r) => r.error);
    console.log(`errors: ${errors.length}${errors.length ? ` (${errors.map((e) => e.error).join('; ')})` : ''}; waiting pages: ${results.filter((r) => r.seen.startsWith('waiting')).length}`);
    console.log(`load after: ${load()}`);
    for (const v of visitors) await v.visitor.endSession().catch(() => undefined);
  } finally {
    await hub.close();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const sec = (ms: number): string => (ms / 1000).toFixed(2);

function freeMemoryMb(): number {
  const m = /MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Math.round(os.freemem() / 1048576);
}

interface Session {
  visitor: VisitorClient;
  escapedName: string;
  kernel: KernelSocket;
}

/** Click "Try it" and go on until a first cell answers. Returns the session and the time it took. */
async function tryIt(hub: Hub, address: string): Promise<{ ms: number; session: Session }> {
  const visitor = new VisitorClient(hub.url, address);
  const page = await visitor.get('/hub/try');
  const form = { _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '' };
  const t0 = performance.now();
  const r = await visitor.request('POST', '/hub/try', { form });
  if (r.status !== 303) throw new Error(`"Try it" answered ${r.status}`);
  // The progress page (empty pool) follows the start; then the workspace page loads.
  await waitFor('the workspace page', async () => (await visitor.get('/hub/try/workspace')).status, (s) => s === 200, 120_000, 100);
  const lab = await visitor.openLab();
  if (lab.status !== 200) throw new Error(`JupyterLab answered ${lab.status}`);
  const { escaped_name: escapedName } = await visitor.me();
  const nb = await visitor.get(`/user/${escapedName}/api/contents/samples/index.ipynb?content=0`, { accept: 'application/json' });
  if (nb.status !== 200) throw new Error('no samples');
  const kernel = await KernelSocket.open(visitor, escapedName, await startKernel(visitor, escapedName));
  await kernel.execute('print(1 + 1)', 60_000);
  return { ms: performance.now() - t0, session: { visitor, escapedName, kernel } };
}

async function end(s: Session): Promise<void> {
  s.kernel.ws.close();
  await s.visitor.endSession();
}

const COMPUTATION = 'import numpy as np\nx = np.random.default_rng(0).random((400, 400))\nfor _ in range(6): x = (x @ x.T) / 400\nprint(round(float(x.sum()), 3))';

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const cpus = os.cpus().length;
  console.log(`# "Try it" benchmark: ${cpus} cores, ${Math.round(os.totalmem() / 1048576)} MB RAM, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, runs=${o.runs}`);
  if (o.burst) return burst(o);

  const common = { tryMaxPerAddress: 1000, tryStartsPerAddress: 100000, logLevel: 'warn' };
  const warm = await startTestHub('bench-try-warm', { ...common, poolSize: 1, poolMaxStarting: 1, tryMaxServers: 3 });
  const empty = await startTestHub('bench-try-empty', { ...common, poolSize: 0, tryMaxServers: 3 });
  const warmMs: number[] = [];
  const emptyMs: number[] = [];
  try {
    for (let i = 0; i < o.runs; i++) {
      await waitForReadyPool(warm, 1);
      const w = await tryIt(warm, `10.2.0.${i + 1}`);
      warmMs.push(w.ms);
      await end(w.session);
      await waitForReadyPool(warm, 1);
      const e = await tryIt(empty, `10.3.0.${i + 1}`);
      emptyMs.push(e.ms);
      await end(e.session);
      console.log(`run ${i + 1}: warm ${sec(w.ms)} s, empty ${sec(e.ms)} s`);
    }
  } finally {
    await warm.close();
    await empty.close();
  }
  console.log('\n| pool | runs | median s | min s | max s |\n| --- | --- | --- | --- | --- |');
  console.log(`| warm (poolSize 1) | ${warmMs.length} | ${sec(median(warmMs))} | ${sec(Math.min(...warmMs))} | ${sec(Math.max(...warmMs))} |`);
  console.log(`| empty (poolSize 0) | ${emptyMs.length} | ${sec(median(emptyMs))} | ${sec(Math.min(...emptyMs))} | ${sec(Math.max(...emptyMs))} |`);
  console.log(`\nwarm is ${(median(emptyMs) / median(warmMs)).toFixed(1)}× faster than empty\n`);

  // Concurrent sessions, each computing.
  const hub = await startTestHub('bench-try-many', { ...common, poolSize: 0, tryMaxServers: o.max });
  const sessions: Session[] = [];
  console.log('| sessions | median s of one computation (all at once) | max s | free MB |\n| --- | --- | --- | --- |');
  let held = 0;
  try {
    for (let n = 1; n <= o.max; n++) {
      try {
        sessions.push((await tryIt(hub, `10.4.0.${n}`)).session);
      } catch (err) {
        console.log(`session ${n} could not start: ${(err as Error).message}`);
        break;
      }
      const times = await Promise.all(
        sessions.map(async (s) => {
          const t0 = performance.now();
          await s.kernel.execute(COMPUTATION, 120_000);
          return performance.now() - t0;
        }),
      );
      const free = freeMemoryMb();
      console.log(`| ${n} | ${sec(median(times))} | ${sec(Math.max(...times))} | ${free} |`);
      held = n;
      if (median(times) > o.limitMs || free < 300) break;
      await sleep(200);
    }
  } finally {
    for (const s of sessions) await end(s).catch(() => undefined);
    await hub.close();
  }
  console.log(`\nheld ${held} concurrent sessions with the median computation under ${sec(o.limitMs)} s (or until the --max of ${o.max})`);
}

main().catch((err: Error) => {
  console.error(err);
  process.exitCode = 1;
});
