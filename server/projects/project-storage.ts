import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { HubError } from '../errors.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;

/** The uid of a Unix account, or null when there is no such account. */
async function uidOf(account: string): Promise<number | null> {
  try {
    const { stdout } = await run('getent', ['passwd', account]);
    const uid = Number(stdout.split(':')[2]);
    return Number.isInteger(uid) ? uid : null;
  } catch {
    return null;
  }
}

/** Storage could not be made or changed (mkfs, mount, setfacl failed). */
export class StorageFailed extends HubError {
  constructor(detail: string) {
    super('STORAGE_FAILED', 500, 'The project storage could not be prepared. Nothing was created; the error has been logged.', detail);
  }
}

export interface ProjectUsage {
  usedBytes: number;
  sizeBytes: number;
  freeBytes: number;
}

/**
 * One fixed-size ext4 filesystem image per project, loop-mounted at `<dir>/<number>/mnt`
 * (see README, "For data librarians": the kernel enforces the size, so a member writing past it
 * gets ENOSPC inside their notebook and no other project is touched). Inside it:
 * `shared/` (members read and write) and `datasets/` (members read only). Access is by POSIX
 * ACLs per member account, checked by the kernel on every access, so removing an entry takes
 * effect at once, even for a running server.
 */
export class ProjectStorage {
  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  folderOf(number: string): string {
    return path.join(this.dir, number);
  }

  mountOf(number: string): string {
    return path.join(this.folderOf(number), 'mnt');
  }

  imageOf(number: string): string {
    return path.join(this.folderOf(number), 'fs.img');
  }

  sharedOf(number: string): string {
    return path.join(this.mountOf(number), 'shared');
  }

  datasetsOf(number: string): string {
    return path.join(this.mountOf(number), 'datasets');
  }

  /** Make and mount a sparse image of `capacityMb`. Throws StorageFailed, leaving nothing behind. */
  async create(number: string, capacityMb: number): Promise<void> {
    // Others may pass through (not list) to the mount point; the mount's own root decides access.
    await fs.mkdir(this.dir, { recursive: true, mode: 0o711 });
    await fs.chmod(this.dir, 0o711);
    const folder = this.folderOf(number);
    try {
      await fs.mkdir(folder, { mode: 0o711 });
    } catch (err) {
      throw new StorageFailed(`${folder} exists already: ${(err as NodeJS.ErrnoException).code}`);
    }
    try {
      const image = this.imageOf(number);
      const handle = await fs.open(image, 'wx', 0o600);
      await handle.truncate(capacityMb * MIB);
      await handle.close();
      // -m 0: no blocks reserved for root, so the capacity is the members'.
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', number.slice(0, 16), image]);
      await this.mount(number);
      const root = this.mountOf(number);
      await fs.rm(path.join(root, 'lost+found'), { recursive: true, force: true });
      await fs.mkdir(this.sharedOf(number), { mode: 0o770 });
      await fs.mkdir(this.datasetsOf(number), { mode: 0o750 });
      for (const d of [root, this.sharedOf(number), this.datasetsOf(number)]) await fs.chmod(d, d === this.sharedOf(number) ? 0o770 : 0o750);
      this.log.info({ project: number, capacityMb }, 'project filesystem created');
    } catch (err) {
      await this.remove(number).catch(() => undefined);
      throw err instanceof StorageFailed ? err : new StorageFailed(`${number}: ${(err as Error).message}`);
    }
  }

