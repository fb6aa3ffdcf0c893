import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ManifestEntry } from './course-repo.js';
import { checkNotebook, UploadRefused } from './upload.js';

/**
 * The published files on disk: `dataDir/courses/<code>/versions/<n>/files/...` with
 * `versions/<n>/manifest.json` beside them. A version folder appears by one rename of a fully
 * written and checked staging folder (`dataDir/courses/<code>/staging/<id>/`), and is never
 * written again: a version is either all there or not there at all.
 */
export class CourseFiles {
  constructor(private readonly root: string) {}

  private courseDir(code: string): string {
    return path.join(this.root, code);
  }

  versionDir(code: string, n: number): string {
    return path.join(this.courseDir(code), 'versions', String(n));
  }

  /** A fresh, private staging folder for one publication. */
  async staging(code: string): Promise<string> {
    const dir = path.join(this.courseDir(code), 'staging', randomUUID());
    await fsp.mkdir(path.join(dir, 'files'), { recursive: true, mode: 0o700 });
    return dir;
  }

  async discard(staging: string): Promise<void> {
    await fsp.rm(staging, { recursive: true, force: true });
  }

  /** Copy the files of version `n` that are not in `skip` into the staging folder (hard links: versions are immutable). */
  async carryOver(code: string, n: number, paths: readonly string[], staging: string): Promise<void> {
    for (const rel of paths) {
      const from = this.filePath(code, n, rel);
      const to = path.join(staging, 'files', ...rel.split('/'));
      await fsp.mkdir(path.dirname(to), { recursive: true });
      await fsp.link(from, to).catch(async () => fsp.copyFile(from, to));
    }
  }

  /**
   * Check every file of the staging folder and list it with its hash: notebooks must be
   * nbformat 4 with no output past `maxOutputBytes`; nothing but regular files and folders.
   */
  async manifest(staging: string, maxOutputBytes: number): Promise<Record<string, ManifestEntry>> {
    const out: Record<string, ManifestEntry> = Object.create(null) as Record<string, ManifestEntry>;
    const walk = async (rel: string): Promise<void> => {
      for (const e of await fsp.readdir(path.join(staging, 'files', rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(r);
        else if (!e.isFile()) throw new UploadRefused(`${r} is not a regular file.`);
        else {
          const full = path.join(staging, 'files', ...r.split('/'));
          const data = await fsp.readFile(full);
          if (r.toLowerCase().endsWith('.ipynb')) checkNotebook(r, data.toString('utf8'), maxOutputBytes);
          out[r] = { sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
        }
      }
    };
    await walk('');
    return out;
  }

  /** Turn a checked staging folder into version `n`, in one rename. Throws if that version exists already. */
  async commit(code: string, n: number, staging: string, manifest: Record<string, ManifestEntry>): Promise<void> {
    await fsp.writeFile(path.join(staging, 'manifest.json'), JSON.stringify({ version: n, files: manifest }, null, 1), { mode: 0o600 });
    const target = this.versionDir(code, n);
    await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    // mkdir of the target first: rename() onto an existing empty folder would succeed, onto this one it fails.
    if (fs.existsSync(target)) throw new Error(`version folder ${target} exists already`);
    await fsp.rename(staging, target);
  }

  /** Remove a version folder that the store never recorded (a publish that lost its race). */
  async removeVersion(code: string, n: number): Promise<void> {
    await fsp.rm(this.versionDir(code, n), { recursive: true, force: true });
  }

  filePath(code: string, n: number, rel: string): string {
    return path.join(this.versionDir(code, n), 'files', ...rel.split('/'));
  }

  async read(code: string, n: number, rel: string): Promise<Buffer> {
    return fsp.readFile(this.filePath(code, n, rel));
  }

  /** Copy every file of version `n` into the staging folder (a rollback). */
  async copyAll(code: string, n: number, paths: readonly string[], staging: string): Promise<void> {
    await this.carryOver(code, n, paths, staging);
  }

  /** The sha256 of a file, streamed. */
  static async hashFile(file: string): Promise<string> {
    const h = createHash('sha256');
    await pipeline(fs.createReadStream(file), h);
    return h.digest('hex');
  }
}
