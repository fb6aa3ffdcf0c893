import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import type { Logger } from '../log.js';
import { compress, IMMUTABLE, isCompressible, preferredEncoding, type Encoding } from '../proxy/static-assets.js';

/** Where the hub serves JupyterLab's build: `/hub/static/lab/<build>/<file>`. */
export const LAB_STATIC_PATH = '/hub/static/lab/';

/** Smaller bodies are sent as they are (headers and framing eat the gain). */
const MIN_COMPRESS_BYTES = 1024;
// Every file of a JupyterLab build is named plainly (`1014.073326ef5d98db5e.js`, `style.js`).
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// index.html is a Jinja template the notebook server fills in, never a static file.
const NOT_SERVED = new Set(['index.html']);
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.eot': 'application/vnd.ms-fontobject',
  '.wasm': 'application/wasm',
};

interface LabFile {
  readonly file: string;
  readonly size: number;
  readonly contentType: string;
}

/**
 * JupyterLab's built front end (its `static/` folder: the main bundle, ~300 content-hashed
 * chunks and fonts, 17 MB), served once by the hub for every server started from the hub's own
 * notebook environment (issue 14). Every server's JupyterLab is told to load it from here
 * (`--LabApp.override_static_url`), so the files have one URL per build instead of one per
 * user origin: a browser that opened one workspace has them cached for the next one (same
 * site), and a returning "Try it" visitor, whose every visit is a new origin, downloads none
 * of it again.
 *
 * The files come from the hub's disk, never from a user's server, so no server can change what
 * another user's browser runs. The build's name is the content hash of its main bundle (which
 * names every chunk's hash), so a JupyterLab upgrade is a new URL and no browser mixes builds.
 */
export class LabStatic {
  private readonly compressed = new Map<string, Promise<Buffer>>();

  private constructor(
    /** The main bundle's content hash: the build's name in URLs. */
    readonly build: string,
    private readonly files: ReadonlyMap<string, LabFile>,
    private readonly log: Logger,
  ) {}

  /**
   * The build in a notebook environment (`<venv>/share/jupyter/lab/static`, where JupyterLab
   * looks for its app), or undefined with a log line when there is none to share (then each
   * server serves its own, as before).
   */
  static load(venvDir: string, log: Logger): LabStatic | undefined {
    const dir = path.join(path.resolve(venvDir), 'share', 'jupyter', 'lab', 'static');
    let build: string | undefined;
    const files = new Map<string, LabFile>();
    try {
      build = /\bmain\.([0-9a-f]{8,})\.js\b/.exec(fs.readFileSync(path.join(dir, 'index.html'), 'utf8'))?.[1];
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (!entry.isFile() || !FILE_NAME.test(entry.name) || NOT_SERVED.has(entry.name)) continue;
        const file = path.join(dir, entry.name);
        files.set(entry.name, { file, size: fs.statSync(file).size, contentType: CONTENT_TYPES[path.extname(entry.name).toLowerCase()] ?? 'application/octet-stream' });
      }
    } catch (err) {
      log.info({ dir, err: (err as Error).message }, 'no JupyterLab build to share; each server serves its own');
      return undefined;
    }
    if (!build || !files.has(`main.${build}.js`)) {
      log.warn({ dir }, 'JupyterLab build without its main bundle; each server serves its own');
      return undefined;
    }
    return new LabStatic(build, files, log);
  }

  /** The URL prefix a server's JupyterLab loads its files from, on the hub's origin. */
  urlPrefix(hubOrigin: string): string {
    return `${hubOrigin}${LAB_STATIC_PATH}${this.build}/`;
  }

  /** Whether `req` is for these files (cheap: called for every hub request). */
  static matches(req: http.IncomingMessage): boolean {
    return (req.method === 'GET' || req.method === 'HEAD') && (req.url ?? '').startsWith(LAB_STATIC_PATH);
  }

  /** Answer a request that `matches`: the file, cached for a year and compressed where it helps; 404 otherwise. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const [build, name, ...more] = (q === -1 ? url : url.slice(0, q)).slice(LAB_STATIC_PATH.length).split('/');
    const found = build === this.build && name !== undefined && more.length === 0 ? this.files.get(name) : undefined;
    if (!found) return notFound(res, build === this.build ? 'There is no such file in this JupyterLab build.' : 'This JupyterLab build is not the one this hub serves; reload the page.');
    res.setHeader('Content-Type', found.contentType);
    res.setHeader('Cache-Control', IMMUTABLE);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Loaded by every user origin (scripts, and fonts, whose requests are CORS requests); nothing here is private.
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.setHeader('Access-Control-Allow-Origin', '*');
    const encoding = isCompressible(found.contentType) && found.size >= MIN_COMPRESS_BYTES ? preferredEncoding(req.headers['accept-encoding']) : undefined;
    if (isCompressible(found.contentType)) res.setHeader('Vary', 'Accept-Encoding');
    if (encoding) {
      this.compressedFile(name!, found, encoding).then(
        (body) => {
          res.setHeader('Content-Encoding', encoding);
          res.setHeader('Content-Length', body.length);
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: Error) => this.gone(res, found, err),
      );
      return;
    }
    res.setHeader('Content-Length', found.size);
    if (req.method === 'HEAD') return void res.end();
    const stream = fs.createReadStream(found.file);
    stream.once('error', (err) => this.gone(res, found, err));
    stream.pipe(res);
  }

  /** Compressed once per file and encoding (the set is the build's, so bounded), then kept. */
  private compressedFile(name: string, found: LabFile, encoding: Encoding): Promise<Buffer> {
    const key = `${encoding}:${name}`;
    let body = this.compressed.get(key);
    if (!body) {
      body = fs.promises.readFile(found.file).then((raw) => compress(raw, encoding));
      // A failure is not kept: the next request tries again.
      body.catch(() => this.compressed.delete(key));
      this.compressed.set(key, body);
    }
    return body;
  }

  /** A file that went away under the hub (the environment was rebuilt while it ran). */
  private gone(res: http.ServerResponse, found: LabFile, err: Error): void {
    this.log.warn({ file: found.file, err: err.message }, 'a JupyterLab file could not be read');
    if (res.headersSent) return void res.destroy();
    res.removeHeader('Content-Encoding');
    res.removeHeader('Content-Length');
    notFound(res, 'This JupyterLab file is not here any more; the notebook environment changed. Restart your server.');
  }
}

function notFound(res: http.ServerResponse, message: string): void {
  const body = `${message}\n`;
  res.writeHead(404, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}
