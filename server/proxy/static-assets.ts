import { createHash } from 'node:crypto';
import type http from 'node:http';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/** What a content-hashed static file may be cached as: it never changes under its URL. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Bodies larger than this pass through uncompressed (JupyterLab's largest chunk is ~4 MB). */
const MAX_COMPRESS_BYTES = 16 * 1024 * 1024;
/** Compressed bodies kept in memory, by the hash of the bytes the server sent. */
const CACHE_BYTES = 64 * 1024 * 1024;
/** Smaller bodies are not worth a compression (headers and framing eat the gain). */
const MIN_COMPRESS_BYTES = 1024;

// Quality 5: near gzip's speed with most of brotli's gain, since the first visitor waits for it.
const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
const BROTLI_OPTIONS: zlib.BrotliOptions = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } };
const GZIP_OPTIONS: zlib.ZlibOptions = { level: 6 };

// A file name carrying a content hash: JupyterLab's `1014.073326ef5d98db5e.js`, `0031b1860ea4ad75.woff`.
const HASHED_NAME = /(?:^|[.-])[0-9a-f]{16,}\.[A-Za-z0-9]+$/;
// A URL versioned by its content (jupyter_server's static_url and JupyterLab's loader add `?v=HASH`).
const VERSION_QUERY = /(?:^|&)v=[0-9A-Za-z]{8,}(?:&|$)/;
const COMPRESSIBLE = /^(?:text\/|application\/(?:javascript|json|x-javascript|wasm|xml|manifest\+json)|image\/svg\+xml|font\/(?:ttf|otf)|application\/(?:x-font-ttf|vnd\.ms-fontobject))/i;

export type Encoding = 'br' | 'gzip';

/** Whether a Content-Type gains from compression (text, scripts, JSON, SVG, uncompressed fonts). */
export function isCompressible(contentType: string): boolean {
  return COMPRESSIBLE.test(contentType);
}

/** `body` in `encoding`, at the settings the proxy uses for every static file. */
export function compress(body: Buffer, encoding: Encoding): Promise<Buffer> {
  return encoding === 'br' ? brotli(body, BROTLI_OPTIONS) : gzip(body, GZIP_OPTIONS);
}

/** brotli, else gzip, as an Accept-Encoding header takes them (q=0 refuses); undefined for neither. */
export function preferredEncoding(accepted: string | undefined): Encoding | undefined {
  if (!accepted) return undefined;
  const accepts = (name: string): boolean =>
    accepted.split(',').some((part) => {
      const [token, ...params] = part.trim().split(';');
      if (token?.trim().toLowerCase() !== name) return false;
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return q === undefined || Number(q.slice(2)) > 0;
    });
  if (accepts('br')) return 'br';
  if (accepts('gzip')) return 'gzip';
  return undefined;
}

/**
 * JupyterLab's content-hashed static files, as the proxy forwards them (issue 14): cached by the
 * browser for a year (`Cache-Control: public, max-age=31536000, immutable`) and compressed
 * (brotli or gzip, as the browser accepts) when the notebook server sent them uncompressed.
 * Only GETs and HEADs of `/user/NAME/static/...` or `/user/NAME/lab/extensions/X/static/...` whose
 * name or `?v=` carries a hash; every
 * other request never gets here. Compressed bodies are kept by the SHA-256 of the server's bytes
 * (every server of an image sends the same files), so a hostile server can only ever get its
 * own bytes back, and the CPU is spent once per file, not once per visitor.
 */
export class StaticAssets {
  private readonly cache = new Map<string, Buffer>();
  private cachedBytes = 0;

