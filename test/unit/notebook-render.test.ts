import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { NotebookInvalid, renderNotebook } from '../../server/notebooks/index.js';

const OPTS = { vendorBase: 'http://hub.test/hub/static/vendor', notebookLink: (p: string) => (p === 'other.ipynb' ? './other' : undefined) };

function nb(cells: unknown[]): unknown {
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells };
}
function code(outputs: unknown[], source = 'x'): unknown {
  return { cell_type: 'code', source, outputs, execution_count: 1, metadata: {} };
}

describe('the sanitised notebook renderer', () => {
  it('keeps markdown and tables, and drops scripts, handlers and javascript: links from markdown', () => {
    const r = renderNotebook(
      nb([{ cell_type: 'markdown', source: '# Title\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\n<script>alert(1)</script><img src="x" onerror="alert(2)"><a href="javascript:alert(3)">j</a>\n\n[next](other.ipynb) [gone](missing.ipynb) [bad](javascript:alert(5))' }]),
      OPTS,
    );
    assert.equal(r.title, 'Title');
    assert.match(r.html, /<table>/);
    // A javascript: link stays text at most, never an href.
    assert.doesNotMatch(r.html, /<script|onerror|href="javascript:/i);
    assert.match(r.html, /<a href="\.\/other">next<\/a>/);
    assert.match(r.html, /<a>gone<\/a>/);
  });

  it('escapes code and text outputs, drops application/javascript, keeps safe images', () => {
    const r = renderNotebook(
      nb([
        code(
          [
            { output_type: 'stream', name: 'stdout', text: ['<b>not bold</b>\n'] },
            { output_type: 'display_data', data: { 'application/javascript': 'alert(1)' } },
            { output_type: 'display_data', data: { 'text/html': '<b>bold</b><script>alert(4)</script><iframe src="/hub/home"></iframe>' } },
            { output_type: 'display_data', data: { 'image/png': 'iVBORw0KGgo=' } },
            { output_type: 'error', ename: 'E', evalue: 'v', traceback: ['\u001b[31mTraceback <x>\u001b[0m'] },
          ],
          'print("<b>")',
        ),
      ]),
      OPTS,
    );
    assert.match(r.html, /&lt;b&gt;not bold&lt;\/b&gt;/);
    assert.match(r.html, /<b>bold<\/b>/);
    assert.doesNotMatch(r.html, /<script|alert\(|<iframe/);
    assert.match(r.html, /<img class="nb-image" alt="" src="data:image\/png;base64,iVBORw0KGgo=">/);
    assert.match(r.html, /Traceback &lt;x&gt;/);
    assert.deepEqual(r.codeCells, ['print("<b>")']);
  });

  it("keeps a map's srcdoc frame, sandboxed to an opaque origin, with its libraries from the hub and its inline scripts' hashes", () => {
    const doc = '<html><head><script src="/hub/static/vendor/leaflet/leaflet.js"></script></head><body><script>\r\nL.map("m");\n</script></body></html>';
    const attr = doc.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    const r = renderNotebook(nb([code([{ output_type: 'display_data', data: { 'text/html': `<div><iframe srcdoc="${attr}" sandbox="allow-scripts allow-same-origin" onload="x()"></iframe></div>` } }])]), OPTS);
    assert.match(r.html, /sandbox="allow-scripts"/);
    assert.doesNotMatch(r.html, /allow-same-origin|onload/);
    assert.match(r.html, /http:\/\/hub\.test\/hub\/static\/vendor\/leaflet\/leaflet\.js/);
    const hash = createHash('sha256').update('\nL.map("m");\n').digest('base64');
    assert.deepEqual(r.frameScriptHashes, [`'sha256-${hash}'`]);
  });

  it("takes a Bokeh document out of its script without running it, and refuses odd element ids", () => {
    const js = (id: string): string => `(function(root) {\n  function embed_document(root) {\n  const docs_json = {"d1":{"version":"3.9.2","roots":[]}};\n  const render_items = [{"docid":"d1","roots":{"p1":"${id}"},"root_ids":["p1"]}];\n  void root.Bokeh.embed.embed_items_notebook(docs_json, render_items);\n  }\n})(window);`;
    const exec = 'application/vnd.bokehjs_exec.v0+json';
    const ok = renderNotebook(nb([code([{ output_type: 'display_data', data: { 'application/javascript': js('abc-123'), [exec]: '' } }])]), OPTS);
    assert.equal(ok.bokeh.length, 1);
    assert.equal(ok.bokehVersion, '3.9.2');
    assert.match(ok.html, /<div class="nb-bokeh" id="abc-123"><\/div>/);
    const bad = renderNotebook(nb([code([{ output_type: 'display_data', data: { 'application/javascript': js('x\\" onclick=\\"y'), [exec]: '' } }])]), OPTS);
    assert.equal(bad.bokeh.length, 0);
    assert.doesNotMatch(bad.html, /onclick/);
  });

  it('drops a style that would fetch (url(), image-set, @import, CSS escapes, expression), keeps plain styles and data: images, and a frames:false view has no frame', () => {
    const hostile = [
      '<div id="u1" style="background:url(http://127.0.0.1:9/a)">a</div>',
      '<a id="u2" href="https://example.org/" style="background-image: URL( \'//127.0.0.1:9/b\' )">b</a>',
      '<img id="u3" src="data:image/png;base64,iVBORw0KGgo=" style="background:-webkit-image-set(\'http://127.0.0.1:9/c\' 1x)">',
      '<span id="u4" style="width:expression(alert(1))">d</span>',
      '<span id="u5" style="background:u\\72l(http://127.0.0.1:9/e)">e</span>',
      '<p id="u6" style="color:red;@import \'http://127.0.0.1:9/f\'">f</p>',
    ].join('');
    const kept = '<div id="k1" style="color:#c33;font-weight:bold">red</div><div id="k2" style="background:url(data:image/png;base64,iVBORw0KGgo=)">dot</div>';
    const r = renderNotebook(nb([code([{ output_type: 'display_data', metadata: {}, data: { 'text/html': hostile + kept + '<iframe srcdoc="<p>x</p>"></iframe>' } }])]), { ...OPTS, frames: false });
    assert.doesNotMatch(r.html, /127\.0\.0\.1|expression|image-set|@import|\\72/i, r.html);
    // The elements stay, without their style.
    for (const el of ['<div>a</div>', '>b</a>', '<img src="data:image/png;base64,iVBORw0KGgo=" />', '<span>d</span>', '<span>e</span>', '<p>f</p>']) assert.ok(r.html.includes(el), `${el} in ${r.html}`);
    assert.match(r.html, /style="color:#c33;font-weight:bold"/);
    assert.match(r.html, /style="background:url\(data:image\/png;base64,iVBORw0KGgo=\)"/);
    assert.doesNotMatch(r.html, /<iframe/);
  });

  it('with maxHtmlChars, HTML and markdown past the budget become a note, and what fits is still shown', () => {
    const big = '<table>' + '<tr><td>cell</td></tr>'.repeat(200_000) + '</table>'; // 4 MB
    const cells = nb([
      { cell_type: 'markdown', source: '# Shared', metadata: {} },
      code([{ output_type: 'display_data', metadata: {}, data: { 'text/html': big } }, { output_type: 'display_data', metadata: {}, data: { 'text/html': '<b>small table</b>' } }]),
      { cell_type: 'markdown', source: 'x'.repeat(3 * 1024 * 1024), metadata: {} },
    ]);
    const r = renderNotebook(cells, { ...OPTS, frames: false, maxHtmlChars: 2 * 1024 * 1024 });
    assert.equal((r.html.match(/A large output this view does not show/g) ?? []).length, 2);
    assert.match(r.html, /<b>small table<\/b>/);
    assert.match(r.html, /<h1>Shared<\/h1>/);
    assert.ok(r.html.length < 100_000, `${r.html.length} characters`);
    // Without a budget (the hub's own views), all of it.
    assert.ok(renderNotebook(cells, OPTS).html.length > 4_000_000);
  });

  it('refuses what is not an nbformat 4 notebook', () => {
    assert.throws(() => renderNotebook('not json', OPTS), NotebookInvalid);
    assert.throws(() => renderNotebook({ nbformat: 3, cells: [] }, OPTS), NotebookInvalid);
    assert.throws(() => renderNotebook({ nbformat: 4 }, OPTS), NotebookInvalid);
  });
});
