import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SpawnFailed } from '../errors.js';
import type { Logger } from '../log.js';
import { isEscapedName } from '../names.js';
import { USERADD, USERDEL } from './local-isolation.js';

const run = promisify(execFile);

/** One Unix account that runs one user's notebook server. */
export interface UnixAccount {
  /** Login name, e.g. `oh-jdoe`. */
  name: string;
  uid: number;
  gid: number;
}

/** What accounts/<escapedName>.json holds: which account belongs to which hub user. */
interface AccountRecord extends UnixAccount {
  escapedName: string;
  ephemeral: boolean;
}

export interface UnixAccountsOptions {
  /** The hub's data folder; the mapping lives in <dataDir>/accounts (0700, root). */
  dataDir: string;
  log: Logger;
}

/** Linux's (and useradd's) limit on login names. */
const MAX_ACCOUNT_NAME = 32;
const PREFIX = 'oh-';
/** Written into the account's comment field, so the hub never takes over an account it did not make. */
const COMMENT_PREFIX = 'oerhub server ';
/** useradd exit code: /etc/passwd is locked by another useradd (ours or the system's). */
const EXIT_LOCKED = 10;
/** useradd exit code: the name is taken. */
const EXIT_NAME_IN_USE = 9;
/** userdel exit code: the user still has processes. */
const EXIT_USER_BUSY = 8;
const LOCK_RETRIES = 5;
const NOLOGIN_SHELLS = ['/usr/sbin/nologin', '/sbin/nologin', '/bin/false'];

/**
 * The account name of a hub user: `oh-` + the escaped name when that fits 32 characters, else
 * `oh_` + its first 16 characters + `_` + 12 hex digits of a SHA-256. Escaped names never hold
 * `_`, so the two forms can't collide. Always a valid useradd name ([a-z][-a-z0-9_]*).
 */
export function accountNameOf(escapedName: string): string {
  if (!isEscapedName(escapedName)) throw new Error(`not an escaped name: ${escapedName}`);
  const plain = PREFIX + escapedName;
  if (plain.length <= MAX_ACCOUNT_NAME) return plain;
  const hash = createHash('sha256').update(escapedName, 'utf8').digest('hex').slice(0, 12);
  return `oh_${escapedName.slice(0, 16)}_${hash}`;
}

/**
 * Creates, finds and removes the unprivileged Unix accounts the local spawner runs servers as
 * (the way The Littlest JupyterHub makes one system user per hub user). Needs root. Accounts
 * are system accounts with a nologin shell, a group of their own and no files outside the
 * home the spawner gives them. Persistent users keep their account (and uid) for good;
 * accounts of ephemeral ("Try it") servers are removed once their server is gone, since
 * system uids are few (100-999).
 *
 * useradd and userdel lock /etc/passwd, so this object runs them one at a time.
 */
export class UnixAccounts {
  private readonly dir: string;
  private readonly log: Logger;
  /** Serialises useradd/userdel of this hub; each call chains onto the previous one. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Accounts a start is using right now (before its server's state file exists). */
  private readonly busy = new Map<string, number>();

  constructor(options: UnixAccountsOptions) {
    this.dir = path.join(path.resolve(options.dataDir), 'accounts');
    this.log = options.log;
  }

  /**
   * The account of this user, created if missing, with `home` as its home in /etc/passwd.
   * Marks it busy until `release` so reapEphemeral leaves it alone. Throws SpawnFailed when
   * the name belongs to an account oerhub did not create, or useradd fails. Safe to repeat.
   */
  async acquire(escapedName: string, home: string, ephemeral: boolean): Promise<UnixAccount> {
    this.busy.set(escapedName, (this.busy.get(escapedName) ?? 0) + 1);
    try {
      return await this.serial(() => this.ensure(escapedName, home, ephemeral));
    } catch (err) {
      this.release(escapedName);
      throw err;
    }
  }

