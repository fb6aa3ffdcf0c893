import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { VENDOR_BASE_PATH, vendorAssets, vendorAssetsRouter } from '../../server/web/vendor-assets.js';
import { findBokehJs } from '../../server/notebooks/index.js';
import { launchBrowser, recordRequests } from '../helpers/browser.js';
import { notebookVenv } from '../helpers/venv.js';
import { executeNotebooks, iframeDocuments, outputParts, readNotebook, type Notebook, type OutputPart } from '../helpers/notebooks.js';

/**
 * The "Try it" sample notebooks (course-notebooks/samples/): each runs top to bottom with no
 * network, shows the Bokeh document or Leaflet map it should, and references nothing outside
 * the hub; the hub's vendor router serves every script, style, image and font the maps use;
 * and Chromium renders a map and a plot from those outputs with no request leaving 127.0.0.1.
 */

const SAMPLES = path.resolve(__dirname, '..', '..', 'course-notebooks', 'samples');

const BOKEH = ['bokeh_heatmap.ipynb', 'bokeh_scatter_hover.ipynb', 'bokeh_timeseries.ipynb', 'bokeh_binary_tree.ipynb'];
/** Each Folium sample and the Leaflet calls that draw its layers. */
const FOLIUM: Readonly<Record<string, readonly string[]>> = {
  'folium_markers.ipynb': ['L.marker(', 'L.AwesomeMarkers.icon(', 'L.polyline(', 'L.geoJson('],
  'folium_choropleth.ipynb': ['L.geoJson(', 'd3.'],
  'folium_voronoi.ipynb': ['L.polygon(', 'L.circleMarker('],
};
const ALL = ['index.ipynb', ...BOKEH, ...Object.keys(FOLIUM)];

/** Bokeh's notebook loader output: with inline resources it carries BokehJS itself. */
const BOKEH_LOAD = 'application/vnd.bokehjs_load.v0+json';
const BOKEH_EXEC = 'application/vnd.bokehjs_exec.v0+json';

const URL_PATTERN = /https?:\/\/[^\s"'<>\\)]+|\/\/cdn[^\s"'<>\\)]*/g;

function isBokehLibrary(part: OutputPart): boolean {
  return part.output.data?.[BOKEH_LOAD] !== undefined;
}

/** Every /hub/static/vendor/ path a piece of HTML loads (script src, link href). */
function vendorReferences(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)="(\/hub\/static\/vendor\/[^"]+)"/g)].map((m) => m[1] ?? '');
}

