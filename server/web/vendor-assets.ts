import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type http from 'node:http';
import express, { Router, type Express, type Request, type Response, type NextFunction } from 'express';

/**
 * The JavaScript, CSS, images and fonts that Folium maps load, served by the hub itself so a
 * map renders with no outside network and no student's browser calls a third-party CDN.
 * course-notebooks/samples/offline_maps.py points Folium's CDN addresses at these paths; the
 * two tables change together (test/integration/samples.test.ts checks that every path the
 * executed samples reference is served here).
 *
 * Files come from npm packages (dependencies in package.json), found with require.resolve,
 * and only the files listed here are served: no directory listings, no other file of a package.
 */
export const VENDOR_BASE_PATH = '/hub/static/vendor';

interface VendorPackage {
  /** The folder under VENDOR_BASE_PATH. */
  readonly mount: string;
  /** The npm package the files come from. */
  readonly npm: string;
  /** The folder inside the package that `files` are relative to ('' for its root). */
  readonly dir: string;
  /** Paths relative to `dir`, served under VENDOR_BASE_PATH/mount/ with the same relative path. */
  readonly files: readonly string[];
}

export const VENDOR_PACKAGES: readonly VendorPackage[] = [
  {
    mount: 'leaflet',
    npm: 'leaflet',
    dir: 'dist',
    // The CSS refers to images/ relative to itself; Leaflet finds its default marker icon the same way.
    files: ['leaflet.js', 'leaflet.css', 'images/layers.png', 'images/layers-2x.png', 'images/marker-icon.png', 'images/marker-icon-2x.png', 'images/marker-shadow.png'],
  },
  { mount: 'jquery', npm: 'jquery', dir: 'dist', files: ['jquery.min.js'] },
  { mount: 'bootstrap', npm: 'bootstrap', dir: 'dist', files: ['js/bootstrap.bundle.min.js', 'css/bootstrap.min.css'] },
  {
    mount: 'fontawesome',
    npm: '@fortawesome/fontawesome-free',
    dir: '',
    // all.min.css refers to ../webfonts/ (woff2 first, ttf as a fallback).
    files: [
      'css/all.min.css',
      'webfonts/fa-solid-900.woff2',
      'webfonts/fa-solid-900.ttf',
      'webfonts/fa-regular-400.woff2',
      'webfonts/fa-regular-400.ttf',
      'webfonts/fa-brands-400.woff2',
      'webfonts/fa-brands-400.ttf',
      'webfonts/fa-v4compatibility.woff2',
      'webfonts/fa-v4compatibility.ttf',
    ],
  },
  {
    mount: 'awesome-markers',
    npm: 'leaflet.awesome-markers',
    dir: 'dist',
    files: [
      'leaflet.awesome-markers.js',
      'leaflet.awesome-markers.css',
      'images/markers-soft.png',
      'images/markers-soft@2x.png',
      'images/markers-shadow.png',
      'images/markers-shadow@2x.png',
    ],
  },
  // branca's colour-scale legend is written for d3 version 3; "d3-v3" is an npm alias of d3@3.
  { mount: 'd3-v3', npm: 'd3-v3', dir: '', files: ['d3.min.js'] },
];

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
};

/**
 * Cached for 30 days by browsers and nginx. The URLs carry no version, so not `immutable`:
 * after an upgrade within the packages' semver ranges, revalidation (ETag/Last-Modified)
 * catches up.
 */
const CACHE_CONTROL = 'public, max-age=2592000';

