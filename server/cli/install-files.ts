import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** How one step of `oerhub install` went: `changed` made a change, `unchanged` found it done. */
export interface StepResult {
  readonly step: string;
  readonly outcome: 'changed' | 'unchanged';
  readonly detail: string;
}

/** Where the installer writes, and whether it only says what it would do. */
export interface InstallTarget {
  /** Prefix of every path written ('/' for the machine itself). */
  readonly root: string;
  readonly dryRun: boolean;
}

/** A path of the target machine under the install root. */
export function under(target: InstallTarget, p: string): string {
  return target.root === '/' ? p : path.join(target.root, p);
}

/**
 * Writes a file only when its content, mode or owner differ, so a second run changes nothing.
 * Returns whether it changed. Parents are made 0755 (root-owned system folders).
 */
export function ensureFile(target: InstallTarget, file: string, content: string | Buffer, mode: number, owner?: { uid: number; gid: number }): boolean {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  let same = false;
  try {
    const st = fs.statSync(file);
    same = (st.mode & 0o777) === mode && fs.readFileSync(file).equals(data) && (!owner || (st.uid === owner.uid && st.gid === owner.gid));
  } catch {
    same = false;
  }
  if (same) return false;
  if (target.dryRun) return true;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  // Written next to it and renamed: a crash never leaves half a config.
  const temp = `${file}.oerhub-new`;
  fs.writeFileSync(temp, data, { mode });
  fs.chmodSync(temp, mode);
  if (owner) fs.chownSync(temp, owner.uid, owner.gid);
  fs.renameSync(temp, file);
  return true;
}

/** Makes a folder with this mode (and owner) unless it already is so. Returns whether it changed. */
export function ensureDir(target: InstallTarget, dir: string, mode: number, owner?: { uid: number; gid: number }): boolean {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    st = undefined;
  }
  if (st && (st.mode & 0o777) === mode && (!owner || (st.uid === owner.uid && st.gid === owner.gid))) return false;
  if (target.dryRun) return true;
  // Parents are system folders (/run, /var/lib): passable by every service account.
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chmodSync(dir, mode);
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return true;
}

/** A system account's uid and gid, if it exists (www-data, redis). */
export function account(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , uid, gid] = line.split(':');
      if (user === name) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // No /etc/passwd: no such account.
  }
  return undefined;
}

/** Runs a program; resolves with its exit code and output (never rejects). */
export function sh(cmd: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: options.timeoutMs ?? 1_800_000, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: options.env, cwd: options.cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

/** Whether systemd runs this machine (its runtime folder exists), as sd_booted() decides. */
export function systemdRuns(): boolean {
  return fs.existsSync('/run/systemd/system');
}