async function listen(app: express.Express): Promise<{ server: http.Server; origin: string }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}` };
}

describe('sample notebooks (Bokeh, Folium) offline', function () {
  this.timeout(300_000);
  let workDir = '';
  const executed = new Map<string, Notebook>();
  const errors = new Map<string, string | null>();

  before(async function () {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-samples-'));
    fs.cpSync(SAMPLES, workDir, { recursive: true });
    const runs = await executeNotebooks(workDir, ALL);
    for (const run of runs) {
      errors.set(run.name, run.error);
      executed.set(run.name, readNotebook(run.file));
    }
  });

  after(() => {
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('ships exactly the expected notebooks, saved without outputs', () => {
    const shipped = fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.ipynb')).sort();
    assert.deepEqual(shipped, [...ALL].sort());
    for (const name of shipped) {
      const nb = readNotebook(path.join(SAMPLES, name));
      assert.equal(outputParts(nb).length, 0, `${name} is committed with outputs`);
    }
  });

  it('the index links to every sample and says the workspace is temporary', () => {
    const nb = readNotebook(path.join(SAMPLES, 'index.ipynb'));
    const markdown = nb.cells.filter((c) => c.cell_type === 'markdown').map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source)).join('\n');
    assert.match(markdown, /This is a temporary workspace: download your work before you leave/);
    for (const name of ALL.filter((n) => n !== 'index.ipynb')) assert.ok(markdown.includes(`](${name})`), `index.ipynb does not link to ${name}`);
  });

  for (const name of ALL) {
    it(`${name} runs top to bottom without an error or a warning`, () => {
      assert.equal(errors.get(name), null, `${name} failed:\n${errors.get(name) ?? ''}`);
      const nb = executed.get(name);
      assert.ok(nb);
      const bad = outputParts(nb).filter((p) => p.kind === 'error' || p.kind === 'stream:stderr');
      assert.deepEqual(bad.map((p) => `cell ${p.cell}: ${p.text.slice(0, 500)}`), []);
    });
  }

  for (const name of BOKEH) {
    it(`${name} loads BokehJS from the hub's own versioned copy and shows a Bokeh document`, () => {
      const nb = executed.get(name);
      assert.ok(nb);
      const parts = outputParts(nb);
      const loader = parts.filter((p) => isBokehLibrary(p) && p.kind === 'application/javascript');
      assert.equal(loader.length, 1, 'one output_notebook() loader');
      const loaderJs = loader[0]?.text ?? '';
      // Not inline (issue 14): the loader names the hub's files, and the notebook stays small.
      assert.ok(loaderJs.length < 100_000, `BokehJS is inline (${loaderJs.length} characters)`);
      const urls = JSON.parse(/const js_urls = (\[[^\]]*\]);/.exec(loaderJs)?.[1] ?? '[]') as string[];
      assert.ok(urls.length >= 1, 'the loader loads no script');
      for (const u of urls) assert.match(u, new RegExp(`^${VENDOR_BASE_PATH}/bokeh/\\d+\\.\\d+\\.\\d+/static/js/bokeh[\\w-]*\\.min\\.js$`));
      const served = new Set(findBokehJs(notebookVenv()).assets.map((a) => a.urlPath));
      for (const u of urls) assert.ok(served.has(u), `the hub does not serve ${u}`);
      assert.match(loaderJs, /const css_urls = \[\];/);
      // show(): a div, the document's JSON and the call that embeds it.
      assert.ok(parts.some((p) => p.kind === BOKEH_EXEC), `no ${BOKEH_EXEC} output`);
      const embed = parts.filter((p) => p.kind === 'application/javascript' && !isBokehLibrary(p)).map((p) => p.text).join('\n');
      assert.ok(embed.includes('Bokeh.embed.embed_items_notebook('), 'no Bokeh.embed call');
      assert.ok(/"name":"(?:Figure|Plot|Column|Row|GridPlot)"/.test(embed), 'no plot in the Bokeh document');
    });
  }

  for (const [name, calls] of Object.entries(FOLIUM)) {
    it(`${name} shows a Leaflet map with its layers, with scripts from the hub`, () => {
      const nb = executed.get(name);
      assert.ok(nb);
      const docs = outputParts(nb)
        .filter((p) => p.kind === 'text/html')
        .flatMap((p) => iframeDocuments(p.text));
      assert.ok(docs.length >= 1, 'no map output');
      const map = docs.join('\n');
      assert.match(map, /L\.map\(/);
      for (const call of calls) assert.ok(map.includes(call), `the map has no ${call}`);
      assert.ok(vendorReferences(map).some((r) => r === `${VENDOR_BASE_PATH}/leaflet/leaflet.js`), 'Leaflet is not loaded from the hub');
      assert.doesNotMatch(map, /L\.tileLayer\(/, 'a tile layer would call a tile server');
      for (const tag of map.match(/<(?:script|link)\b[^>]*>/g) ?? []) {
        assert.doesNotMatch(tag, /\b(?:src|href)="(?!\/hub\/static\/vendor\/)/, `not from the hub: ${tag}`);
      }
    });
  }

  it('no output references anything outside the hub (https?:// or //cdn)', () => {
    const found: string[] = [];
    for (const [name, nb] of executed) {
      for (const part of outputParts(nb)) {
        // BokehJS's own code (the inline library, checked above to load nothing) mentions
        // URLs of optional features and documentation; everything else must name none.
        if (isBokehLibrary(part)) continue;
        const texts = part.kind === 'text/html' ? [part.text, ...iframeDocuments(part.text)] : [part.text];
        for (const text of texts) for (const m of text.matchAll(URL_PATTERN)) found.push(`${name} cell ${part.cell} ${part.kind}: ${m[0]}`);
      }
    }
    assert.deepEqual(found, []);
  });

  describe('the vendor assets router', () => {
    let server: http.Server | undefined;
    let origin = '';

    before(async () => {
      const app = express();
      app.use(vendorAssetsRouter());
      ({ server, origin } = await listen(app));
    });
    after(() => server?.close());

    function referencedAssets(): string[] {
      const refs = new Set<string>();
      for (const name of Object.keys(FOLIUM).concat('bokeh_heatmap.ipynb')) {
        const nb = executed.get(name);
        assert.ok(nb);
        for (const p of outputParts(nb)) if (p.kind === 'text/html') for (const doc of iframeDocuments(p.text)) for (const r of vendorReferences(doc)) refs.add(r);
      }
      return [...refs].sort();
    }

    it('serves every asset the executed maps reference, with its content type and a long cache lifetime', async () => {
      const refs = referencedAssets();
      assert.ok(refs.length >= 8, `only ${refs.length} assets referenced: ${refs.join(', ')}`);
      for (const ref of refs) {
        const res = await fetch(origin + ref);
        assert.equal(res.status, 200, ref);
        const type = res.headers.get('content-type') ?? '';
        if (ref.endsWith('.js')) assert.match(type, /^text\/javascript/, ref);
        else if (ref.endsWith('.css')) assert.match(type, /^text\/css/, ref);
        else assert.fail(`unexpected asset ${ref}`);
        assert.match(res.headers.get('cache-control') ?? '', /max-age=(\d{6,})/, ref);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.ok((await res.arrayBuffer()).byteLength > 1000, `${ref} is nearly empty`);
      }
    });

    it('serves the images and fonts the stylesheets refer to, and nothing else', async () => {
      const served = new Set(vendorAssets().map((a) => a.urlPath));
      for (const asset of vendorAssets()) {
        const res = await fetch(origin + asset.urlPath, { method: asset.urlPath.endsWith('.css') ? 'GET' : 'HEAD' });
        assert.equal(res.status, 200, asset.urlPath);
        assert.equal(res.headers.get('content-type'), asset.contentType, asset.urlPath);
        if (!asset.urlPath.endsWith('.css')) continue;
        const css = await res.text();
        for (const m of css.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g)) {
          const ref = m[1] ?? '';
          if (ref.startsWith('data:') || ref.startsWith('#')) continue;
          const target = new URL(ref, origin + asset.urlPath);
          assert.equal(target.origin, origin, `${asset.urlPath} refers to ${ref}`);
          assert.ok(served.has(target.pathname), `${asset.urlPath} refers to ${target.pathname}, which is not served`);
        }
      }
      assert.equal((await fetch(`${origin}${VENDOR_BASE_PATH}/leaflet/package.json`)).status, 404);
      assert.equal((await fetch(`${origin}${VENDOR_BASE_PATH}/leaflet/../../../../package.json`)).status, 404);
      assert.equal((await fetch(`${origin}${VENDOR_BASE_PATH}/leaflet/leaflet.js`, { method: 'POST' })).status, 404);
    });
  });

  describe('in Chromium, with no outside network', () => {
    let server: http.Server | undefined;
    let origin = '';
    let browser: Browser | undefined;

    before(async () => {
      const page = (body: string): string =>
        `<!doctype html><html><head><meta charset="utf-8"><title>sample outputs</title></head><body>${body}</body></html>`;
      const folium = ['folium_markers.ipynb', 'folium_choropleth.ipynb'].map((name) => {
        const nb = executed.get(name);
        assert.ok(nb);
        const html = outputParts(nb).filter((p) => p.kind === 'text/html' && p.text.includes('<iframe'));
        assert.equal(html.length, 1, name);
        return `<div class="sample" style="width:800px">${html[0]?.text ?? ''}</div>`;
      });
      const nb = executed.get('bokeh_heatmap.ipynb');
      assert.ok(nb);
      const parts = outputParts(nb);
      const script = (js: string): string => `<script>${js.replace(/<\/script/gi, '<\\/script')}</script>`;
      // The cells with Bokeh's outputs: output_notebook()'s loader, and show()'s div and script.
      // Jupyter runs each output's JavaScript as it arrives; a plain page runs them in order.
      const bokehCells = new Set(parts.filter((p) => p.kind === BOKEH_LOAD || p.kind === BOKEH_EXEC).map((p) => p.cell));
      const bokehParts = parts.filter((p) => bokehCells.has(p.cell) && p.output.output_type === 'display_data' && (p.kind === 'application/javascript' || p.kind === 'text/html'));
      // The loader fetches BokehJS from the hub (issue 14); in a live notebook show()'s outputs
      // arrive after it has loaded, so this page runs them once window.Bokeh is there.
      const [loaderPart, ...rest] = bokehParts.filter((p) => p.kind === 'application/javascript');
      const later = rest.map((p) => p.text);
      const bokeh =
        bokehParts.filter((p) => p.kind === 'text/html').map((p) => p.text).join('\n') +
        script(loaderPart?.text ?? '') +
        script(`(function wait() { if (!window.Bokeh || !window.Bokeh.embed) return setTimeout(wait, 50); ${JSON.stringify(later)}.forEach(function (js) { var s = document.createElement('script'); s.textContent = js; document.body.appendChild(s); }); })();`);

      const app = express();
      app.use(vendorAssetsRouter(findBokehJs(notebookVenv()).assets));
      app.get('/folium.html', (_req, res) => res.type('html').send(page(folium.join('\n'))));
      app.get('/bokeh.html', (_req, res) => res.type('html').send(page(bokeh)));
      app.get('/favicon.ico', (_req, res) => res.status(204).end());
      ({ server, origin } = await listen(app));
      browser = await launchBrowser();
    });

    after(async () => {
      await browser?.close();
      server?.close();
    });

    it('draws the Folium maps: Leaflet containers with markers, shapes and the legend', async () => {
      assert.ok(browser);
      const page = await browser.newPage();
      const requests = recordRequests(page);
      const failed: string[] = [];
      const pageErrors: string[] = [];
      page.on('response', (r) => {
        if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
      });
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${origin}/folium.html`, { waitUntil: 'load' });
      assert.equal(await page.locator('iframe').count(), 2, 'one iframe per map');
      const markers = page.frameLocator('iframe').nth(0);
      const choropleth = page.frameLocator('iframe').nth(1);
      await markers.locator('.leaflet-container').waitFor();
      await markers.locator('.leaflet-marker-pane .awesome-marker').first().waitFor();
      assert.equal(await markers.locator('.leaflet-marker-pane .awesome-marker').count(), 11, 'a marker per stop of the trip');
      assert.ok((await markers.locator('path.leaflet-interactive').count()) > 30, 'country outlines and the route are drawn');
      // Font Awesome's font is used by the marker icons.
      assert.ok((await markers.locator('.awesome-marker i.fa-bus').count()) > 0);
      await choropleth.locator('.leaflet-container').waitFor();
      assert.ok((await choropleth.locator('path.leaflet-interactive').count()) >= 38, 'a shape per country');
      const fills = await choropleth.locator('path.leaflet-interactive').evaluateAll((els) => new Set(els.map((e) => e.getAttribute('fill'))).size);
      assert.ok(fills >= 4, `the countries are coloured by value (${fills} colours)`);
      assert.ok((await choropleth.locator('.legend svg rect, .legend rect').count()) > 0, 'the d3 colour legend is drawn');
      // Fonts load lazily: make sure the icons' font did load from the hub.
      const fontsReady = await markers.locator('body').evaluate(async () => {
        await document.fonts.ready;
        return [...document.fonts].some((f) => f.status === 'loaded' && /Font Awesome/.test(f.family));
      });
      assert.ok(fontsReady, 'Font Awesome loaded');
      assert.deepEqual(pageErrors, []);
      assert.deepEqual(failed, []);
      assert.deepEqual(requests.foreign([origin]), []);
      assert.ok(requests.urls.some((u) => u.endsWith('/hub/static/vendor/leaflet/leaflet.js')));
      await page.close();
    });

    it('draws the Bokeh heatmap on a canvas', async () => {
      assert.ok(browser);
      const page = await browser.newPage();
      const requests = recordRequests(page);
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${origin}/bokeh.html`, { waitUntil: 'load' });
      // BokehJS draws into a shadow root; playwright's CSS locators look inside open ones.
      const canvas = page.locator('.bk-Canvas canvas, canvas').first();
      await canvas.waitFor({ timeout: 30_000 });
      const size = await canvas.evaluate((c) => {
        const el = c as HTMLCanvasElement;
        return { w: el.width, h: el.height };
      });
      assert.ok(size.w >= 300 && size.h >= 200, `canvas ${size.w}x${size.h}`);
      assert.deepEqual(pageErrors, []);
      assert.deepEqual(requests.foreign([origin]), []);
      await page.close();
    });
  });
});