  /** Ends what `acquire` began: the start finished (its server has a state file now) or failed. */
  release(escapedName: string): void {
    const n = (this.busy.get(escapedName) ?? 1) - 1;
    if (n > 0) this.busy.set(escapedName, n);
    else this.busy.delete(escapedName);
  }

  /**
   * Removes the accounts of ephemeral servers that are gone: not busy here and not `isRunning`.
   * userdel refuses while a process of the account still runs; such an account is kept for the
   * next pass. Never throws (a failure is logged).
   */
  async reapEphemeral(isRunning: (escapedName: string) => Promise<boolean>): Promise<void> {
    let files: string[];
    try {
      files = await fs.readdir(this.dir);
    } catch {
      return;
    }
    for (const file of files) {
      const escapedName = file.endsWith('.json') ? file.slice(0, -'.json'.length) : '';
      if (!isEscapedName(escapedName) || this.busy.has(escapedName)) continue;
      const record = await this.readRecord(escapedName);
      if (!record?.ephemeral || (await isRunning(escapedName))) continue;
      await this.serial(async () => {
        if (this.busy.has(escapedName)) return;
        const code = await exitCode(USERDEL, [record.name]);
        if (code === EXIT_USER_BUSY) return;
        // 6: no such user any more, which is what we wanted.
        if (code !== 0 && code !== 6) {
          this.log.warn({ account: record.name, code }, 'could not remove the account of an ephemeral server');
          return;
        }
        await fs.rm(this.recordPath(escapedName), { force: true });
        this.log.info({ escapedName, account: record.name }, 'removed the account of an ephemeral server');
      }).catch((err: Error) => this.log.warn({ err: err.message, account: record.name }, 'could not remove an ephemeral account'));
    }
  }

  /**
   * Remove the account of a deleted user (userdel, without its home: the caller decides about
   * files) and its record. Only an account this hub made for this user. Returns its name, or
   * undefined when there was none. Throws SpawnFailed when userdel refuses (a process of the
   * account still runs). Safe to repeat.
   */
  async remove(escapedName: string): Promise<string | undefined> {
    const account = await this.existing(escapedName);
    if (!account) {
      await fs.rm(this.recordPath(escapedName), { force: true });
      return undefined;
    }
    return this.serial(async () => {
      const { code, stderr } = await runTool(USERDEL, [account.name]);
      // 6: no such user any more, which is what we wanted.
      if (code !== 0 && code !== 6) throw new SpawnFailed('The hub could not remove the account the server ran as.', `userdel ${account.name} exited ${code}: ${stderr.trim()}`);
      await fs.rm(this.recordPath(escapedName), { force: true });
      this.log.info({ escapedName, account: account.name, uid: account.uid }, 'removed the Unix account of a deleted user');
      return account.name;
    });
  }

