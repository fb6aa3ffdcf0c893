import type nunjucks from 'nunjucks';
import type { BokehJs } from './bokeh-assets.js';
import type { RenderedSample } from './sample-gallery.js';
import { VENDOR_BASE_PATH } from '../web/vendor-assets.js';

/** What a rendered sample page links to: where it is, where its live notebook is. */
export interface SamplePageUrls {
  /** The hub's absolute origin (its static files, the vendored libraries). */
  hub: string;
  /** JupyterLab with this notebook open ("Edit and run"). */
  labUrl: string;
  /** The server's API base (…/user/NAME/), for the page that runs cells in the warm kernel. */
  serverBase: string;
  /** The notebook's path in the server, e.g. samples/index.ipynb. */
  notebookPath: string;
  /**
   * A preview for a visitor still waiting in line (empty labUrl and serverBase: no server yet),
   * framed by this origin (the hub's waiting page) instead of the visitor's own workspace page.
   */
  framedBy?: string;
}

/** JSON for a <script type="application/json">: nothing in it can end the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * A rendered sample as a page on the visitor's own origin, and its CSP: scripts only from the
 * hub's own files (the page's script and the vendored libraries) and, by hash, the inline
 * scripts of its sandboxed map frames; no eval, so a Bokeh document's CustomJS can't run; no
 * plugins, forms or base URL; connections only to this origin (the warm kernel).
 */
export function samplePage(views: nunjucks.Environment, sample: RenderedSample, bokeh: BokehJs, urls: SamplePageUrls): { html: string; csp: string } {
  const canPlot = sample.bokeh.length > 0 && bokeh.version !== null && sample.bokehVersion === bokeh.version;
  const scripts = canPlot ? bokeh.pageScripts(urls.hub) : [];
  const html = views.render('try-sample.njk', {
    sample,
    article: sample.html,
    bokehJson: canPlot ? scriptJson(sample.bokeh) : null,
    bokehMissing: sample.bokeh.length > 0 && !canPlot ? (sample.bokehVersion ?? 'unknown') : null,
    codeJson: scriptJson(sample.codeCells),
    scripts,
    ...urls,
    preview: urls.framedBy !== undefined,
  });
  const vendor = `${urls.hub}${VENDOR_BASE_PATH}/`;
  const csp = [
    "default-src 'none'",
    `script-src ${urls.hub}/hub/static/notebook-view.js ${vendor} ${sample.frameScriptHashes.join(' ')}`.trim(),
    // Bokeh and Folium style their elements inline.
    `style-src ${urls.hub}/hub/static/ 'unsafe-inline'`,
    `img-src ${vendor} data:`,
    `font-src ${vendor}`,
    "connect-src 'self'",
    urls.framedBy ? `frame-ancestors ${urls.framedBy}` : "frame-ancestors 'self'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
  return { html, csp };
}
