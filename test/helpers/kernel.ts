import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { localhostLookup, type HubClient } from './client.js';

interface JupyterMessage {
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel: string;
}

/** Start a kernel through the hub's proxy with a real XSRF pair; returns its id. */
export async function startKernel(client: HubClient, escapedName: string): Promise<string> {
  const base = `/user/${escapedName}/`;
  const xsrf = await xsrfToken(client, escapedName);
  const res = await client.request('POST', `${base}api/kernels`, {
    headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf, accept: 'application/json' },
    body: JSON.stringify({ name: 'python3' }),
  });
  if (res.status !== 201) throw new Error(`kernel start answered ${res.status}: ${res.body.slice(0, 300)}`);
  return (JSON.parse(res.body) as { id: string }).id;
}

/** The `_xsrf` cookie Jupyter sets on its pages (fetched through the proxy if we don't have it yet). */
export async function xsrfToken(client: HubClient, escapedName: string): Promise<string> {
  let c = client.cookie('_xsrf');
  if (!c) {
    await client.get(`/user/${escapedName}/lab`);
    c = client.cookie('_xsrf');
  }
  if (!c) throw new Error('Jupyter set no _xsrf cookie');
  return c.value;
}

/** A kernel's WebSocket opened through the hub, speaking Jupyter's JSON message protocol. */
export class KernelSocket {
  private readonly session = randomUUID();
  private readonly waiting = new Map<string, { out: string[]; resolve(v: string): void; reject(e: Error): void }>();
  closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('kernel socket closed'));
      this.waiting.clear();
    });
  }

  static open(client: HubClient, escapedName: string, kernelId: string, headers: Record<string, string> = {}): Promise<KernelSocket> {
    const path = `/user/${escapedName}/api/kernels/${kernelId}/channels`;
    // On the server's own origin, as JupyterLab's page there opens it.
    const url = client.urlFor(path).origin.replace(/^http/, 'ws') + path;
    const ws = new WebSocket(url, { lookup: localhostLookup, headers: { cookie: client.cookieHeader(path), origin: client.contentOrigin(escapedName), ...headers } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new KernelSocket(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** A kernel's WebSocket at a full URL, as a script opens it (e.g. with `?token=` or an Authorization header). */
  static openUrl(url: string, headers: Record<string, string> = {}): Promise<KernelSocket> {
    const ws = new WebSocket(url, { lookup: localhostLookup, headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new KernelSocket(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Run code and resolve with everything it printed to stdout. */
  execute(code: string, timeoutMs = 30000): Promise<string> {
    const msgId = randomUUID();
    const msg = {
      header: { msg_id: msgId, username: 'test', session: this.session, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
      parent_header: {},
      metadata: {},
      content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      channel: 'shell',
      buffers: [],
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(msgId);
        reject(new Error(`no reply to ${code} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(msgId, {
        out: [],
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify(msg));
    });
  }

  close(): void {
    this.ws.close();
  }

  private onMessage(text: string): void {
    const msg = JSON.parse(text) as JupyterMessage;
    const w = msg.parent_header?.msg_id ? this.waiting.get(msg.parent_header.msg_id) : undefined;
    if (!w) return;
    if (msg.header.msg_type === 'stream') w.out.push(String(msg.content.text ?? ''));
    if (msg.header.msg_type === 'error') w.out.push(`ERROR: ${String(msg.content.ename)}: ${String(msg.content.evalue)}`);
    if (msg.header.msg_type === 'status' && msg.content.execution_state === 'idle' && msg.channel === 'iopub') {
      this.waiting.delete(msg.parent_header.msg_id as string);
      w.resolve(w.out.join(''));
    }
  }
}
