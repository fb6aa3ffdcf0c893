/**
 * JupyterLab's build across workspaces (issue 14, "static assets at the floor"), in Chromium.
 *
 * A "Try it" visitor opens JupyterLab ("Edit and run" on the rendered index), ends the session,
 * and comes back: a new workspace on a new origin. Timed from the "Edit and run" click to the
 * notebook drawn with its kernel idle, first and second visit, in one browser profile, with the
 * hub serving JupyterLab's build (labStaticFromHub, the default) and, as the reference in the
 * same run, with each server serving its own (labStaticFromHub=false). Hosts are a deployment's
 * (hub.example.edu, *.apps.example.edu: one site, so Chromium keeps one cache for them), mapped
 * to 127.0.0.1; nothing else resolves. Prints results; asserts nothing.
 *
 *   node --import tsx bench/lab-static.ts [--runs=3]
 */
import os from 'node:os';
import type { BrowserContext } from 'playwright-core';
import type { Hub } from '../server/index.js';
import { launchBrowser } from '../test/helpers/browser.js';
import { SAME_SITE, tryVisitInLab } from '../test/helpers/lab-visit.js';
import { startTestHub } from '../test/helpers/hub.js';
import { freePort } from '../test/helpers/ports.js';
import { waitForReadyPool } from '../test/helpers/try.js';

const { hubHost: HUB_HOST, contentDomain: CONTENT_DOMAIN, resolverFlag: RESOLVER } = SAME_SITE;

const runs = Number(/^--runs=(\d+)$/.exec(process.argv[2] ?? '')?.[1] ?? 3);

interface Visit {
  /** "Edit and run" → the notebook drawn, kernel idle. */
  ms: number;
  /** Bytes of JupyterLab's files over the wire (0 for a file from the browser cache). */
  bytes: number;
  files: number;
}

async function visit(context: BrowserContext, hubUrl: string): Promise<Visit> {
  const { labMs, files } = await tryVisitInLab(context, hubUrl);
  return { ms: labMs, bytes: files.reduce((a, f) => a + f.bodyBytes, 0), files: files.length };
}

async function startHub(labStaticFromHub: boolean): Promise<{ hub: Hub; url: string }> {
  const port = await freePort();
  const url = `http://${HUB_HOST}:${port}`;
  const hub = await startTestHub(`bench-lab-static-${labStaticFromHub}`, { port, publicUrl: url, userContentDomain: CONTENT_DOMAIN, poolSize: 1, tryMaxServers: 3, logLevel: 'warn', labStaticFromHub });
  await hub.samples.prepare();
  return { hub, url };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sec = (ms: number): string => (ms / 1000).toFixed(2);
const kib = (b: number): string => String(Math.round(b / 1024));

async function main(): Promise<void> {
  console.log(`# JupyterLab's build across "Try it" workspaces, in Chromium: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, runs=${runs}`);
  const hubs = { shared: await startHub(true), own: await startHub(false) };
  const browser = await launchBrowser([RESOLVER]);
  const results: Record<keyof typeof hubs, { first: Visit[]; second: Visit[] }> = { shared: { first: [], second: [] }, own: { first: [], second: [] } };
  try {
    for (let i = 0; i < runs; i++) {
      // Interleaved, so both see the same machine.
      for (const kind of ['shared', 'own'] as const) {
        const { hub, url } = hubs[kind];
        await waitForReadyPool(hub, 1, 180_000);
        const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
        try {
          const first = await visit(context, url);
          await waitForReadyPool(hub, 1, 180_000);
          const second = await visit(context, url);
          results[kind].first.push(first);
          results[kind].second.push(second);
          console.log(`run ${i + 1} ${kind}: first ${sec(first.ms)} s (${kib(first.bytes)} KiB), second workspace ${sec(second.ms)} s (${kib(second.bytes)} KiB, ${second.files} files)`);
        } finally {
          await context.close();
        }
      }
    }
  } finally {
    await browser.close();
    await hubs.shared.hub.close();
    await hubs.own.hub.close();
  }
  const row = (label: string, v: Visit[]): string => `| ${label} | ${sec(median(v.map((x) => x.ms)))} s | ${kib(median(v.map((x) => x.bytes)))} KiB |`;
  console.log('\n| "Edit and run" → notebook drawn, kernel idle | p50 | JupyterLab\'s files over the wire |');
  console.log('| --- | --- | --- |');
  console.log(row('each server serves its own: first workspace', results.own.first));
  console.log(row('each server serves its own: second workspace', results.own.second));
  console.log(row('the hub serves the build: first workspace', results.shared.first));
  console.log(row('the hub serves the build: second workspace', results.shared.second));
  const ratio = median(results.shared.second.map((x) => x.ms)) / median(results.own.second.map((x) => x.ms));
  console.log(`\nsecond workspace, hub's build vs each server's own: ${ratio.toFixed(2)}× the time`);
  console.log(`load after: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