  /** Mount the image if it is not mounted (hub start, after a reboot). Safe to repeat. */
  async mount(number: string): Promise<void> {
    const mnt = this.mountOf(number);
    if (await this.isMounted(mnt)) return;
    await fs.mkdir(mnt, { recursive: true, mode: 0o750 });
    try {
      await run('mount', ['-o', 'loop,nodev,nosuid', '-t', 'ext4', this.imageOf(number), mnt]);
    } catch (err) {
      throw new StorageFailed(`mount ${number}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
  }

  async isMounted(mnt: string): Promise<boolean> {
    const mounts = await fs.readFile('/proc/self/mounts', 'utf8');
    return mounts.split('\n').some((line) => line.split(' ')[1] === mnt);
  }

  /** Let a member's Unix account read and write shared/, read datasets/. Safe to repeat. */
  async grant(number: string, account: string): Promise<void> {
    await this.setfacl(['-m', `u:${account}:r-x`, this.mountOf(number)]);
    await this.setfacl(['-m', `u:${account}:rwx,d:u:${account}:rwx`, this.sharedOf(number)]);
    await this.setfacl(['-m', `u:${account}:r-x,d:u:${account}:r-x`, this.datasetsOf(number)]);
  }

  /** Take a member's access away: without an entry on the mount's root nobody passes it. Safe to repeat. */
  async revoke(number: string, account: string): Promise<void> {
    for (const dir of [this.mountOf(number), this.sharedOf(number), this.datasetsOf(number)]) {
      await this.setfacl(['-x', `u:${account}`, dir]).catch((err: Error) => this.log.debug({ project: number, account, err: err.message }, 'no ACL entry to remove'));
    }
    await this.setfacl(['-x', `d:u:${account}`, this.sharedOf(number)]).catch(() => undefined);
  }

  /**
   * Take away every ACL entry of an account in this project, on every file (an account being
   * deleted: its uid may be given to another account later). -P: never through symbolic links.
   * Safe to repeat; an unmounted project has nothing to change.
   */
  async revokeEverywhere(number: string, account: string): Promise<void> {
    if (!(await this.isMounted(this.mountOf(number)))) return;
    // By number: an account name that no longer (or never) resolves can have no entries by name.
    const uid = await uidOf(account);
    if (uid === null) return;
    await this.revoke(number, String(uid));
    for (const dir of [this.sharedOf(number), this.datasetsOf(number)]) await this.setfacl(['-R', '-P', '-x', `u:${uid},d:u:${uid}`, dir]);
  }

  /** Used and total bytes of the project's filesystem (statfs). */
  async usage(number: string): Promise<ProjectUsage | null> {
    const mnt = this.mountOf(number);
    if (!(await this.isMounted(mnt))) return null;
    const s = await fs.statfs(mnt);
    const sizeBytes = s.blocks * s.bsize;
    const freeBytes = s.bavail * s.bsize;
    return { sizeBytes, freeBytes, usedBytes: sizeBytes - s.bfree * s.bsize };
  }

  /** Write `<dir>/archives/<number>-<time>.tar.gz` of the project's files; returns its file name. */
  async archive(number: string): Promise<string> {
    const archives = path.join(this.dir, 'archives');
    await fs.mkdir(archives, { recursive: true, mode: 0o700 });
    const name = `${number}-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`;
    try {
      await run('tar', ['-C', this.mountOf(number), '--numeric-owner', '-czf', path.join(archives, name), '.'], { maxBuffer: 16 * MIB });
    } catch (err) {
      throw new StorageFailed(`tar ${number}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
    await fs.chmod(path.join(archives, name), 0o600);
    return name;
  }

  archivePath(name: string): string {
    return path.join(this.dir, 'archives', path.basename(name));
  }

  /** Unmount and delete the image and its folder. Safe to repeat. */
  async remove(number: string): Promise<void> {
    const mnt = this.mountOf(number);
    if (await this.isMounted(mnt)) {
      try {
        await run('umount', [mnt]);
      } catch (err) {
        // A process still inside (a member's shell): detach lazily, the kernel frees it when they leave.
        this.log.warn({ project: number, err: (err as Error).message }, 'project filesystem busy; detaching it lazily');
        await run('umount', ['-l', mnt]);
      }
    }
    await fs.rm(this.folderOf(number), { recursive: true, force: true });
  }

  private async setfacl(args: string[]): Promise<void> {
    try {
      await run('setfacl', args);
    } catch (err) {
      throw new StorageFailed(`setfacl ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
  }
}
