import fs from 'node:fs';
import path from 'node:path';
import type { VendorAsset } from '../web/vendor-assets.js';
import { VENDOR_BASE_PATH } from '../web/vendor-assets.js';

/**
 * BokehJS as the hub serves it: the exact files of the Bokeh in the notebook environment, under
 * /hub/static/vendor/bokeh/<version>/static/js/ (the layout Bokeh's "server" resources ask
 * for: course-notebooks/samples/offline_plots.py points notebooks there). The version is in
 * the URL, so the files are cached as immutable; BokehJS must be the version of the Python
 * package that made the plot, which is why it comes from the venv and not from npm.
 */
const FILES = ['bokeh', 'bokeh-gl', 'bokeh-widgets', 'bokeh-tables', 'bokeh-mathjax', 'bokeh-api'];

export interface BokehJs {
  /** The version served, or null when the environment has no Bokeh. */
  version: string | null;
  assets: VendorAsset[];
  /** The URLs a page needs for the plots the samples make (no MathJax, no API). */
  pageScripts(hubOrigin: string): string[];
}

export function bokehUrlBase(version: string): string {
  return `${VENDOR_BASE_PATH}/bokeh/${version}/static/js`;
}

/** Find Bokeh in a Python virtual environment (lib/python3.X/site-packages). Never throws. */
export function findBokehJs(venv: string): BokehJs {
  const none: BokehJs = { version: null, assets: [], pageScripts: () => [] };
  let site: string | undefined;
  try {
    const lib = path.join(venv, 'lib');
    const py = fs.readdirSync(lib).find((d) => /^python3\.\d+$/.test(d));
    site = py ? path.join(lib, py, 'site-packages') : undefined;
  } catch {
    return none;
  }
  if (!site) return none;
  let version: string | undefined;
  try {
    version = fs
      .readdirSync(site)
      .map((d) => /^bokeh-(\d+\.\d+\.\d+[\w.]*)\.dist-info$/.exec(d)?.[1])
      .find((v) => v !== undefined);
  } catch {
    return none;
  }
  if (!version) return none;
  const dir = path.join(site, 'bokeh', 'server', 'static', 'js');
  const base = bokehUrlBase(version);
  const assets: VendorAsset[] = FILES.map((f) => `${f}.min.js`)
    .filter((f) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.isFile())
    .map((f) => ({ urlPath: `${base}/${f}`, file: path.join(dir, f), contentType: 'text/javascript; charset=utf-8', immutable: true }));
  if (!assets.some((a) => a.urlPath.endsWith('/bokeh.min.js'))) return none;
  const served = new Set(assets.map((a) => a.urlPath));
  return {
    version,
    assets,
    pageScripts: (hub) => ['bokeh', 'bokeh-gl', 'bokeh-widgets', 'bokeh-tables'].map((f) => `${base}/${f}.min.js`).filter((u) => served.has(u)).map((u) => hub + u),
  };
}
