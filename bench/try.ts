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
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { runs: 5, max: 16, limitMs: 2000 };
  for (const arg of argv) {
    const m = /^--(runs|max|limit-ms)=(\d+)$/.exec(arg);
    if (!m) throw new Error(`unknown option ${arg} (--runs=N, --max=N, --limit-ms=N)`);
    const v = Math.max(1, Number.parseInt(m[2]!, 10));
    if (m[1] === 'runs') o.runs = v;
    else if (m[1] === 'max') o.max = v;
    else o.limitMs = v;
  }
  return o;
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
  console.log(`# "Try it" benchmark: ${cpus} cores, ${Math.round(os.totalmem() / 1048576)} MB RAM, runs=${o.runs}`);

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
