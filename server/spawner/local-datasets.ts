import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LocalDataset } from '../config/datasets-schema.js';
import { SpawnFailed } from '../errors.js';
import type { Logger } from '../log.js';
import type { UnixAccount } from './unix-accounts.js';

const run = promisify(execFile);

/**
 * Local spawner: the datasets the hub chose for this start (a course's, `spec.datasets`) as
 * links in `<home>/datasets/`, and (with Unix-account isolation) the account's read-only ACL
 * entries (r-X, recursive, and as defaults) on their folders. Read-only is the kernel's check:
 * the account has no write entry, so a write fails with "Permission denied". Datasets of this
 * hub that the start did not choose lose their link and the account's ACL entry, so a student
 * reads a course's data only in a server started for that course.
 */
export async function linkDatasets(home: string, all: readonly LocalDataset[], wanted: readonly string[], account: UnixAccount | undefined, log: Logger): Promise<void> {
  const chosen = all.filter((d) => wanted.includes(d.name));
  const dir = path.join(home, 'datasets');
  if (account) {
    for (const d of all) if (!wanted.includes(d.name)) await revoke(d, account, log);
  }
  const st = await fs.lstat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) {
    // Never replace (or follow) something of the student's own at that name.
    if (chosen.length) throw new SpawnFailed('Something in your home is named "datasets" and is not a folder, so the course\'s data can\'t be put there. Rename it, then start again.', `${dir} is not a directory`);
    return;
  }
  if (!st) {
    if (!chosen.length) return;
    await fs.mkdir(dir, { mode: 0o755 });
    if (account) await fs.lchown(dir, account.uid, account.gid);
  }
  for (const d of all) {
    const link = path.join(dir, d.name);
    const existing = await fs.lstat(link).catch(() => undefined);
    // Only our own links (to that dataset's folder) are replaced or removed; a student's file of that name stays.
    const ours = existing?.isSymbolicLink() && (await fs.readlink(link)) === d.source;
    if (existing && !ours) {
      if (wanted.includes(d.name)) log.warn({ dataset: d.name, link }, 'a file of the student is where a dataset link goes; left alone');
      continue;
    }
    if (!wanted.includes(d.name)) {
      if (ours) await fs.rm(link, { force: true });
      continue;
    }
    if (account) await grant(d, account);
    await warnIfOpen(d, log);
    if (!ours) {
      await fs.symlink(d.source, link);
      if (account) await fs.lchown(link, account.uid, account.gid);
    }
    log.info({ dataset: d.name }, 'dataset linked into the home (read-only)');
  }
}

/**
 * Before an account is removed: its ACL entries on every dataset go, so a later account that is
 * given the same uid never inherits a course's data. A dataset that can't be cleaned is logged
 * (the delete goes on: the account's files are what the admin asked to remove).
 */
export async function revokeAllDatasets(all: readonly LocalDataset[], account: UnixAccount, log: Logger): Promise<void> {
  for (const d of all) {
    try {
      await revoke(d, account, log);
    } catch (err) {
      log.warn({ dataset: d.name, account: account.name, err: (err as Error).message }, 'could not remove a removed account\'s access to a dataset; remove it by hand (setfacl -R -x)');
    }
  }
}

async function grant(d: LocalDataset, account: UnixAccount): Promise<void> {
  try {
    // -P: never through a symbolic link inside the dataset (skipped, not followed).
    await run('setfacl', ['-R', '-P', '-m', `u:${account.uid}:r-X,d:u:${account.uid}:r-X`, d.source]);
  } catch (err) {
    throw new SpawnFailed(`The hub could not give you the dataset ${d.name}. Please tell your teacher.`, `setfacl on ${d.source} for ${account.name}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
}

/** Remove the account's ACL entries from a dataset it had been given, if it has any (a cheap check first: datasets are big). */
async function revoke(d: LocalDataset, account: UnixAccount, log: Logger): Promise<void> {
  let acl: string;
  try {
    acl = (await run('getfacl', ['-n', '-p', '--omit-header', d.source])).stdout;
  } catch {
    return;
  }
  if (!new RegExp(`^(default:)?user:${account.uid}:`, 'm').test(acl)) return;
  try {
    await run('setfacl', ['-R', '-P', '-x', `u:${account.uid},d:u:${account.uid}`, d.source]);
    log.info({ dataset: d.name, account: account.name }, 'dataset access removed');
  } catch (err) {
    throw new SpawnFailed('The hub could not prepare your server.', `setfacl -x on ${d.source} for ${account.name}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
}

/** A dataset folder every account may enter is every local server's: say so (once per start). */
async function warnIfOpen(d: LocalDataset, log: Logger): Promise<void> {
  const st = await fs.stat(d.source).catch(() => undefined);
  if (!st) throw new SpawnFailed('A course dataset is missing on this hub. Please tell your teacher.', `local dataset ${d.name}: ${d.source} does not exist`);
  if (st.mode & 0o005) log.warn({ dataset: d.name, source: d.source }, 'dataset folder is open to every account: every local server can read it, not only its course\'s (make it 0750)');
}
