/**
 * Where a `node --cpu-prof` profile's time went: self time by function, and total (inclusive)
 * time of the hub's proxy functions, as shares of the sampled time. Used for BENCHMARKS.md:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --expose-gc --import tsx bench/proxy.ts --targets=hub --rounds=1
 *   node --import tsx bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile [--top=40]
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 40);
const files = args.filter((a) => !a.startsWith('--'));
if (!files.length) {
  console.error('usage: bench/profile-summary.ts PROFILE.cpuprofile [--top=40]');
  process.exit(2);
}
// The biggest profile is the main thread's.
const file = files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
const label = (n: ProfileNode): string => {
  const f = n.callFrame;
  const where = f.url ? `${path.basename(f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
};
let total = 0;
let idle = 0;
const selfBy = new Map<string, number>();
const totalBy = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  total += us;
  if (n.callFrame.functionName === '(idle)') idle += us;
  const l = label(n);
  selfBy.set(l, (selfBy.get(l) ?? 0) + us);
  // Inclusive: once per distinct function on the stack.
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const k = label(byId.get(at)!);
    if (seen.has(k)) continue;
    seen.add(k);
    totalBy.set(k, (totalBy.get(k) ?? 0) + us);
  }
}
const busy = total - idle;
const pct = (us: number): string => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy; shares are of busy time`);
console.log('\nself time:');
for (const [k, us] of [...selfBy].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
console.log('\ntotal time of functions in server/ and http-proxy-3:');
for (const [k, us] of [...totalBy].filter(([k]) => /hub-proxy|session-check|origins|route-table|server-cookie|front-door|user-path|activity|index\.ts|http-proxy-3|web-incoming|web-outgoing|common\.|_http_|^emit |^write /.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
