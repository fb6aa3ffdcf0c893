import http from 'node:http';
import yazl from 'yazl';
import type { Hub } from '../../server/index.js';
import { ADMIN_PASSWORD, clientFor } from './hub.js';
import { HubClient, localhostLookup } from './client.js';

/** Create local accounts with roles through the admin API, as an admin would. */
export async function createUsersWithRoles(hub: Hub, users: Record<string, { password: string; roles: string[] }>): Promise<void> {
  const admin = new HubClient(hub.url);
  const res = await admin.login('admin', ADMIN_PASSWORD);
  if (res.status !== 303) throw new Error(`admin login answered ${res.status}`);
  const me = JSON.parse((await admin.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
  for (const [name, { password, roles }] of Object.entries(users)) {
    const r = await admin.request('POST', '/hub/api/users', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token, accept: 'application/json' },
      body: JSON.stringify({ name, password, roles }),
    });
    if (r.status !== 201) throw new Error(`creating ${name} answered ${r.status}: ${r.body}`);
  }
}

/** A signed-in client and its XSRF token for hub forms and uploads. */
export async function signedIn(hub: Hub, name: string, password: string): Promise<{ client: HubClient; csrf: string }> {
  const client = clientFor(hub);
  const login = await client.login(name, password);
  if (login.status !== 303) throw new Error(`login of ${name} answered ${login.status}`);
  const me = JSON.parse((await client.get('/hub/api/user', { accept: 'application/json' })).body) as { csrf_token: string };
  return { client, csrf: me.csrf_token };
}

/**
 * Courses as an instructor makes them on the hub's form (`fields`: profiles, datasets,
 * anonymousAllowed, ...), each with one notebook published (`file`, printing the course's code).
 * Throws with the hub's answer when a step is refused.
 */
export async function coursesWithANotebook(prof: { client: HubClient; csrf: string }, courses: readonly { code: string; fields?: Readonly<Record<string, string>> }[], file = 'week1.ipynb'): Promise<void> {
  for (const { code, fields } of courses) {
    const made = await prof.client.request('POST', '/hub/courses', { form: { _csrf: prof.csrf, code, title: code, ...fields } });
    if (made.status !== 303) throw new Error(`making course ${code} answered ${made.status}: ${made.body.slice(0, 300)}`);
    const published = await upload(prof.client, prof.csrf, `/hub/courses/${code}/publish`, [{ name: file, data: notebook(`print("${code}")`) }]);
    if (published.status !== 200) throw new Error(`publishing into ${code} answered ${published.status}: ${JSON.stringify(published.body)}`);
  }
}

/** A minimal valid nbformat 4 notebook with one code cell. */
export function notebook(source: string, outputs: unknown[] = []): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: [{ cell_type: 'code', id: 'c1', metadata: {}, execution_count: null, source, outputs }],
  });
}

export interface UploadFile {
  name: string;
  data: string | Buffer;
}

export interface UploadReply {
  status: number;
  body: { message?: string; version?: number; files?: string[]; redirect?: string };
}

/** Send a multipart upload (field `files`) the way the course page's script does: XSRF token in a header. */
export async function upload(client: HubClient, csrf: string, path: string, files: UploadFile[], fields: Record<string, string> = {}): Promise<UploadReply> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  for (const f of files) form.append('files', new Blob([new Uint8Array(typeof f.data === 'string' ? Buffer.from(f.data) : f.data)]), f.name);
  const encoded = new Request('http://encode.invalid/', { method: 'POST', body: form });
  const body = Buffer.from(await encoded.arrayBuffer());
  const url = client.urlFor(path);
  const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        lookup: localhostLookup,
        agent: false,
        headers: { cookie: client.cookieHeader(path), 'content-type': encoded.headers.get('content-type') ?? '', 'content-length': String(body.length), 'x-csrf-token': csrf, accept: 'application/json' },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  let parsed: UploadReply['body'] = {};
  try {
    parsed = JSON.parse(res.text) as UploadReply['body'];
  } catch {
    parsed = { message: res.text.slice(0, 300) };
  }
  return { status: res.status, body: parsed };
}

/** A zip of these entries; `mode` sets the Unix file type and permissions (symlinks, devices). */
export async function zipOf(entries: { name: string; data?: string; mode?: number }[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.name.endsWith('/')) zip.addEmptyDirectory(e.name.slice(0, -1));
    else zip.addBuffer(Buffer.from(e.data ?? ''), e.name, e.mode === undefined ? {} : { mode: e.mode });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Rewrite an entry name inside a zip (same length), for names yazl refuses to write (`../x`, `/etc/x`). */
export function renameInZip(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('names must have the same length');
  const out = Buffer.from(zip);
  const a = Buffer.from(from);
  let at = out.indexOf(a);
  let n = 0;
  while (at >= 0) {
    Buffer.from(to).copy(out, at);
    n++;
    at = out.indexOf(a, at + 1);
  }
  if (n < 2) throw new Error(`expected the name in the local header and the central directory, found ${n}`);
  return out;
}
