import assert from 'node:assert/strict';
import type http from 'node:http';
import { escapeName } from '../../server/names.js';
import { SHARE_HOST_LABEL, ShareOrigin } from '../../server/sharing/index.js';
import { notebookPath } from '../../server/sharing/index.js';
import { renderNotebook } from '../../server/notebooks/index.js';

const req = (host: string, url = '/'): http.IncomingMessage => ({ headers: { host }, url }) as http.IncomingMessage;
const base = { userContentDomain: 'localhost', publicUrl: undefined, userContentHost: undefined };

describe('the share origin: a host no user can have, apart from the hub', () => {
  it('no username escapes to the share host\'s label', () => {
    // escapeName writes "-" only before two hex digits (or "-z" and a hash at 37): "-s" never.
    for (const name of ['oerhub-share', 'oerhub share', 'OERHUB-SHARE', 'oerhub-sh', 'oerhub\u00adshare', 'oerhub–share']) assert.notEqual(escapeName(name.normalize('NFKC').toLowerCase()), SHARE_HOST_LABEL);
    assert.doesNotMatch(SHARE_HOST_LABEL, /^(?:[a-z0-9]|-[0-9a-f]{2})*$/);
    assert.doesNotMatch(SHARE_HOST_LABEL, /^[a-z0-9-]{37}-z[0-9a-f]{11}$/);
  });

  it('subdomain mode: its own host, every path; shared-host mode: the content host, /oerhub-share/ only; single: none', () => {
    const sub = new ShareOrigin({ ...base, originMode: 'subdomain' }, () => 8000);
    assert.equal(sub.base(), 'http://oerhub-share.localhost:8000/oerhub-share/');
    assert.ok(sub.matches(req('oerhub-share.localhost:8000', '/anything')));
    assert.ok(!sub.matches(req('alice.localhost:8000', '/oerhub-share/x')));
    assert.ok(!sub.matches(req('127.0.0.1:8000', '/oerhub-share/x')));
    const pub = new ShareOrigin({ ...base, originMode: 'subdomain', userContentDomain: 'users.example.edu', publicUrl: 'https://hub.example.edu' }, () => 8000);
    assert.equal(pub.base(), 'https://oerhub-share.users.example.edu/oerhub-share/');
    const shared = new ShareOrigin({ ...base, originMode: 'shared-host', userContentHost: 'content.example.edu' }, () => 8000);
    assert.ok(shared.matches(req('content.example.edu:8000', '/oerhub-share/x')));
    assert.ok(!shared.matches(req('content.example.edu:8000', '/user/alice/lab')));
    const single = new ShareOrigin({ ...base, originMode: 'single' }, () => 8000);
    assert.equal(single.available, false);
    assert.ok(!single.matches(req('oerhub-share.localhost:8000', '/oerhub-share/x')));
  });

  it('shares only notebooks inside the course folder', () => {
    assert.equal(notebookPath('week1/lab.ipynb'), 'week1/lab.ipynb');
    for (const bad of ['../x.ipynb', '/etc/x.ipynb', 'a/../../x.ipynb', 'a\\..\\x.ipynb', '.hidden.ipynb', 'x.txt', '', 42]) assert.throws(() => notebookPath(bad), { status: 400 }, String(bad));
  });

  it('renders shares without script frames (frames: false)', () => {
    const nb = { nbformat: 4, cells: [{ cell_type: 'code', source: '', outputs: [{ output_type: 'display_data', data: { 'text/html': '<p>map</p><iframe srcdoc="<script>x()</script>"></iframe>' } }] }] };
    assert.match(renderNotebook(nb, { vendorBase: '' }).html, /<iframe/);
    const html = renderNotebook(nb, { vendorBase: '', frames: false }).html;
    assert.doesNotMatch(html, /iframe|script/);
    assert.match(html, /map/);
  });
});
