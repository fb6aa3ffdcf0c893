import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Route } from '../proxy/route-table.js';
import { HubError } from '../errors.js';
import { checkCoursePath, UploadRefused, type UploadLimits } from './upload.js';
import { SyncFailed } from './course-sync.js';

/** The instructor's server is not running: there is nothing to read. */
export class PublishServerNotRunning extends HubError {
  constructor() {
    super('PUBLISH_SERVER_NOT_RUNNING', 409, 'Your server is not running, so there is no folder to publish from. Start it from your home page (or open JupyterLab), then publish again. Nothing was published.');
  }
}

/** The instructor's server did not answer while its folder was read. */
export class PublishServerUnreachable extends HubError {
  constructor(detail: string) {
    super('PUBLISH_SERVER_UNREACHABLE', 502, 'Your server did not answer while the folder was read. Nothing was published; please try again in a moment.', detail);
  }
}

interface Entry {
  name: string;
  path: string;
  type: 'directory' | 'file' | 'notebook';
  size?: number | null;
  content?: Entry[] | string | null;
}

const MB = 1024 * 1024;
const mb = (bytes: number): string => `${Math.round(bytes / MB)} MB`;
const enc = (p: string): string => p.split('/').map(encodeURIComponent).join('/');
// What archivers and Jupyter leave behind; skipped like in uploads, never refused.
const JUNK = /(^|\/)(__MACOSX|\.DS_Store|\.ipynb_checkpoints|Thumbs\.db)(\/|$)/;

/**
 * A folder path in an instructor's home, as typed on the publish page: relative, no `..`,
 * absolute path or hidden part (the same rules as a published file's path). Trailing `/` and
 * a leading `~/` are dropped.
 */
export function checkServerFolder(raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new UploadRefused('Say which folder of your server to publish, e.g. cs101/week1.');
  const p = raw.trim().replace(/^~\//, '').replace(/\/+$/, '');
  try {
    return checkCoursePath(p);
  } catch (err) {
    throw new UploadRefused(`The folder ${JSON.stringify(raw.slice(0, 120))} can't be published from: ${(err as Error).message.replace(/^The file name .*? can't be published: /, '')}`);
  }
}

/**
 * Copy a folder of an instructor's running server into `staging/files/` through the server's
 * Jupyter contents API with its secret (like course-sync.ts, but reading), checking as it
 * goes what parseUpload checks of an upload: each path (no `..`, absolute or hidden parts),
 * the file count, each file's size and the total. Notebooks are checked later with the rest
 * of the staging folder (CourseFiles.manifest). The server reads with the instructor's own
 * account or container user: a symbolic link in their home is read as the file it points to,
 * which is something they could have uploaded themselves, never a file of the hub.
 * Throws UploadRefused (bad content: the caller discards staging) or SyncFailed (the server
 * did not answer). Returns the paths copied, relative to the folder.
 */
export async function copyServerFolder(route: Route, folder: string, staging: string, limits: UploadLimits, signal: AbortSignal): Promise<string[]> {
  const call = async (rel: string, query: string): Promise<Response> => {
    const url = `${route.target.origin}/user/${route.escapedName}/api/contents/${enc(rel)}${query}`;
    try {
      return await fetch(url, { headers: { authorization: route.authorization }, signal });
    } catch (err) {
      throw new SyncFailed(`reading ${rel}: ${(err as Error).message}`);
    }
  };
  // List everything first, so a folder past the limits is refused before a byte is copied.
  const files: { rel: string; full: string }[] = [];
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    const res = await call(dir, '?content=1');
    if (res.status === 404) {
      await res.arrayBuffer();
      throw new UploadRefused(dir === folder ? `Your server has no folder ${folder}.` : `${dir} disappeared while it was read. Nothing was published.`);
    }
    if (!res.ok) throw new SyncFailed(`listing ${dir} answered ${res.status}`);
    const listing = (await res.json()) as Entry;
    if (listing.type !== 'directory') throw new UploadRefused(`${folder} is a file, not a folder: give the folder that holds it.`);
    for (const e of Array.isArray(listing.content) ? listing.content : []) {
      if (!e.path.startsWith(folder + '/')) throw new SyncFailed(`the server listed ${e.path} inside ${folder}`);
      const rel = e.path.slice(folder.length + 1);
      if (JUNK.test(rel)) continue;
      checkCoursePath(rel);
      if (e.type === 'directory') {
        await walk(e.path);
        continue;
      }
      const size = typeof e.size === 'number' ? e.size : 0;
      if (size > limits.maxFileBytes) throw new UploadRefused(`${rel} is larger than ${mb(limits.maxFileBytes)} (courseMaxFileMb).`, 413);
      total += size;
      if (total > limits.maxTotalBytes) throw new UploadRefused(`The folder holds more than ${mb(limits.maxTotalBytes)} (courseMaxUploadMb).`, 413);
      files.push({ rel, full: e.path });
      if (files.length > limits.maxFiles) throw new UploadRefused(`The folder holds more than ${limits.maxFiles} files (courseMaxFiles).`, 413);
    }
  };
  await walk(folder);
  if (!files.length) throw new UploadRefused(`The folder ${folder} has no files to publish.`);
  let copied = 0;
  for (const f of files) {
    // type=file&format=base64: the exact bytes, notebooks included (no JSON round trip).
    const res = await call(f.full, '?content=1&type=file&format=base64');
    // A file the server's own account may not read (a link to someone else's file, say) is bad content, not an outage.
    if (res.status === 403 || res.status === 404) {
      await res.arrayBuffer();
      throw new UploadRefused(`Your server can't read ${f.rel} (it answered ${res.status}): nothing was published. Is it a link to a file that isn't yours?`);
    }
    if (!res.ok) throw new SyncFailed(`reading ${f.full} answered ${res.status}`);
    const body = (await res.json()) as Entry;
    const data = Buffer.from(typeof body.content === 'string' ? body.content : '', 'base64');
    // The file may have grown since it was listed: the limits hold for what is published.
    copied += data.length;
    if (data.length > limits.maxFileBytes) throw new UploadRefused(`${f.rel} is larger than ${mb(limits.maxFileBytes)} (courseMaxFileMb).`, 413);
    if (copied > limits.maxTotalBytes) throw new UploadRefused(`The folder holds more than ${mb(limits.maxTotalBytes)} (courseMaxUploadMb).`, 413);
    const target = path.join(staging, 'files', ...f.rel.split('/'));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await fsp.writeFile(target, data, { flag: 'wx', mode: 0o600 });
  }
  return files.map((f) => f.rel).sort();
}