  /** Whether `req` asks for a content-hashed static file (cheap: the hot path calls it for every request). */
  matches(req: http.IncomingMessage): boolean {
    const url = req.url;
    if (url === undefined || url.indexOf('/static/') === -1) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!path.startsWith('/user/')) return false;
    // Only the server's own static trees: `static/...` (jupyter_server, JupyterLab's `static/lab/`)
    // and prebuilt extensions' `lab/extensions/NAME/static/...`; never a user's file that happens
    // to sit in a folder called static (`files/`, `lab/tree/`, `api/contents/`).
    const rest = path.slice(path.indexOf('/', 6) + 1);
    if (!rest.startsWith('static/') && !(rest.startsWith('lab/extensions/') && rest.includes('/static/'))) return false;
    if (q !== -1 && VERSION_QUERY.test(url.slice(q + 1))) return true;
    return HASHED_NAME.test(path.slice(path.lastIndexOf('/') + 1));
  }

  /**
   * Answer `res` with the server's `answer` (headers already without hop-by-hop ones, as
   * `headers`): the cache header on 200 and 304, the body compressed when that helps. A failure
   * of the server's stream cuts the answer, as for any proxied request.
   */
  respond(req: http.IncomingMessage, res: http.ServerResponse, answer: http.IncomingMessage, headers: string[]): void {
    const status = answer.statusCode ?? 502;
    if (status !== 200 && status !== 304) {
      res.writeHead(status, answer.statusMessage, headers);
      answer.pipe(res);
      return;
    }
    const out = withCacheControl(headers);
    const encoding = status === 200 && req.method === 'GET' ? this.encodingFor(req, answer) : undefined;
    const length = Number(answer.headers['content-length'] ?? NaN);
    // Without a length (chunked) the body passes through as it comes.
    if (!encoding || !Number.isFinite(length) || length < MIN_COMPRESS_BYTES || length > MAX_COMPRESS_BYTES) {
      // Another browser may get this URL compressed: shared caches must tell them apart.
      if (status === 200 && this.mayCompress(answer) && !hasVaryOnEncoding(out)) out.push('vary', 'Accept-Encoding');
      res.writeHead(status, answer.statusMessage, out);
      answer.pipe(res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    answer.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_COMPRESS_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    answer.on('error', () => res.destroy());
    answer.on('aborted', () => res.destroy());
    answer.on('end', () => {
      if (res.destroyed) return;
      const body = Buffer.concat(chunks, size);
      // Claimed a length and sent another: send exactly what came, uncompressed.
      if (tooLarge || size !== length) return void res.destroy();
      this.compressed(body, encoding).then(
        (packed) => {
          if (res.destroyed) return;
          if (packed.length >= body.length) return sendBody(res, status, answer.statusMessage, out, body, undefined);
          sendBody(res, status, answer.statusMessage, out, packed, encoding);
        },
        () => {
          if (!res.destroyed) sendBody(res, status, answer.statusMessage, out, body, undefined);
        },
      );
    });
  }

  /** brotli or gzip, if the browser takes one, the server did not compress, and the type gains from it. */
  private mayCompress(answer: http.IncomingMessage): boolean {
    return answer.headers['content-encoding'] === undefined && isCompressible(answer.headers['content-type'] ?? '');
  }

  private encodingFor(req: http.IncomingMessage, answer: http.IncomingMessage): Encoding | undefined {
    if (!this.mayCompress(answer)) return undefined;
    return preferredEncoding(req.headers['accept-encoding']);
  }

  private async compressed(body: Buffer, encoding: Encoding): Promise<Buffer> {
    const key = `${encoding}:${createHash('sha256').update(body).digest('base64')}`;
    const hit = this.cache.get(key);
    if (hit) {
      // Most recently used last: the Map's order is the eviction order.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const packed = await compress(body, encoding);
    this.cache.set(key, packed);
    this.cachedBytes += packed.length;
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= CACHE_BYTES) break;
      this.cache.delete(k);
      this.cachedBytes -= v.length;
    }
    return packed;
  }
}

/** The server's headers with our Cache-Control instead of its own (and without Expires, which it overrides anyway). */
function withCacheControl(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'cache-control' || name === 'expires' || name === 'pragma') continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  out.push('cache-control', IMMUTABLE);
  return out;
}

function hasVaryOnEncoding(headers: string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === 'vary' && /accept-encoding|\*/i.test(headers[i + 1]!)) return true;
  return false;
}

function sendBody(res: http.ServerResponse, status: number, message: string | undefined, headers: string[], body: Buffer, encoding: Encoding | undefined): void {
  const out: string[] = [];
  let vary: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'content-length') continue;
    if (name === 'vary') {
      vary = vary ? `${vary}, ${headers[i + 1]!}` : headers[i + 1]!;
      continue;
    }
    // The server's validator names its identity bytes, not these.
    if (encoding && name === 'etag') continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  out.push('content-length', String(body.length));
  // Whether compressed or not, the answer depends on Accept-Encoding.
  out.push('vary', vary && !/accept-encoding/i.test(vary) ? `${vary}, Accept-Encoding` : (vary ?? 'Accept-Encoding'));
  if (encoding) out.push('content-encoding', encoding);
  res.writeHead(status, message, out);
  res.end(body);
}
