import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import yauzl from 'yauzl';
import { HubError } from '../errors.js';

/** An upload the hub refuses; the message says what to fix. Nothing was published. */
export class UploadRefused extends HubError {
  constructor(message: string, status = 400, detail?: string) {
    super('UPLOAD_REFUSED', status, message, detail);
  }
}

export interface UploadLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
  maxFiles: number;
  maxOutputBytes: number;
}

export interface ParsedUpload {
  /** Plain form fields (the last value of each). */
  fields: Record<string, string>;
  /** Paths written below the staging folder, relative, `/`-separated. */
  files: string[];
}

const MB = 1024 * 1024;
const mb = (bytes: number): string => `${Math.round(bytes / MB)} MB`;
// Junk that archivers add; skipped, never refused.
const JUNK = /(^|\/)(__MACOSX|\.DS_Store|\.ipynb_checkpoints|Thumbs\.db)(\/|$)/;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/**
 * A path inside a course, or an UploadRefused saying why not: relative, `/`-separated, no
 * empty, `.` or `..` segment, no backslash, drive letter or control character, no hidden
 * segment, at most 255 characters.
 */
export function checkCoursePath(raw: string): string {
  const p = raw.normalize('NFC');
  const bad = (why: string): never => {
    throw new UploadRefused(`The file name ${JSON.stringify(raw.slice(0, 120))} can't be published: ${why}.`);
  };
  if (!p || p.length > 255) bad('it is empty or longer than 255 characters');
  if (p.startsWith('/') || /^[a-zA-Z]:/.test(p)) bad('it is an absolute path');
  if (p.includes('\\')) bad('it contains a backslash');
  if (/[\x00-\x1f\x7f]/.test(p)) bad('it contains a control character');
  for (const seg of p.split('/')) {
    if (seg === '..') bad('it contains ".." (a path that leaves the course folder)');
    if (seg === '' || seg === '.') bad('it has an empty or "." part');
    if (seg.startsWith('.')) bad('hidden files (names starting with ".") are not published');
  }
  return p;
}

/**
 * Write a part of the form through the limiter into `target`. On a failure the part is
 * drained, never destroyed: busboy must read the rest of the form, so the browser gets our answer.
 */
function writeLimited(stream: Readable, lim: Transform, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = fs.createWriteStream(target, { flags: 'wx', mode: 0o600 });
    const fail = (err: Error): void => {
      stream.unpipe(lim);
      stream.resume();
      ws.destroy();
      reject(err);
    };
    lim.on('error', fail);
    ws.on('error', fail);
    ws.on('finish', () => resolve());
    stream.pipe(lim).pipe(ws);
  });
}

/** Counts bytes through a stream, failing past a limit. */
function limiter(limit: number, onTooBig: () => Error, counter: { total: number; totalLimit: number; onTotal: () => Error }): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      counter.total += chunk.length;
      if (seen > limit) return cb(onTooBig());
      if (counter.total > counter.totalLimit) return cb(counter.onTotal());
      cb(null, chunk);
    },
  });
}

/**
 * Read a multipart upload (field `files`, one or more; a `.zip` is unpacked, see unpackZip) into
 * `staging`. Throws UploadRefused for anything past the limits or unsafe; the caller removes
 * `staging` then, so nothing of a refused upload stays.
 */
