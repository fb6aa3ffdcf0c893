import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD } from './hub.js';
import { notebookVenv } from './venv.js';

/*
 * The real hub program (`node dist/server/main.js`) as a child process, the way an operator
 * runs it, and its Jupyter processes found by pid in /proc (never by asking the hub, which is
 * the thing under test). Used by the restart test and the fault suite.
 */

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO_ROOT, 'dist', 'server', 'main.js');
const OUTPUT = path.join(REPO_ROOT, 'test-output');

/** Waits for `check` to hold, up to `limitMs` (a bound for "soon", not a speed requirement). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, limitMs = 120_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`never happened within ${limitMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The real hub program (`node dist/server/main.js`), as an operator runs it. */
export interface HubProcess {
  readonly child: ChildProcess;
  output(): string;
}

/** The environment of a hub program on this port and data folder (local spawner, SQLite by default). */
export function hubEnv(port: number, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OERHUB_PORT: String(port),
    OERHUB_DATA_DIR: dataDir,
    OERHUB_NOTEBOOK_VENV: notebookVenv(),
    OERHUB_ADMIN_PASSWORD: ADMIN_PASSWORD,
    OERHUB_LOG_LEVEL: 'info',
    OERHUB_POOL_SIZE: '0',
    ...extra,
  };
}

/** Start the hub program and wait until it says it runs (`waitForRunning: false`: return at once). */
export async function startHubProcess(label: string, env: Record<string, string>, options: { waitForRunning?: boolean } = {}): Promise<HubProcess> {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first with npx tsc -p tsconfig.json (npm test does)`);
  fs.mkdirSync(OUTPUT, { recursive: true });
  const logFile = path.join(OUTPUT, `${label}.log`);
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    // Only what the hub needs: any other OERHUB_* variable of the test process would be refused.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    fs.appendFileSync(logFile, chunk);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const hub = { child, output: () => output };
  if (options.waitForRunning !== false) await untilRunning(hub, label);
  return hub;
}

/** Wait until the hub program says it runs; throws with its output if it exits first. */
export async function untilRunning(hub: HubProcess, label: string): Promise<void> {
  await eventually(`${label} says it runs`, () => {
    if (hub.child.exitCode !== null) throw new Error(`${label} exited (${hub.child.exitCode}):\n${hub.output()}`);
    return hub.output().includes('oerhub is running');
  });
}

/** Signal the hub program and wait for it to exit; returns its exit code (null when killed). */
export async function stopHubProcess(hub: HubProcess, signal: NodeJS.Signals): Promise<number | null> {
  const { child } = hub;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }
  return child.exitCode;
}

/** The pid in the local spawner's state file for this user. */
export function serverPid(dataDir: string, escapedName: string): number {
  const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'servers', `${escapedName}.json`), 'utf8')) as { pid: number };
  return state.pid;
}

/** Every live Jupyter process serving a folder under dataDir (optionally only this user's home), found in /proc. */
export function jupyterPids(dataDir: string, escapedName?: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const args = cmdline.split('\0');
    const mine =
      escapedName === undefined
        ? (a: string) => a.startsWith(`--ServerApp.root_dir=${dataDir}/`)
        : (a: string) => a === `--ServerApp.root_dir=${path.join(dataDir, 'homes', escapedName)}`;
    if (args.some(mine) && isAlive(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

/** Kill every Jupyter left under dataDir (a failed case's cleanup) and remove the folder. */
export function reapDataDir(dataDir: string): void {
  for (const pid of jupyterPids(dataDir)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}
