import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SpawnFailed } from '../errors.js';
import type { ProjectMount } from './spawner.js';

const run = promisify(execFile);

/** One bind mount of a container (the subset of the engine's Mount the spawner sets). */
export interface ProjectBind {
  Type: 'bind';
  Source: string;
  Target: string;
  ReadOnly: boolean;
}

/**
 * The binds that give a container its user's projects, laid out as the local spawner links
 * them: `<home>/projects/<number>` (shared, writable) and `<home>/projects/<number>-datasets`
 * (read-only). Only the member's own projects are bound, so no other project exists inside.
 */
export function projectBinds(projects: readonly ProjectMount[], home: string): ProjectBind[] {
  return projects.flatMap((p) => [
    { Type: 'bind' as const, Source: p.shared, Target: `${home}/projects/${p.number}`, ReadOnly: false },
    { Type: 'bind' as const, Source: p.datasets, Target: `${home}/projects/${p.number}-datasets`, ReadOnly: true },
  ]);
}

/** The numeric uid of an image's USER (`1000` or `1000:1000`); null for a user given by name. */
export function numericUid(imageUser: string): number | null {
  const m = /^([0-9]+)(:[0-9]+)?$/.exec(imageUser.trim());
  return m ? Number(m[1]) : null;
}

/**
 * ACL entries for the containers' notebook uid on each project's folders (see README, "For data
 * librarians"): rwX on shared/ and r-X on datasets/, recursively and as defaults, so files
 * made earlier by other members (or by local-spawner accounts) are writable too. No entry goes
 * on the mount's root: on the host that uid still cannot pass it; inside a container only the
 * bound folders exist. -P: never through a symbolic link a member planted. Safe to repeat.
 */
export async function grantContainerUid(projects: readonly ProjectMount[], imageUser: string): Promise<void> {
  if (!projects.length) return;
  const uid = numericUid(imageUser);
  if (uid === null) {
    throw new SpawnFailed('The hub could not give you your project folders. Please tell the admin.', `image user ${JSON.stringify(imageUser)} is not numeric; project folders need USER <uid>:<gid> in the image`);
  }
  for (const p of projects) {
    try {
      await run('setfacl', ['-R', '-P', '-m', `u:${uid}:rwX,d:u:${uid}:rwX`, p.shared]);
      await run('setfacl', ['-R', '-P', '-m', `u:${uid}:r-X,d:u:${uid}:r-X`, p.datasets]);
    } catch (err) {
      throw new SpawnFailed(`The hub could not give you project ${p.number}'s folder.`, `setfacl for container uid ${uid}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
  }
}
