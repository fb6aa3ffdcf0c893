import { createHash } from 'node:crypto';
import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';
import { BadRequest } from '../errors.js';

/**
 * A read-only view of an executed nbformat 4 notebook as HTML, for pages that must never run
 * the notebook's own code as the viewer: the "Try it" samples shown before the visitor's server
 * is ready, and later shared notebooks. Everything is sanitised (markdown-it, then
 * sanitize-html with an allow-list); what the notebook's JavaScript would have drawn comes back
 * in two safe forms:
 *
 * - **Bokeh** plots: the document JSON is taken out of the output's script (never run) and
 *   returned as data; the page's own script (served by the hub) hands it to BokehJS, also
 *   served by the hub. Bokeh's CustomJS needs `eval`, which the page's CSP refuses.
 * - **Folium** maps (and any `<iframe srcdoc>`): kept as a frame with `sandbox="allow-scripts"`,
 *   so its scripts run in an opaque origin, away from the page's cookies, storage and DOM. A
 *   srcdoc frame inherits the page's CSP: the page allows exactly the inline scripts of those
 *   frames, by hash (`frameScriptHashes`), and the hub's vendored libraries.
 *
 * Anything else that is script (application/javascript outputs, <script> in markdown or HTML,
 * event handler attributes, javascript: links) is dropped.
 */

export interface RenderOptions {
  /** Absolute URL prefix of the hub's vendored libraries (…/hub/static/vendor), for map frames. */
  vendorBase: string;
  /** Where a relative link to another notebook (e.g. `heatmap.ipynb`) goes; undefined keeps it as text. */
  notebookLink?: (relPath: string) => string | undefined;
  /** false: drop script frames (map outputs) too, for pages where nothing may run at all (shared notebooks). */
  frames?: boolean;
  /**
   * Most characters of HTML and markdown put through the sanitiser in all (shared notebooks:
   * the hub renders them in its own process, and sanitising takes about 0.4 s per MB there).
   * Past it, an output or markdown cell becomes a note. Unset: no limit.
   */
  maxHtmlChars?: number;
}

/** A Bokeh output: what `Bokeh.embed.embed_items(docs, renderItems)` needs. */
export interface BokehItem {
  docs: Record<string, unknown>;
  renderItems: unknown[];
}

export interface RenderedNotebook {
  /** The first heading, or '' when there is none. */
  title: string;
  /** The notebook as sanitised HTML (an <article>), safe under a CSP without 'unsafe-inline' scripts. */
  html: string;
  /** CSP sources ('sha256-…') of the inline scripts inside the sandboxed output frames. */
  frameScriptHashes: string[];
  /** Bokeh documents to embed, in order; empty when there is none. */
  bokeh: BokehItem[];
  /** The BokehJS version the documents were made with (from their JSON), or null without Bokeh. */
  bokehVersion: string | null;
  /** Code cells' sources in order (for a page that runs them in a kernel). */
  codeCells: string[];
}

/** The notebook is not one this renderer understands (not JSON, not nbformat 4). */
export class NotebookInvalid extends BadRequest {
  constructor(detail: string) {
    super('That file is not a notebook this hub can show (nbformat 4 JSON expected).', detail);
  }
}

const BOKEH_EXEC = 'application/vnd.bokehjs_exec.v0+json';
const BOKEH_LOAD = 'application/vnd.bokehjs_load.v0+json';
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;
const BASE64 = /^[A-Za-z0-9+/=\s]+$/;
const SAFE_ID = /^[A-Za-z0-9_-]{1,200}$/;

const TAGS = [
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'br', 'hr', 'blockquote', 'pre', 'code', 'kbd', 'samp', 'var',
  'em', 'strong', 'b', 'i', 'u', 's', 'del', 'ins', 'mark', 'small', 'sub', 'sup', 'abbr', 'cite', 'q',
  'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'a', 'img', 'span', 'div', 'figure', 'figcaption', 'details', 'summary',
  'table', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'caption', 'colgroup', 'col',
];

/**
 * A style attribute that could make the viewer's browser fetch something (url(), image-set(),
 * @import, old IE expression()/behavior, or CSS escapes that could spell them) is dropped
 * whole; data: images stay. The page's CSP blocks such fetches too: this keeps them from
 * being asked for at all.
 */