export async function parseUpload(req: IncomingMessage, staging: string, limits: UploadLimits): Promise<ParsedUpload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type)) throw new UploadRefused('Send the files as a form upload (multipart/form-data).', 415);
  const fields: Record<string, string> = {};
  const files = new Set<string>();
  const zips: string[] = [];
  const counter = { total: 0, totalLimit: limits.maxTotalBytes, onTotal: () => new UploadRefused(`The upload is larger than ${mb(limits.maxTotalBytes)} (courseMaxUploadMb).`, 413) };
  const writes: Promise<void>[] = [];
  let failure: Error | undefined;
  const bb = busboy({ headers: req.headers, preservePath: true, limits: { files: limits.maxFiles, fields: 50, fieldSize: 64 * 1024, parts: limits.maxFiles + 50 } });
  const done = new Promise<void>((resolve, reject) => {
    bb.on('field', (name, value) => {
      fields[name] = value;
    });
    bb.on('file', (_name, stream: Readable, info) => {
      if (failure || !info.filename) {
        stream.resume();
        return;
      }
      let rel: string;
      try {
        rel = checkCoursePath(info.filename.replace(/^\/+/, ''));
        if (JUNK.test(rel)) {
          stream.resume();
          return;
        }
      } catch (err) {
        failure ??= err as Error;
        stream.resume();
        return;
      }
      const isZip = /\.zip$/i.test(rel);
      const target = isZip ? path.join(staging, '.zips', `${zips.length}.zip`) : path.join(staging, 'files', ...rel.split('/'));
      if (isZip) zips.push(target);
      else if (files.has(rel)) failure ??= new UploadRefused(`The file ${rel} was sent twice.`);
      else files.add(rel);
      writes.push(
        (async () => {
          await fsp.mkdir(path.dirname(target), { recursive: true });
          const tooBig = () => new UploadRefused(`${rel} is larger than ${mb(limits.maxFileBytes)} (courseMaxFileMb).`, 413);
          // A zip itself may be as large as a whole upload; its entries are checked one by one.
          await writeLimited(stream, limiter(isZip ? limits.maxTotalBytes : limits.maxFileBytes, tooBig, counter), target);
        })().catch((err: Error) => {
          failure ??= err;
          stream.resume();
        }),
      );
    });
    bb.on('filesLimit', () => (failure ??= new UploadRefused(`An upload may hold at most ${limits.maxFiles} files (courseMaxFiles).`, 413)));
    bb.on('error', reject);
    bb.on('close', resolve);
  });
  req.pipe(bb);
  try {
    await done;
  } catch (err) {
    throw new UploadRefused('The upload could not be read (it was cut off or is not a valid form).', 400, (err as Error).message);
  }
  await Promise.all(writes);
  if (failure) throw failure;
  for (const zip of zips) {
    for (const rel of await unpackZip(zip, path.join(staging, 'files'), limits, counter)) {
      if (files.has(rel)) throw new UploadRefused(`The file ${rel} is in the upload twice.`);
      files.add(rel);
    }
  }
  await fsp.rm(path.join(staging, '.zips'), { recursive: true, force: true });
  if (files.size > limits.maxFiles) throw new UploadRefused(`An upload may hold at most ${limits.maxFiles} files (courseMaxFiles).`, 413);
  return { fields, files: [...files].sort() };
}

/**
 * Unpack a zip below `into`: regular files and folders only. Refused: a path with `..`, an
 * absolute path, a symlink, a device or other special entry, a file past the limits. A zip
 * whose every entry sits in one top folder (a zipped folder) is unpacked without that folder.
 */
