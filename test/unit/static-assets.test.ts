import assert from 'node:assert/strict';
import type http from 'node:http';
import { StaticAssets } from '../../server/proxy/static-assets.js';

/** Which proxied requests count as JupyterLab's content-hashed static files (issue 14). */
describe('static assets: which requests get the year-long cache and compression', () => {
  const assets = new StaticAssets();
  const matches = (url: string, method = 'GET'): boolean => assets.matches({ url, method } as http.IncomingMessage);

  it("takes the server's hashed and versioned static files", () => {
    assert.equal(matches('/user/a/static/lab/1014.073326ef5d98db5e.js?v=073326ef5d98db5e'), true);
    assert.equal(matches('/user/a/static/lab/0031b1860ea4ad75.woff'), true);
    assert.equal(matches('/user/a/static/lab/main.efd36b46f3b45eb8.js', 'HEAD'), true);
    assert.equal(matches('/user/a/lab/extensions/x/static/remoteEntry.0123456789abcdef.js?v=0123456789abcdef'), true);
    assert.equal(matches('/user/a/static/base/images/favicon.ico?v=50afa725b5de8b00'), true);
  });

  it("leaves alone pages, the API, unhashed files, other methods and a user's own files in a folder named static", () => {
    assert.equal(matches('/user/a/api/status'), false);
    assert.equal(matches('/user/a/lab'), false);
    assert.equal(matches('/user/a/static/lab/index.html'), false);
    assert.equal(matches('/user/a/static/lab/main.efd36b46f3b45eb8.js', 'POST'), false);
    assert.equal(matches('/user/a/files/static/a.0123456789abcdef.js'), false);
    assert.equal(matches('/user/a/lab/tree/static/a.0123456789abcdef.js'), false);
    assert.equal(matches('/user/a/api/contents/static/a.0123456789abcdef.js'), false);
    assert.equal(matches('/user/a/static/lab/x.js?v=short'), false);
    assert.equal(matches('/hub/static/hub.css'), false);
  });
});
