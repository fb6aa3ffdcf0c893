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
 * chunks and fonts, 17 MB), served once by the hub for every server of that build (issue 14):
 * the local spawner's, from the hub's own notebook environment, and the Docker spawner's, from a
 * copy taken out of each image (ImageLabBuilds). Every such server's JupyterLab is told to
 * load it from here (`--LabApp.override_static_url`), so the files have one URL per build
 * instead of one per user origin: a browser that opened one workspace has them cached for the
 * next one (same site), and a returning "Try it" visitor, whose every visit is a new origin,
 * downloads none of it again.
 *
 * The files come from the hub's environment or the operator's image (copied out of a container
 * that never ran), never from a running user's server, so no server can change what another
 * user's browser runs. The build's name is the content hash of its main bundle (which
 * names every chunk's hash), so a JupyterLab upgrade is a new URL and no browser mixes builds.
 */
export class LabStatic {
  private readonly compressed = new Map<string, Promise<Buffer>>();
  /** Each build's files, by the build's name. */
  private readonly builds = new Map<string, ReadonlyMap<string, LabFile>>();

  constructor(private readonly log: Logger) {}

  /** Where JupyterLab's build sits in a notebook environment (it looks for its app there). */
  static folderIn(venvDir: string): string {
    return path.join(path.resolve(venvDir), 'share', 'jupyter', 'lab', 'static');
  }

  /**
   * Serve the build in `dir` (a JupyterLab `static/` folder) and return its name, or undefined
   * with a log line when there is none (then the servers of that build serve their own).
   */
  add(dir: string): string | undefined {
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
      this.log.info({ dir, err: (err as Error).message }, 'no JupyterLab build to share there; its servers serve their own');
      return undefined;
    }
    if (!build || !files.has(`main.${build}.js`)) {
      this.log.warn({ dir }, 'JupyterLab build without its main bundle; its servers serve their own');
      return undefined;
    }
    // The same build from another source (the venv and an image): the first copy stays.
    if (!this.builds.has(build)) {
      this.builds.set(build, files);
      this.log.info({ dir, build, files: files.size }, 'serving a JupyterLab build for every server of it');
    }
    return build;
  }

  /** The URL prefix a server's JupyterLab of `build` loads its files from, on the hub's origin. */
  urlPrefix(hubOrigin: string, build: string): string {
    return `${hubOrigin}${LAB_STATIC_PATH}${build}/`;
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
    const files = build === undefined ? undefined : this.builds.get(build);
    const found = files && name !== undefined && more.length === 0 ? files.get(name) : undefined;
    if (!found) return notFound(res, files ? 'There is no such file in this JupyterLab build.' : 'This hub does not serve that JupyterLab build; reload the page, or restart your server.');
    res.setHeader('Content-Type', found.contentType);
    res.setHeader('Cache-Control', IMMUTABLE);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Loaded by every user origin (scripts, and fonts, whose requests are CORS requests); nothing here is private.
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.setHeader('Access-Control-Allow-Origin', '*');
    const compressible = isCompressible(found.contentType);
    if (compressible) res.setHeader('Vary', 'Accept-Encoding');
    const encoding = compressible && found.size >= MIN_COMPRESS_BYTES ? preferredEncoding(req.headers['accept-encoding']) : undefined;
    if (encoding) {
      this.compressedFile(`${build}/${name}`, found, encoding).then(
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

/**
 * The JupyterLab builds of the Docker spawner's images: each image's `static/` folder is copied
 * out once per image id into `dir` (dataDir/lab-static/), then served by LabStatic. The first
 * server of a new image starts while the copy is made and serves its own build; the ones after
 * it load the hub's. An image without the folder (a custom one) is left to serve its own.
 */
export class ImageLabBuilds {
  /** By image id: the build's name, null when it has none to share, a promise while copying. */
  private readonly byImage = new Map<string, string | null | Promise<void>>();

  constructor(
    private readonly lab: LabStatic,
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /**
   * The build of image `imageId` if the hub serves it; otherwise undefined, and the copy is
   * started (`exportTo` writes the image's folder to a path and says whether it had one).
   */
  buildOf(imageId: string, exportTo: (dest: string) => Promise<boolean>): string | undefined {
    const known = this.byImage.get(imageId);
    if (typeof known === 'string') return known;
    if (known === undefined) this.byImage.set(imageId, this.copy(imageId, exportTo));
    return undefined;
  }

  /** Resolves once every copy started so far has ended (for tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.byImage.values()].filter((v): v is Promise<void> => v instanceof Promise));
  }

  private async copy(imageId: string, exportTo: (dest: string) => Promise<boolean>): Promise<void> {
    const dest = path.join(this.dir, imageId.replace(/^sha256:/, '').replace(/[^0-9a-zA-Z]/g, '').slice(0, 32));
    const partial = `${dest}.partial`;
    let build: string | undefined;
    try {
      // An image id names its content: a folder copied by an earlier run is the same files.
      if (!fs.existsSync(dest)) {
        await fs.promises.rm(partial, { recursive: true, force: true });
        if (await exportTo(partial)) await fs.promises.rename(partial, dest);
        else this.log.info({ image: imageId }, 'the image has no JupyterLab build where ours keep it; its servers serve their own');
      }
      if (fs.existsSync(dest)) build = this.lab.add(dest);
    } catch (err) {
      this.log.warn({ image: imageId, err: (err as Error).message }, 'could not copy the image\'s JupyterLab build; its servers serve their own');
      await fs.promises.rm(partial, { recursive: true, force: true }).catch(() => undefined);
    }
    this.byImage.set(imageId, build ?? null);
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