const FETCHING_STYLE = /url\s*\(|image-set|image\s*\(|cross-fade|element\s*\(|expression|behavior|binding|@|\\/i;
const DATA_IMAGE_URL = /url\(\s*(["']?)data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+\1\s*\)/gi;

function safeStyle(attribs: sanitizeHtml.Attributes): sanitizeHtml.Attributes {
  const style = attribs.style;
  if (style === undefined || !FETCHING_STYLE.test(style.replace(DATA_IMAGE_URL, ''))) return attribs;
  const rest = { ...attribs };
  delete rest.style;
  return rest;
}

/** Every tag's transform, then its style checked (sanitize-html runs one transform per tag). */
function withSafeStyles(transforms: Record<string, sanitizeHtml.Transformer>): Record<string, sanitizeHtml.Transformer> {
  const out: Record<string, sanitizeHtml.Transformer> = { '*': (tagName, attribs) => ({ tagName, attribs: safeStyle(attribs) }) };
  for (const [tag, t] of Object.entries(transforms)) {
    out[tag] = (tagName, attribs) => {
      const r = typeof t === 'string' ? { tagName: t, attribs } : t(tagName, attribs);
      return { ...r, attribs: safeStyle(r.attribs) };
    };
  }
  return out;
}

function sanitizeOptions(o: RenderOptions, frames: string[] | null): sanitizeHtml.IOptions {
  return {
    allowedTags: frames ? [...TAGS, 'iframe'] : TAGS,
    allowedAttributes: {
      '*': ['class', 'style', 'title', 'lang', 'dir', 'align'],
      a: ['href'],
      img: ['src', 'alt', 'width', 'height'],
      td: ['colspan', 'rowspan'],
      th: ['colspan', 'rowspan', 'scope'],
      ol: ['start'],
      // sandbox is always the one transformTags sets, never the notebook's.
      iframe: ['srcdoc', 'sandbox', 'width', 'height'],
    },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['data'] },
    allowProtocolRelative: false,
    // Frames come back only with srcdoc, sandboxed to an opaque origin whatever they asked for.
    transformTags: withSafeStyles({
      a: (tag, attribs) => {
        const href = attribs.href;
        if (href !== undefined && !/^[a-z][a-z0-9+.-]*:/i.test(href) && !href.startsWith('#')) {
          const m = /^([^?#]+\.ipynb)(#.*)?$/.exec(href);
          const target = m ? o.notebookLink?.(decodeURIComponent(m[1]!)) : undefined;
          if (target) return { tagName: 'a', attribs: { ...attribs, href: target + (m?.[2] ?? '') } };
          const rest = { ...attribs };
          delete rest.href;
          return { tagName: 'a', attribs: rest };
        }
        return { tagName: 'a', attribs: href ? { ...attribs, rel: 'noopener noreferrer', target: '_blank' } : attribs };
      },
      img: (tag, attribs) => {
        // Images only from data: URLs of images (no fetch to anyone, no SVG script: <img> never runs it).
        const src = attribs.src ?? '';
        return { tagName: 'img', attribs: /^data:image\/(png|jpeg|gif|webp|svg\+xml);base64,/i.test(src) ? attribs : { ...attribs, src: '' } };
      },
      iframe: (tag, attribs) => {
        if (!frames || attribs.srcdoc === undefined) return { tagName: 'span', attribs: {} };
        const srcdoc = frameDocument(attribs.srcdoc, o.vendorBase, frames);
        return { tagName: 'iframe', attribs: { srcdoc, sandbox: 'allow-scripts', class: 'nb-frame', ...(attribs.width ? { width: attribs.width } : {}), ...(attribs.height ? { height: attribs.height } : {}), ...(attribs.style ? { style: attribs.style } : {}) } };
      },
    }),
    exclusiveFilter: (frame) => frame.tag === 'span' && frame.text.includes('Make this Notebook Trusted'),
  };
}

/**
 * A map frame's document: the hub's vendored files by absolute URL (one cached copy for every
 * visitor's origin), and the hash of each inline script recorded for the page's CSP.
 */
function frameDocument(doc: string, vendorBase: string, hashes: string[]): string {
  const rewritten = doc.replace(/(\b(?:src|href)=["'])\/hub\/static\/vendor\//g, `$1${vendorBase}/`);
  for (const m of rewritten.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script/gi)) {
    if (/\bsrc\s*=/i.test(m[1] ?? '')) continue;
    // The browser hashes the script's text after the parser turned CRLF into LF.
    const text = (m[2] ?? '').replace(/\r\n?/g, '\n');
    hashes.push(`'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`);
  }
  return rewritten;
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join('');
  return '';
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function pre(cls: string, body: string): string {
  return `<pre class="${cls}">${escapeHtml(body.replace(ANSI, ''))}</pre>`;
}

/** The JSON literal after `const NAME = ` in Bokeh's embed script, parsed; undefined when absent or not JSON. */
function jsonAfter(script: string, name: string, next: string): unknown {
  const start = script.indexOf(`const ${name} = `);
  if (start === -1) return undefined;
  const from = start + `const ${name} = `.length;
  const end = script.indexOf(next, from);
  if (end === -1) return undefined;
  const literal = script.slice(from, end).replace(/;\s*(?:void\s*)?$/, '');
  try {
    return JSON.parse(literal) as unknown;
  } catch {
    return undefined;
  }
}

/** The Bokeh document of an exec output, read (not run) from its script. */
function bokehItem(script: string): BokehItem | undefined {
  const docs = jsonAfter(script, 'docs_json', 'const render_items');
  const renderItems = jsonAfter(script, 'render_items', 'root.Bokeh.embed');
  if (typeof docs !== 'object' || docs === null || Array.isArray(docs) || !Array.isArray(renderItems)) return undefined;
  // Only plain element ids: they become the ids of the page's placeholders.
  for (const item of renderItems as unknown[]) {
    const roots = (item as { roots?: unknown }).roots;
    if (typeof roots !== 'object' || roots === null) return undefined;
    if (!Object.values(roots).every((v) => typeof v === 'string' && SAFE_ID.test(v))) return undefined;
    delete (item as { notebook_comms_target?: unknown }).notebook_comms_target;
  }
  return { docs: docs as Record<string, unknown>, renderItems };
}

interface Context {
  o: RenderOptions;
  md: InstanceType<typeof MarkdownIt>;
  frames: string[];
  bokeh: BokehItem[];
  versions: Set<string>;
  /** Characters the sanitiser may still take (maxHtmlChars). */
  budget: number;
}

const TOO_LARGE = '<p class="nb-note">A large output this view does not show: open the notebook to see it.</p>';

/** Whether `n` more characters fit in the sanitiser's budget (taking them if so). */
function spend(ctx: Context, n: number): boolean {
  if (n > ctx.budget) return false;
  ctx.budget -= n;
  return true;
}

function markdown(ctx: Context, source: string): string {
  if (!spend(ctx, source.length)) return TOO_LARGE;
  return sanitizeHtml(ctx.md.render(source), sanitizeOptions(ctx.o, null));
}

function renderData(ctx: Context, data: Record<string, unknown>): string {
  if (BOKEH_EXEC in data) {
    const item = bokehItem(text(data['application/javascript']));
    if (!item) return '<p class="nb-note">A Bokeh plot that this view cannot show: open the notebook to run it.</p>';
    ctx.bokeh.push(item);
    for (const doc of Object.values(item.docs)) {
      const v = (doc as { version?: unknown }).version;
      if (typeof v === 'string') ctx.versions.add(v);
    }
    const ids = item.renderItems.flatMap((r) => Object.values((r as { roots: Record<string, string> }).roots));
    return ids.map((id) => `<div class="nb-bokeh" id="${id}"></div>`).join('');
  }
  if ('text/html' in data) {
    const html = text(data['text/html']);
    // Bokeh's placeholder div for the next output: the exec output above brings its own.
    if (/^\s*<div id="[^"]*" data-root-id="[^"]*" style="display: contents;"><\/div>\s*$/.test(html)) return '';
    if (!spend(ctx, html.length)) return TOO_LARGE;
    return `<div class="nb-html">${sanitizeHtml(html, sanitizeOptions(ctx.o, ctx.o.frames === false ? null : ctx.frames))}</div>`;
  }
  for (const mime of ['image/png', 'image/jpeg', 'image/gif']) {
    const b64 = text(data[mime]);
    if (b64 && BASE64.test(b64)) return `<img class="nb-image" alt="" src="data:${mime};base64,${b64.replace(/\s/g, '')}">`;
  }
  if ('image/svg+xml' in data) {
    // As an image, an SVG can't run its scripts.
    return `<img class="nb-image" alt="" src="data:image/svg+xml;base64,${Buffer.from(text(data['image/svg+xml'])).toString('base64')}">`;
  }
  if ('text/markdown' in data) return `<div class="nb-markdown">${markdown(ctx, text(data['text/markdown']))}</div>`;
  if ('text/plain' in data) return pre('nb-text', text(data['text/plain']));
  if ('text/latex' in data) return pre('nb-text', text(data['text/latex']));
  if ('application/json' in data) return pre('nb-text', JSON.stringify(data['application/json'], null, 2));
  // application/javascript alone (Bokeh's loader included) is never run here.
  if (BOKEH_LOAD in data || 'application/javascript' in data) return '';
  return '<p class="nb-note">An output this view cannot show.</p>';
}

function renderOutput(ctx: Context, out: Record<string, unknown>): string {
  switch (out.output_type) {
    case 'stream':
      return pre(out.name === 'stderr' ? 'nb-stream nb-stderr' : 'nb-stream', text(out.text));
    case 'error': {
      const tb = Array.isArray(out.traceback) ? (out.traceback as unknown[]).filter((l): l is string => typeof l === 'string').join('\n') : '';
      return pre('nb-error', tb || `${String(out.ename)}: ${String(out.evalue)}`);
    }
    case 'execute_result':
    case 'display_data': {
      const data = out.data;
      return typeof data === 'object' && data !== null ? renderData(ctx, data as Record<string, unknown>) : '';
    }
    default:
      return '';
  }
}

/**
 * Render an executed notebook (parsed JSON, or its text). Throws NotebookInvalid for anything
 * that is not an nbformat 4 notebook. Pure: same input, same output.
 */
export function renderNotebook(input: unknown, o: RenderOptions): RenderedNotebook {
  let nb = input;
  if (typeof nb === 'string' || Buffer.isBuffer(nb)) {
    try {
      nb = JSON.parse(nb.toString()) as unknown;
    } catch (err) {
      throw new NotebookInvalid(`not JSON: ${(err as Error).message}`);
    }
  }
  if (typeof nb !== 'object' || nb === null) throw new NotebookInvalid('not an object');
  const { nbformat, cells } = nb as { nbformat?: unknown; cells?: unknown };
  if (nbformat !== 4) throw new NotebookInvalid(`nbformat ${String(nbformat)}`);
  if (!Array.isArray(cells)) throw new NotebookInvalid('no cells');

  const ctx: Context = { o, md: new MarkdownIt({ html: true, linkify: false, typographer: false }), frames: [], bokeh: [], versions: new Set(), budget: o.maxHtmlChars ?? Infinity };
  const parts: string[] = [];
  const codeCells: string[] = [];
  let title = '';
  for (const raw of cells as unknown[]) {
    if (typeof raw !== 'object' || raw === null) throw new NotebookInvalid('a cell is not an object');
    const cell = raw as { cell_type?: unknown; source?: unknown; outputs?: unknown; execution_count?: unknown };
    const source = text(cell.source);
    if (cell.cell_type === 'markdown') {
      if (!title) title = /^#{1,6}\s+(.+)$/m.exec(source)?.[1]?.trim() ?? '';
      parts.push(`<section class="nb-cell nb-md">${markdown(ctx, source)}</section>`);
    } else if (cell.cell_type === 'code') {
      const n = codeCells.push(source) - 1;
      const count = typeof cell.execution_count === 'number' ? String(cell.execution_count) : ' ';
      const outputs = Array.isArray(cell.outputs) ? (cell.outputs as unknown[]).filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
      parts.push(
        `<section class="nb-cell nb-code" data-cell="${n}">` +
          `<div class="nb-input"><span class="nb-prompt">[${escapeHtml(count)}]:</span><pre><code class="language-python">${escapeHtml(source)}</code></pre></div>` +
          `<div class="nb-outputs">${outputs.map((x) => renderOutput(ctx, x)).join('')}</div>` +
          `</section>`,
      );
    } else if (cell.cell_type === 'raw') {
      parts.push(`<section class="nb-cell nb-raw">${pre('nb-text', source)}</section>`);
    }
  }
  const versions = [...ctx.versions];
  return {
    title: title.replace(/[*_`[\]]/g, ''),
    html: `<article class="nb">${parts.join('\n')}</article>`,
    frameScriptHashes: [...new Set(ctx.frames)],
    bokeh: ctx.bokeh,
    bokehVersion: versions[0] ?? null,
    codeCells,
  };
}