export async function unpackZip(zipPath: string, into: string, limits: UploadLimits, counter: { total: number; totalLimit: number; onTotal: () => Error }): Promise<string[]> {
  let zip: yauzl.ZipFile;
  try {
    // yauzl itself refuses absolute paths, `..` and backslashes in names (decodeStrings), with a message we pass on.
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true });
  } catch (err) {
    throw new UploadRefused('The zip file could not be read: is it a valid zip?', 400, (err as Error).message);
  }
  try {
    const entries: yauzl.Entry[] = [];
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (e: yauzl.Entry) => {
        entries.push(e);
        if (entries.length > limits.maxFiles * 2) reject(new UploadRefused(`The zip holds more than ${limits.maxFiles} files (courseMaxFiles).`, 413));
        else zip.readEntry();
      });
      zip.on('end', resolve);
      zip.on('error', (err: Error) => reject(new UploadRefused(`The zip holds an entry that can't be published: ${err.message}.`, 400, err.message)));
      zip.readEntry();
    });
    const kept: { entry: yauzl.Entry; rel: string }[] = [];
    for (const e of entries) {
      const mode = (e.externalFileAttributes >>> 16) & 0xffff;
      const kind = mode & S_IFMT;
      const isDir = e.fileName.endsWith('/');
      const name = isDir ? e.fileName.slice(0, -1) : e.fileName;
      if (JUNK.test(name)) continue;
      if (kind === S_IFLNK) throw new UploadRefused(`The zip holds a symbolic link (${name}); links are not published. Put the file itself in the zip.`);
      if (kind !== 0 && kind !== S_IFREG && kind !== S_IFDIR) throw new UploadRefused(`The zip holds ${name}, which is not a regular file or folder (a device, pipe or socket).`);
      const rel = checkCoursePath(name);
      if (isDir || kind === S_IFDIR) continue;
      if (e.uncompressedSize > limits.maxFileBytes) throw new UploadRefused(`${rel} in the zip is larger than ${mb(limits.maxFileBytes)} (courseMaxFileMb).`, 413);
      kept.push({ entry: e, rel });
    }
    if (kept.length > limits.maxFiles) throw new UploadRefused(`The zip holds more than ${limits.maxFiles} files (courseMaxFiles).`, 413);
    const tops = new Set(kept.map((k) => k.rel.split('/')[0]));
    const strip = tops.size === 1 && kept.every((k) => k.rel.includes('/'));
    const out: string[] = [];
    for (const { entry, rel: full } of kept) {
      const rel = strip ? full.slice(full.indexOf('/') + 1) : full;
      const target = path.join(into, ...rel.split('/'));
      await fsp.mkdir(path.dirname(target), { recursive: true });
      const stream = await zip.openReadStreamPromise(entry);
      const tooBig = () => new UploadRefused(`${rel} in the zip is larger than ${mb(limits.maxFileBytes)} (courseMaxFileMb).`, 413);
      try {
        await pipeline(stream, limiter(limits.maxFileBytes, tooBig, counter), fs.createWriteStream(target, { flags: 'wx', mode: 0o600 }));
      } catch (err) {
        if (err instanceof UploadRefused) throw err;
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UploadRefused(`The file ${rel} is in the upload twice.`);
        throw new UploadRefused(`The zip entry ${rel} could not be unpacked (damaged zip?).`, 400, (err as Error).message);
      }
      out.push(rel);
    }
    return out;
  } finally {
    zip.close();
  }
}

/**
 * Check a notebook: JSON, nbformat 4, a list of cells, no single output past the limit.
 * Throws UploadRefused naming the file.
 */
export function checkNotebook(rel: string, text: string, maxOutputBytes: number): void {
  let nb: unknown;
  try {
    nb = JSON.parse(text);
  } catch (err) {
    throw new UploadRefused(`${rel} is not a valid notebook: it is not JSON (${(err as Error).message.slice(0, 100)}).`);
  }
  const o = nb as { nbformat?: unknown; cells?: unknown };
  if (typeof nb !== 'object' || nb === null || Array.isArray(nb)) throw new UploadRefused(`${rel} is not a valid notebook: it is not a JSON object.`);
  if (o.nbformat !== 4) throw new UploadRefused(`${rel} is not a valid notebook: only nbformat 4 is accepted (found ${JSON.stringify(o.nbformat ?? null)}). Open and save it in a recent JupyterLab.`);
  if (!Array.isArray(o.cells)) throw new UploadRefused(`${rel} is not a valid notebook: it has no list of cells.`);
  o.cells.forEach((cell: unknown, i: number) => {
    const c = cell as { cell_type?: unknown; source?: unknown; outputs?: unknown };
    if (typeof cell !== 'object' || cell === null || !['code', 'markdown', 'raw'].includes(c.cell_type as string)) {
      throw new UploadRefused(`${rel} is not a valid notebook: cell ${i + 1} has no valid cell_type.`);
    }
    if (!Array.isArray(c.outputs)) return;
    for (const output of c.outputs as unknown[]) {
      const size = Buffer.byteLength(JSON.stringify(output));
      if (size > maxOutputBytes) {
        throw new UploadRefused(`${rel}: cell ${i + 1} has an output of ${mb(size)}, more than ${mb(maxOutputBytes)} (courseMaxOutputMb). Clear that output (Edit > Clear Outputs) and upload again.`, 413);
      }
    }
  });
}
