import { createHook } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Root hooks of every test run (registered in .mocharc.json). mocha no longer force-exits
 * (`exit: true` is gone), so a server, socket, child process or timer a test or the hub forgot
 * to close would keep the run from ever ending. Instead, after the last test the run fails,
 * naming what was left behind, and then exits.
 */

// Resources that keep the event loop alive, by type ("TCPSocketWrap", "Timeout", ...).
function resources(): string[] {
  return process.getActiveResourcesInfo();
}

/** What `after` has beyond `before`, as a multiset: ["Timeout x2", "TCPServerWrap"]. */
function beyond(before: readonly string[], after: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const r of after) left.set(r, (left.get(r) ?? 0) + 1);
  for (const r of before) if (left.has(r)) left.set(r, left.get(r)! - 1);
  return [...left].filter(([, n]) => n > 0).map(([r, n]) => (n > 1 ? `${r} x${n}` : r));
}

/** A line about each open handle, for the failure message (Node's handle list has no public API). */
function describeHandles(): string[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles.flatMap((h) => {
    if (h === process.stdout || h === process.stderr || h === process.stdin) return [];
    const o = h as { constructor?: { name?: string }; remoteAddress?: string; remotePort?: number; localPort?: number; address?: () => unknown; pid?: number; spawnfile?: string };
    const name = o.constructor?.name ?? typeof h;
    if (typeof o.pid === 'number') return [`${name} pid ${o.pid} (${o.spawnfile ?? '?'})`];
    if (o.remoteAddress) return [`${name} ${o.localPort ?? '?'} -> ${o.remoteAddress}:${o.remotePort ?? '?'}`];
    if (typeof o.address === 'function') return [`${name} ${JSON.stringify(o.address())}`];
    return [name];
  });
}

// Where each live timer was made, so a leaked one can be named (timers are no handles).
const timers = new Map<number, { stack: string; timer: { hasRef?: () => boolean } }>();
const timerHook = createHook({
  init(id, type, _trigger, resource) {
    if (type !== 'Timeout') return;
    // Node's own frames come first; keep enough to reach the caller's.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 30;
    // Without this init function's own frame, which is in this file.
    const stack = (new Error().stack ?? '').split('\n').filter((l) => !l.includes('AsyncHook.init')).join('\n');
    Error.stackTraceLimit = limit;
    timers.set(id, { stack, timer: resource as { hasRef?: () => boolean } });
  },
  destroy(id) {
    timers.delete(id);
  },
});

/** Where the timers that still keep Node alive were made: the first frames outside Node and mocha. */
function describeTimers(): string[] {
  return [...timers.values()].flatMap((t) => {
    // The hook's own timers, and the one mocha keeps for the hook that is running, don't count.
    if (t.timer.hasRef?.() !== true || t.stack.includes('test/hooks.ts:') || t.stack.includes('Runnable.resetTimeout')) return [];
    const all = t.stack
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => !/node_modules\/mocha\/|test\/hooks\.ts|node:internal\/async_hooks/.test(l));
    const ours = all.filter((l) => !/node:|\(<anonymous>\)/.test(l));
    // A timer Node made for itself (a socket's, an agent's) has only Node's frames: show those.
    return [`Timeout made ${(ours.length ? ours : all).slice(0, 4).join(' < ')}`];
  });
}

let baseline: string[] = [];
// Closing sockets and exiting children finish a moment after their close() resolves.
const SETTLE_MS = 10_000;

/**
 * What is left open: handles and requests by type (beyond those open before the first test),
 * and timers by where they were made. Node's own count of timers is not used: mocha's timer for
 * this very hook is in it, and it can't say which timer is which.
 */
function leftOpen(): string[] {
  return [...beyond(baseline, resources().filter((r) => r !== 'Timeout')), ...describeTimers()];
}

export const mochaHooks = {
  beforeAll(): void {
    timerHook.enable();
    baseline = resources();
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(SETTLE_MS + 10_000);
    let leaked = leftOpen();
    for (const until = Date.now() + SETTLE_MS; leaked.length && Date.now() < until; leaked = leftOpen()) await sleep(100);
    if (!leaked.length) return;
    const details = describeHandles();
    // Leaked handles would keep this process alive forever: leave once the failure is reported.
    setTimeout(() => process.exit(process.exitCode || 1), 2_000).unref();
    throw new Error(`The tests left resources open that keep Node running:\n  ${[...leaked, ...details].join('\n  ')}`);
  },
};
