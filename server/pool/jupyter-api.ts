import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import yazl from 'yazl';
import type { Route } from '../proxy/route-table.js';

/**
 * Calls into one notebook server through its route: the target and the secret the proxy injects.
 * Works the same for a local process and a Docker container, since both are reached by the
 * hub this way. Every call has a timeout.
 */

const CALL_TIMEOUT_MS = 10_000;
// A file's body streams into the zip as fast as the visitor downloads it.
const FILE_TIMEOUT_MS = 300_000;

/** A content entry of the Jupyter contents API. */
interface ContentEntry {
  name: string;
  path: string;
  type: 'directory' | 'file' | 'notebook';
  last_modified?: string;
  size?: number | null;
  content?: ContentEntry[] | null;
}

function apiUrl(route: Route, rest: string): string {
  return `${route.target.origin}/user/${route.escapedName}/${rest}`;
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

async function call(route: Route, method: string, rest: string, body?: unknown, signal?: AbortSignal, timeoutMs = CALL_TIMEOUT_MS): Promise<Response> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(apiUrl(route, rest), {
    method,
    headers: { authorization: route.authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  return res;
}

/** Whether any kernel of the server is computing right now (execution_state 'busy'). Rejects when the server doesn't answer. */
export async function hasBusyKernel(route: Route): Promise<boolean> {
  const res = await call(route, 'GET', 'api/kernels');
  if (!res.ok) throw new Error(`api/kernels answered ${res.status}`);
  const kernels = (await res.json()) as { execution_state?: string }[];
  return Array.isArray(kernels) && kernels.some((k) => k.execution_state === 'busy');
}

/** Every file below `dir` of the local folder, as paths relative to it (hidden files and caches skipped). */
async function listFiles(dir: string, prefix = ''): Promise<{ rel: string; isDir: boolean }[]> {
  const out: { rel: string; isDir: boolean }[] = [];
  for (const entry of (await fs.readdir(path.join(dir, prefix), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || entry.name === '__pycache__') continue;
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push({ rel, isDir: true }, ...(await listFiles(dir, rel)));
    else if (entry.isFile()) out.push({ rel, isDir: false });
  }
  return out;
}

/**
 * Copy a local folder into the server as `target/` through the contents API (PUT), byte for
 * byte (base64). Using the API rather than the file system is what makes it work for Docker
 * containers without a volume as well as for local processes. Rejects on the first refusal.
 */
export async function copyFolderIn(route: Route, source: string, target: string, signal?: AbortSignal): Promise<number> {
  const put = async (rel: string, body: unknown): Promise<void> => {
    const res = await call(route, 'PUT', `api/contents/${encodePath(rel)}`, body, signal);
    if (res.status !== 200 && res.status !== 201) throw new Error(`PUT api/contents/${rel} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    await res.arrayBuffer();
  };
  await put(target, { type: 'directory' });
  const files = await listFiles(source);
  for (const f of files) {
    const rel = `${target}/${f.rel}`;
    if (f.isDir) await put(rel, { type: 'directory' });
    else await put(rel, { type: 'file', format: 'base64', content: (await fs.readFile(path.join(source, f.rel))).toString('base64') });
  }
  return files.filter((f) => !f.isDir).length;
}

/**
 * Start a kernel for a notebook through the sessions API, as JupyterLab does when it opens it:
 * JupyterLab (and the rendered view) then joins this session instead of starting a kernel.
 * Resolves with the kernel's id.
 */
export async function startNotebookSession(route: Route, notebookPath: string, signal?: AbortSignal): Promise<string> {
  const res = await call(route, 'POST', 'api/sessions', { path: notebookPath, name: notebookPath.split('/').pop(), type: 'notebook', kernel: { name: 'python3' } }, signal, 60_000);
  if (res.status !== 201 && res.status !== 200) throw new Error(`POST api/sessions answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const body = (await res.json()) as { kernel?: { id?: string } };
  if (!body.kernel?.id) throw new Error('the new session has no kernel');
  return body.kernel.id;
}

export interface ZipLimits {
  maxFiles: number;
  maxBytes: number;
}

/**
 * Everything the visitor can see in their server (the contents API hides dot files), as a zip
 * stream. Lists the tree first (so a refusal can still become an error page), then fetches one
 * file at a time while the zip streams out. Rejects when the tree is larger than `limits`.
 */
export async function workspaceZip(route: Route, limits: ZipLimits, signal?: AbortSignal): Promise<{ stream: Readable; files: number }> {
  const files: ContentEntry[] = [];
  const dirs: string[] = [];
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    const res = await call(route, 'GET', `api/contents/${encodePath(dir)}?content=1`, undefined, signal);
    if (!res.ok) throw new Error(`listing ${dir || '/'} answered ${res.status}`);
    const listing = (await res.json()) as ContentEntry;
    for (const entry of listing.content ?? []) {
      if (entry.type === 'directory') {
        dirs.push(entry.path);
        await walk(entry.path);
      } else {
        files.push(entry);
        bytes += entry.size ?? 0;
        if (files.length > limits.maxFiles || bytes > limits.maxBytes) throw new WorkspaceTooLarge();
      }
    }
  };
  await walk('');
  const zip = new yazl.ZipFile();
  for (const d of dirs) zip.addEmptyDirectory(d);
  for (const f of files) {
    const mtime = f.last_modified ? new Date(f.last_modified) : new Date();
    zip.addReadStreamLazy(f.path, { mtime }, (cb) => {
      // /files/ serves the raw bytes of any file, notebooks included.
      call(route, 'GET', `files/${encodePath(f.path)}`, undefined, signal, FILE_TIMEOUT_MS).then(
        (res) => {
          if (!res.ok || !res.body) return cb(new Error(`files/${f.path} answered ${res.status}`));
          cb(null, Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>));
        },
        (err: Error) => cb(err),
      );
    });
  }
  zip.end();
  const stream = zip.outputStream;
  zip.on('error', (err) => stream.destroy(err));
  return { stream, files: files.length };
}

export class WorkspaceTooLarge extends Error {
  override name = 'WorkspaceTooLarge';
}