  /** The account this hub made for this user, if it still exists as recorded (never creates one). */
  async existing(escapedName: string): Promise<UnixAccount | undefined> {
    if (!isEscapedName(escapedName)) return undefined;
    const record = await this.readRecord(escapedName);
    if (!record) return undefined;
    const found = await lookup(record.name);
    if (!found || found.uid !== record.uid || found.comment !== COMMENT_PREFIX + escapedName) return undefined;
    return { name: record.name, uid: record.uid, gid: record.gid };
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async ensure(escapedName: string, home: string, ephemeral: boolean): Promise<UnixAccount> {
    const name = accountNameOf(escapedName);
    const comment = COMMENT_PREFIX + escapedName;
    let found = await lookup(name);
    if (!found) {
      const shell = await firstExisting(NOLOGIN_SHELLS);
      const args = ['--system', '--user-group', '--no-create-home', '--home-dir', home, '--shell', shell, '--comment', comment, name];
      for (let attempt = 1; ; attempt++) {
        const { code, stderr } = await runTool(USERADD, args);
        if (code === 0 || code === EXIT_NAME_IN_USE) break;
        if (code === EXIT_LOCKED && attempt < LOCK_RETRIES) {
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
          continue;
        }
        throw new SpawnFailed('The hub could not create the account your server runs as.', `useradd ${name} exited ${code}: ${stderr.trim()}`);
      }
      found = await lookup(name);
      if (!found) throw new SpawnFailed('The hub could not create the account your server runs as.', `useradd ${name} succeeded but getent does not know it`);
      this.log.info({ escapedName, account: name, uid: found.uid }, 'created a Unix account for a notebook server');
    }
    if (found.comment !== comment) {
      throw new SpawnFailed('The hub could not prepare your server.', `Unix account ${name} exists but was not created by oerhub for ${escapedName} (comment ${JSON.stringify(found.comment)}); remove or rename it`);
    }
    if (found.uid === 0 || found.gid === 0) throw new SpawnFailed('The hub could not prepare your server.', `Unix account ${name} has uid or gid 0`);
    const account: UnixAccount = { name, uid: found.uid, gid: found.gid };
    await this.writeRecord({ ...account, escapedName, ephemeral });
    return account;
  }

  private recordPath(escapedName: string): string {
    return path.join(this.dir, `${escapedName}.json`);
  }

  private async readRecord(escapedName: string): Promise<AccountRecord | undefined> {
    try {
      const value = JSON.parse(await fs.readFile(this.recordPath(escapedName), 'utf8')) as Partial<AccountRecord>;
      if (typeof value.name !== 'string' || typeof value.uid !== 'number' || typeof value.gid !== 'number') return undefined;
      return { name: value.name, uid: value.uid, gid: value.gid, escapedName, ephemeral: value.ephemeral === true };
    } catch {
      return undefined;
    }
  }

  private async writeRecord(record: AccountRecord): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.recordPath(record.escapedName);
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await fs.rename(tmp, file);
  }
}

interface PasswdEntry {
  uid: number;
  gid: number;
  comment: string;
}

/** The passwd entry of `name` (through NSS, as login would see it), or undefined. */
async function lookup(name: string): Promise<PasswdEntry | undefined> {
  const { code, stdout } = await runTool('getent', ['passwd', name]);
  // 2: no such key.
  if (code !== 0) return undefined;
  const fields = stdout.trim().split(':');
  if (fields.length < 7 || fields[0] !== name) return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { uid, gid, comment: fields[4] ?? '' };
}

async function runTool(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { timeout: 30_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code === 'number') return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    throw new SpawnFailed('The hub could not prepare your server.', `${file} could not run: ${e.message}`);
  }
}

async function exitCode(file: string, args: string[]): Promise<number> {
  return (await runTool(file, args)).code;
}

async function firstExisting(files: string[]): Promise<string> {
  for (const file of files) {
    try {
      await fs.access(file);
      return file;
    } catch {
      // next
    }
  }
  return '/bin/false';
}

/**
 * Makes `home` belong to `account`, mode 0700. A home that another uid owns (made by an older,
 * unisolated hub as root, or before the account was recreated) is handed over file by file;
 * symbolic links are not followed and files with several hard links are skipped, so nothing
 * outside the home can be given away through it.
 */
export async function giveHome(home: string, account: UnixAccount, log: Logger): Promise<void> {
  const stat = await fs.lstat(home);
  if (!stat.isDirectory()) throw new SpawnFailed('The hub could not prepare your home folder.', `${home} is not a folder`);
  if (stat.uid !== account.uid || stat.gid !== account.gid) {
    log.info({ home, account: account.name, fromUid: stat.uid }, 'handing a home folder over to its account');
    await chownTree(home, account, log);
  }
  await fs.chmod(home, 0o700);
}

async function chownTree(dir: string, account: UnixAccount, log: Logger): Promise<void> {
  await fs.lchown(dir, account.uid, account.gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      await chownTree(full, account, log);
      continue;
    }
    const stat = await fs.lstat(full);
    if (!entry.isSymbolicLink() && stat.nlink > 1) {
      log.warn({ file: full }, 'not handing over a file with several hard links');
      continue;
    }
    await fs.lchown(full, account.uid, account.gid);
  }
}