export interface VendorAsset {
  /** The URL path, e.g. /hub/static/vendor/leaflet/leaflet.js */
  readonly urlPath: string;
  readonly file: string;
  readonly contentType: string;
  /** The URL names the exact version (e.g. BokehJS 3.9.2): the browser never needs to ask again. */
  readonly immutable?: boolean;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
// Text files are sent gzipped (BokehJS: 1.9 MB becomes about 0.5 MB), compressed once per file.
const COMPRESSIBLE = /^(?:text\/|application\/json)/;

function packageRoot(npm: string): string {
  let manifest: string;
  try {
    manifest = require.resolve(`${npm}/package.json`);
  } catch {
    throw new Error(`vendor assets: the npm package ${npm} is missing; run \`npm ci\` (it is a dependency in package.json).`);
  }
  return path.dirname(manifest);
}

/** Every served asset, resolved to its file. Throws, naming the package, if a file is missing. */
export function vendorAssets(): VendorAsset[] {
  const assets: VendorAsset[] = [];
  for (const pkg of VENDOR_PACKAGES) {
    const root = path.join(packageRoot(pkg.npm), pkg.dir);
    for (const rel of pkg.files) {
      const file = path.join(root, rel);
      const contentType = CONTENT_TYPES[path.extname(rel)];
      if (contentType === undefined) throw new Error(`vendor assets: no content type for ${rel}`);
      if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
        throw new Error(`vendor assets: ${pkg.npm} has no ${path.posix.join(pkg.dir, rel)}; is the installed version the one package.json asks for?`);
      }
      assets.push({ urlPath: `${VENDOR_BASE_PATH}/${pkg.mount}/${rel}`, file, contentType });
    }
  }
  return assets;
}

/**
 * An express Router serving the vendor assets at their full paths (mount it with
 * `app.use(vendorAssetsRouter())`, before anything that needs a session: these are public).
 * Unknown paths under /hub/static/vendor/ fall through to the app's 404.
 */
export function vendorAssetsRouter(extra: readonly VendorAsset[] = []): Router {
  const byPath = new Map([...vendorAssets(), ...extra].map((a) => [a.urlPath, a]));
  const gzipped = new Map<string, Promise<Buffer>>();
  const gzipOf = (asset: VendorAsset): Promise<Buffer> => {
    let p = gzipped.get(asset.urlPath);
    if (!p) {
      p = fs.promises.readFile(asset.file).then((b) => new Promise<Buffer>((resolve, reject) => zlib.gzip(b, { level: 9 }, (err, out) => (err ? reject(err) : resolve(out)))));
      p.catch(() => gzipped.delete(asset.urlPath));
      gzipped.set(asset.urlPath, p);
    }
    return p;
  };
  const router = Router({ caseSensitive: true, strict: true });
  router.use(VENDOR_BASE_PATH, (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let rel: string;
    try {
      rel = decodeURIComponent(req.path);
    } catch {
      return next();
    }
    const asset = byPath.get(VENDOR_BASE_PATH + rel);
    if (!asset) return next();
    res.setHeader('Content-Type', asset.contentType);
    res.setHeader('Cache-Control', asset.immutable ? IMMUTABLE : CACHE_CONTROL);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Public library files, loaded by pages on users' origins and by sandboxed (opaque-origin)
    // map frames, whose font requests are CORS requests: nothing here is private.
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    if (asset.contentType.startsWith('font/')) res.setHeader('Access-Control-Allow-Origin', '*');
    if (COMPRESSIBLE.test(asset.contentType)) {
      res.setHeader('Vary', 'Accept-Encoding');
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        gzipOf(asset).then(
          (body) => {
            res.setHeader('Content-Encoding', 'gzip');
            res.setHeader('Content-Length', body.length);
            res.end(req.method === 'HEAD' ? undefined : body);
          },
          (err: Error) => next(err),
        );
        return;
      }
    }
    res.sendFile(asset.file, { cacheControl: false, dotfiles: 'allow' }, (err?: Error) => {
      if (err && !res.headersSent) next(err);
    });
  });
  return router;
}

/** Whether a request is a GET or HEAD under VENDOR_BASE_PATH (for vendorAssetsApp). */
export function isVendorAssetRequest(req: http.IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (req.url ?? '').startsWith(`${VENDOR_BASE_PATH}/`);
}

/**
 * The vendor assets alone, for user-content hosts: a map's output frame is srcdoc, so it loads
 * `/hub/static/vendor/...` from the notebook's own origin. Public files, no session, nothing
 * else of the hub; `notFound` answers every other path.
 */
export function vendorAssetsApp(notFound: (req: http.IncomingMessage, res: http.ServerResponse) => void, extra: readonly VendorAsset[] = []): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(vendorAssetsRouter(extra));
  app.use((req: Request, res: Response) => notFound(req, res));
  // A file that went away under us: the same answer, never express's page with a stack.
  app.use((_err: Error, req: Request, res: Response, _next: NextFunction) => notFound(req, res));
  return app;
}
