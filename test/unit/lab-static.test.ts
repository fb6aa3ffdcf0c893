import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import pino from 'pino';
import { LabStatic } from '../../server/web/lab-static.js';

const BUILD = '0123456789abcdef';

/** A notebook environment with a small JupyterLab build in it: the main bundle, a chunk, a font. */
function fakeVenv(files: Record<string, string>): string {
  const venv = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-lab-static-'));
  const dir = path.join(venv, 'share', 'jupyter', 'lab', 'static');
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), body);
  return venv;
}

/** What the hub's handler answers for `urlPath`, over a real HTTP connection. */
async function get(lab: LabStatic, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const server = http.createServer((req, res) => (LabStatic.matches(req) ? lab.handle(req, res) : res.writeHead(418).end()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: urlPath, headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('JupyterLab\'s build served by the hub (web/lab-static.ts)', () => {
  const log = pino({ level: 'silent' });
  /** A LabStatic serving the build in a venv's JupyterLab folder, and the build's name (undefined: none). */
  const served = new Map<string, LabStatic>();
  const addBuild = (venv: string): LabStatic | undefined => {
    const lab = new LabStatic(log);
    const build = lab.add(LabStatic.folderIn(venv));
    if (!build) return undefined;
    served.set(build, lab);
    return lab;
  };
  const chunk = `/* chunk */ ${'x'.repeat(4000)}`;
  const venvs: string[] = [];
  const venvWith = (files: Record<string, string>): string => {
    const v = fakeVenv(files);
    venvs.push(v);
    return v;
  };
  after(() => {
    for (const v of venvs) fs.rmSync(v, { recursive: true, force: true });
  });

  it('is named by its main bundle\'s hash, and is absent (each server serves its own) without a build', () => {
    const lab = addBuild(venvWith({ 'index.html': `<script src="{{x}}/main.${BUILD}.js?v=${BUILD}"></script>`, [`main.${BUILD}.js`]: 'main' }));
    assert.ok(lab);
    assert.equal(served.get(BUILD), lab, 'named by the main bundle\'s hash');
    assert.equal(lab.urlPrefix('https://hub.example.edu', BUILD), `https://hub.example.edu/hub/static/lab/${BUILD}/`);
    assert.equal(addBuild(venvWith({})), undefined, 'no JupyterLab installed');
    assert.equal(addBuild(venvWith({ 'index.html': `main.${BUILD}.js` })), undefined, 'the page names a bundle that is not there');
  });

  it('sends a file compressed as the browser accepts, the same bytes once decompressed, and a small or binary one as it is', async () => {
    const lab = addBuild(venvWith({ 'index.html': `main.${BUILD}.js`, [`main.${BUILD}.js`]: 'm', '1014.073326ef5d98db5e.js': chunk, 'a.woff2': 'wOF2' }));
    assert.ok(lab);
    const br = await get(lab, `/hub/static/lab/${BUILD}/1014.073326ef5d98db5e.js?v=073326ef5d98db5e`, { 'accept-encoding': 'gzip, br' });
    assert.equal(br.status, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(zlib.brotliDecompressSync(br.body).toString(), chunk);
    assert.equal(br.headers['content-type'], 'text/javascript; charset=utf-8');
    const plain = await get(lab, `/hub/static/lab/${BUILD}/1014.073326ef5d98db5e.js`, { 'accept-encoding': 'identity' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.toString(), chunk);
    const font = await get(lab, `/hub/static/lab/${BUILD}/a.woff2`, { 'accept-encoding': 'gzip' });
    assert.equal(font.headers['content-encoding'], undefined);
    assert.equal(font.headers['content-type'], 'font/woff2');
    assert.equal(font.headers['access-control-allow-origin'], '*');
  });

  it('gives a file that went away under the hub a 404 saying to restart, not a broken answer', async () => {
    const venv = venvWith({ 'index.html': `main.${BUILD}.js`, [`main.${BUILD}.js`]: 'm', 'gone.js': chunk });
    const lab = addBuild(venv);
    assert.ok(lab);
    fs.rmSync(path.join(venv, 'share', 'jupyter', 'lab', 'static', 'gone.js'));
    for (const encoding of ['identity', 'gzip']) {
      const reply = await get(lab, `/hub/static/lab/${BUILD}/gone.js`, { 'accept-encoding': encoding });
      assert.equal(reply.status, 404, encoding);
      assert.match(reply.body.toString(), /not here any more.*Restart your server/, encoding);
      assert.equal(reply.headers['cache-control'], 'no-store');
    }
  });
});
