import { createHash } from 'node:crypto';
import type { Route } from '../proxy/route-table.js';

/**
 * A student's course folder, read and written through their running server's Jupyter
 * contents API with the server's secret (the route the proxy uses). Chosen over writing into
 * the spawner's home folder because it works the same for local processes and Docker
 * containers, and files are created by the server itself, so they belong to the student's
 * own Unix account or container user, never to the hub.
 */
export interface StudentFolder {
  /** path (relative to the course folder) -> sha256, for every file in it. Missing folder: {}. */
  hashes(): Promise<Record<string, string>>;
  /** Write a file (creating its folders); replaces only what the merge rules allow. */
  write(rel: string, data: Buffer): Promise<void>;
  /** Rename a file inside the course folder. */
  rename(from: string, to: string): Promise<void>;
}

interface Entry {
  name: string;
  path: string;
  type: 'directory' | 'file' | 'notebook';
  content?: Entry[] | string | null;
}

/** Thrown when the server refuses or doesn't answer; nothing is recorded as received then. */
export class SyncFailed extends Error {
  override name = 'SyncFailed';
}

const enc = (p: string): string => p.split('/').map(encodeURIComponent).join('/');

export class JupyterFolder implements StudentFolder {
  private readonly made = new Set<string>();

  constructor(
    private readonly route: Route,
    /** The course folder in the student's home, e.g. `cs101`. */
    private readonly folder: string,
    private readonly signal: AbortSignal,
  ) {}

  private async call(method: string, rel: string, body?: unknown, query = ''): Promise<Response> {
    const url = `${this.route.target.origin}/user/${this.route.escapedName}/api/contents/${enc(rel)}${query}`;
    try {
      return await fetch(url, {
        method,
        headers: { authorization: this.route.authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: this.signal,
      });
    } catch (err) {
      throw new SyncFailed(`${method} ${rel}: ${(err as Error).message}`);
    }
  }

  async hashes(): Promise<Record<string, string>> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    const walk = async (dir: string): Promise<void> => {
      const res = await this.call('GET', dir, undefined, '?content=1');
      if (res.status === 404) return void (await res.arrayBuffer());
      if (!res.ok) throw new SyncFailed(`listing ${dir} answered ${res.status}`);
      const listing = (await res.json()) as Entry;
      for (const e of Array.isArray(listing.content) ? listing.content : []) {
        const rel = e.path.slice(this.folder.length + 1);
        if (e.type === 'directory') await walk(e.path);
        else out[rel] = await this.hashOf(e.path);
      }
    };
    await walk(this.folder);
    return out;
  }

  private async hashOf(full: string): Promise<string> {
    // type=file&format=base64: the exact bytes, notebooks included (no JSON round trip).
    const res = await this.call('GET', full, undefined, '?content=1&type=file&format=base64');
    if (!res.ok) throw new SyncFailed(`reading ${full} answered ${res.status}`);
    const body = (await res.json()) as Entry;
    return createHash('sha256').update(Buffer.from(typeof body.content === 'string' ? body.content : '', 'base64')).digest('hex');
  }

  /**
   * A file's exact bytes (relative to the course folder), or null when it isn't there. Throws
   * SyncFailed when the server refuses or answers with more than maxBytes (read-only shares
   * snapshot notebooks this way).
   */
  async read(rel: string, maxBytes: number): Promise<Buffer | null> {
    const res = await this.call('GET', `${this.folder}/${rel}`, undefined, '?content=1&type=file&format=base64');
    if (res.status === 404) {
      await res.arrayBuffer();
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new SyncFailed(`reading ${rel} answered ${res.status}`);
    }
    // base64 in JSON: about 4/3 of the file. The server is the student's (hostile code can
    // answer in place of Jupyter), so the cap holds while reading, with or without a length.
    const cap = Math.ceil(maxBytes * 1.4) + 4096;
    if (Number(res.headers.get('content-length') ?? '0') > cap) {
      await res.body?.cancel();
      throw new SyncFailed(`${rel} is larger than ${maxBytes} bytes`);
    }
    const raw = await bodyText(res, cap, `${rel} is larger than ${maxBytes} bytes`);
    let body: Entry;
    try {
      body = JSON.parse(raw) as Entry;
    } catch {
      throw new SyncFailed(`reading ${rel}: the server's answer is not JSON`);
    }
    const data = Buffer.from(typeof body.content === 'string' ? body.content : '', 'base64');
    if (data.length > maxBytes) throw new SyncFailed(`${rel} is larger than ${maxBytes} bytes`);
    return data;
  }

  private async mkdirs(rel: string): Promise<void> {
    const parts = [this.folder, ...rel.split('/').slice(0, -1)];
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.made.has(dir)) continue;
      const res = await this.call('PUT', dir, { type: 'directory' });
      await res.arrayBuffer();
      if (!res.ok) throw new SyncFailed(`making ${dir} answered ${res.status}`);
      this.made.add(dir);
    }
  }

  async write(rel: string, data: Buffer): Promise<void> {
    await this.mkdirs(rel);
    const res = await this.call('PUT', `${this.folder}/${rel}`, { type: 'file', format: 'base64', content: data.toString('base64') });
    const text = await res.text();
    if (res.status !== 200 && res.status !== 201) throw new SyncFailed(`writing ${rel} answered ${res.status}: ${text.slice(0, 200)}`);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.mkdirs(to);
    const res = await this.call('PATCH', `${this.folder}/${from}`, { path: `${this.folder}/${to}` });
    const text = await res.text();
    if (!res.ok) throw new SyncFailed(`renaming ${from} answered ${res.status}: ${text.slice(0, 200)}`);
  }
}

/** A response's body as text, refusing (SyncFailed) as soon as it passes `cap` bytes. */
async function bodyText(res: Response, cap: number, tooLarge: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  if (!reader) return '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel();
      throw new SyncFailed(tooLarge);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
