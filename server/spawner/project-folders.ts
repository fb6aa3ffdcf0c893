import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { SpawnFailed } from '../errors.js';
import type { ProjectMount } from './spawner.js';
import type { UnixAccount } from './unix-accounts.js';

const run = promisify(execFile);
const PROJECT_LINK = /^P-[0-9]{1,8}(-datasets)?$/;

/**
 * Local spawner: the user's projects as links in `<home>/projects/`, and (with Unix-account
 * isolation) the account's ACL entries on each project's folders. Access is the kernel's
 * check of those ACLs on every open, so a member removed later loses the folder at once;
 * links of projects the user left are removed at the next start.
 */
export async function linkProjects(home: string, projects: readonly ProjectMount[], account: UnixAccount | undefined, log: Logger): Promise<void> {
  const dir = path.join(home, 'projects');
  if (!projects.length) {
    await removeStaleLinks(dir, new Set());
    return;
  }
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  if (account) await fs.lchown(dir, account.uid, account.gid);
  const wanted = new Set<string>();
  for (const p of projects) {
    if (account) {
      try {
        await run('setfacl', ['-m', `u:${account.uid}:r-x`, path.dirname(p.shared)]);
        // Recursively, so files made before this member joined are theirs to change too. -P: never
        // through a symbolic link a member planted (it is skipped, not followed; the project's
        // filesystem also can't hold hard links to files outside it).
        await run('setfacl', ['-R', '-P', '-m', `u:${account.uid}:rwX,d:u:${account.uid}:rwX`, p.shared]);
        await run('setfacl', ['-R', '-P', '-m', `u:${account.uid}:r-X,d:u:${account.uid}:r-X`, p.datasets]);
      } catch (err) {
        throw new SpawnFailed(`The hub could not give you project ${p.number}'s folder.`, `setfacl for ${account.name}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
      }
    }
    for (const [name, target] of [[p.number, p.shared], [`${p.number}-datasets`, p.datasets]] as const) {
      wanted.add(name);
      const link = path.join(dir, name);
      await fs.rm(link, { force: true }).catch(() => undefined);
      await fs.symlink(target, link);
      if (account) await fs.lchown(link, account.uid, account.gid);
    }
    log.info({ project: p.number }, 'project folder linked into the home');
  }
  await removeStaleLinks(dir, wanted);
}

async function removeStaleLinks(dir: string, wanted: ReadonlySet<string>): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isSymbolicLink() && PROJECT_LINK.test(e.name) && !wanted.has(e.name)) await fs.rm(path.join(dir, e.name), { force: true });
}
