import http from 'node:http';
import type { StaticAssets } from './static-assets.js';

/**
 * Forwards one HTTP request to a notebook server and streams its answer back: the proxy's hot
 * path for everything but WebSockets. A thin layer on node:http, because the general-purpose
 * proxy library it replaced spent as much CPU per request as everything else in the hub (a
 * URL object, an options object and a pass pipeline per request, headers copied one
 * setHeader at a time; see BENCHMARKS.md). Headers go out as flat arrays, which node:http
 * writes without building a header map first.
 *
 * Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded either way: the upstream keep-alive
 * pool and the client's connection are each managed by node:http.
 */
export class HttpForwarder {
  /** Host and port of each route's target URL, read once (URL getters allocate). */
  private readonly endpoints = new WeakMap<URL, { host: string; port: number }>();

  constructor(
    private readonly agent: http.Agent,
    /** How long a server may take to answer (and between chunks) before the request fails. */
    private readonly timeoutMs: number,
    /** Called once for a request that failed before or while its answer was streamed. */
    private readonly onError: (err: NodeJS.ErrnoException, req: http.IncomingMessage, res: http.ServerResponse) => void,
    /** JupyterLab's content-hashed static files: cache headers and compression (static-assets.ts). */
    private readonly statics?: StaticAssets,
  ) {}

  /** Send `req` to `target` with exactly `headers` (flat [name, value, ...]; Host included). */
  forward(req: http.IncomingMessage, res: http.ServerResponse, target: URL, headers: string[]): void {
    const { host, port } = this.endpointOf(target);
    let up: http.ClientRequest;
    try {
      up = http.request({ host, port, method: req.method, path: req.url, headers, agent: this.agent, timeout: this.timeoutMs });
    } catch (err) {
      // node:http refuses some paths and header values outright; a 502 for this request, not a crash.
      this.onError(err as NodeJS.ErrnoException, req, res);
      return;
    }
    let failed = false;
    const fail = (err: NodeJS.ErrnoException): void => {
      if (failed) return;
      failed = true;
      up.destroy();
      // The browser went away first: nothing to answer, nothing to report.
      if (req.socket.destroyed && err.code === 'ECONNRESET') return;
      this.onError(err, req, res);
    };
    up.on('error', fail);
    up.on('timeout', () => fail(Object.assign(new Error('the server did not answer in time'), { code: 'ETIMEDOUT' })));
    // A browser that gives up (or a response cut short) must not leave the upstream request running.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    // Decided before the answer comes; a path check that every other request fails at its first test.
    const statics = this.statics !== undefined && this.statics.matches(req) ? this.statics : undefined;
    up.on('response', (answer) => {
      if (statics) return statics.respond(req, res, answer, responseHeaders(answer.rawHeaders));
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, responseHeaders(answer.rawHeaders));
      answer.pipe(res);
    });
    // No body (HTTP/1.1: neither length nor chunked): end at once, without a pipe per request.
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) up.end();
    else {
      req.on('error', fail);
      req.pipe(up);
    }
  }

  private endpointOf(target: URL): { host: string; port: number } {
    let e = this.endpoints.get(target);
    if (!e) {
      const h = target.hostname;
      e = { host: h.startsWith('[') ? h.slice(1, -1) : h, port: Number(target.port) || 80 };
      this.endpoints.set(target, e);
    }
    return e;
  }
}

/** Hop-by-hop request and response headers, lower-case (RFC 9110 §7.6.1, and the de-facto ones). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The answer's headers as a flat array, without hop-by-hop ones; names keep their case. */
function responseHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (isHopByHop(name)) continue;
    out.push(name, raw[i + 1]);
  }
  return out;
}

function isHopByHop(name: string): boolean {
  // Cheap first test: every hop-by-hop name starts with c, k, p, t or u.
  const c = name.charCodeAt(0) | 0x20;
  if (c !== 0x63 && c !== 0x6b && c !== 0x70 && c !== 0x74 && c !== 0x75) return false;
  return HOP_BY_HOP.has(name.toLowerCase());
}
