import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { CookieJar, type StoredCookie } from './client.js';
import { freePort } from './ports.js';

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
const REPO = path.resolve(__dirname, '../..');

export interface TestNginx {
  /** https://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT (redirects to https) */
  httpUrl: string;
  /** The self-signed certificate (PEM), to trust in clients. */
  ca: string;
  certFile: string;
  stop(): Promise<void>;
}

/**
 * A fresh path for a hub's front door socket (frontDoorSocket), short enough for a Unix socket.
 * The folder is removed with the returned cleanup.
 */
export function frontDoorPath(): { socket: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-door-'));
  return { socket: path.join(dir, 'hub.sock'), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Start Debian's nginx with one of the shipped site configs (nginx/oerhub.conf or
 * nginx/oerhub-trusted-header.conf) rendered for this test: listening on free 127.0.0.1 ports,
 * proxying to the test hub's front door socket (`hubSocket`, the hub's frontDoorSocket), with a
 * self-signed certificate made by nginx/make-cert.sh (also used for the user-content wildcard
 * block, here *.localhost). nginx runs in the foreground as our child, so stop() ends exactly
 * what we started. Throws if nginx is missing: CI installs it, and a skipped test would hide that.
 */
export async function startNginx(options: {
  site: 'oerhub.conf' | 'oerhub-trusted-header.conf';
  hubSocket: string;
  /** Further hub processes' sockets in the same upstream (several hubs on one Redis). */
  moreHubSockets?: readonly string[];
  /** An nginx variable the upstream hashes on to pick the hub (e.g. `$http_x_test_hub`); default round robin. */
  upstreamHash?: string;
  ssoAgentPort?: number;
  /**
   * User-content host names (e.g. `alice.localhost`) to list in the user-content block's
   * certificate. Default: none, and that block reuses the hub's certificate (fine for clients
   * that check only 127.0.0.1). Chromium checks the name it connected to and may refuse a
   * `*.localhost` wildcard, so a browser test names each user's host here.
   */
  userHosts?: string[];
}): Promise<TestNginx> {
  if (!fs.existsSync(NGINX)) throw new Error(`nginx is missing at ${NGINX}: apt-get install -y nginx-light`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-nginx-'));
  const tls = path.join(dir, 'tls');
  execFileSync('bash', [path.join(REPO, 'nginx/make-cert.sh'), '127.0.0.1', tls, '2'], { stdio: 'ignore' });
  // The user-content block's wildcard certificate: the same trial certificate will do here,
  // unless named hosts are asked for; those get a certificate of the same key (one key to trust).
  fs.copyFileSync(path.join(tls, 'key.pem'), path.join(tls, 'users-key.pem'));
  if (options.userHosts?.length) {
    // Only the user hosts, as a production certificate for the user-content domain would be:
    // the hub's name stays on the hub's own certificate.
    const san = options.userHosts.map((h) => `DNS:${h}`).join(',');
    execFileSync('openssl', ['req', '-x509', '-key', path.join(tls, 'key.pem'), '-sha256', '-days', '2', '-subj', `/CN=${options.userHosts[0]}`, '-addext', `subjectAltName=${san}`,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment', '-addext', 'extendedKeyUsage=serverAuth',
      '-out', path.join(tls, 'users-cert.pem')], { stdio: 'ignore' });
  } else fs.copyFileSync(path.join(tls, 'cert.pem'), path.join(tls, 'users-cert.pem'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, 'tmp', d), { recursive: true });
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  let site = fs.readFileSync(path.join(REPO, 'nginx', options.site), 'utf8');
  const replace = (from: string | RegExp, to: string): void => {
    const next = site.replace(from, to);
    if (next === site) throw new Error(`nginx/${options.site} no longer contains ${String(from)}; update test/helpers/nginx.ts`);
    site = next;
  };
  replace(/listen 443 ssl http2;/g, `listen 127.0.0.1:${httpsPort} ssl http2;`);
  replace(/listen \[::\]:443 ssl http2;\n/g, '');
  replace(/listen 80;/g, `listen 127.0.0.1:${httpPort};`);
  replace(/listen \[::\]:80;\n/g, '');
  replace(/server_name hub\.example\.edu;/g, 'server_name 127.0.0.1;');
  replace(/server_name hub\.example\.edu \*\.users\.example\.edu;/g, 'server_name 127.0.0.1 *.localhost;');
  replace(/server_name \*\.users\.example\.edu;/g, 'server_name *.localhost;');
  replace(/return 301 https:\/\/\$host\$request_uri;/, `return 301 https://$host:${httpsPort}$request_uri;`);
  // The balancing method goes before `keepalive`, as nginx requires.
  const upstream = [options.hubSocket, ...(options.moreHubSockets ?? [])].map((s) => `server unix:${s};`);
  if (options.upstreamHash) upstream.push(`hash ${options.upstreamHash};`);
  replace('server unix:/run/oerhub/hub.sock;', upstream.join('\n    '));
  replace(/\/etc\/oerhub\/tls\//g, `${tls}/`);
  replace(/\/var\/www\/letsencrypt/g, path.join(dir, 'acme'));
  if (options.ssoAgentPort) replace('http://127.0.0.1:9000/validate', `http://127.0.0.1:${options.ssoAgentPort}/validate`);
  fs.writeFileSync(path.join(dir, 'site.conf'), site);
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    [
      'worker_processes 1;',
      // The tests run as root; the temp folders are ours, so the worker must be too.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log info;`,
      'events { worker_connections 512; }',
      'http {',
      `  access_log ${dir}/access.log;`,
      ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((d) => `  ${d === 'body' ? 'client_body' : d}_temp_path ${dir}/tmp/${d};`),
      '  default_type application/octet-stream;',
      `  include ${dir}/site.conf;`,
      '}',
      '',
    ].join('\n'),
  );
  execFileSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'pipe' });
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    if (await canConnect(httpsPort)) break;
    if (Date.now() > deadline) throw new Error(`nginx did not listen: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const certFile = path.join(tls, 'cert.pem');
  return {
    url: `https://127.0.0.1:${httpsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    ca: fs.readFileSync(certFile, 'utf8'),
    certFile,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  location: string | null;
  setCookies: string[];
}

/**
 * A small HTTPS client trusting only the test certificate, with a path-scoped cookie jar
 * (HubClient uses fetch, which can't be given a CA without a global dispatcher).
 */
export class HttpsClient {
  readonly jar = new CookieJar();
  constructor(
    readonly baseUrl: string,
    private readonly ca: string,
  ) {}

  get cookies(): Map<string, StoredCookie> {
    return this.jar.cookies;
  }

  cookieHeader(p: string): string {
    return this.jar.header(p);
  }

  request(method: string, p: string, init: { headers?: Record<string, string>; form?: Record<string, string>; onData?: (chunk: string) => void } = {}): Promise<HttpsReply> {
    const u = new URL(p, this.baseUrl);
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    const cookie = this.cookieHeader(u.pathname);
    if (cookie && !headers.cookie) headers.cookie = cookie;
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = https.request(u, { method, headers, ca: this.ca, agent: false }, (res) => {
        const setCookies = res.headers['set-cookie'] ?? [];
        for (const line of setCookies) this.jar.store(line, u.pathname);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          init.onData?.(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, location: (res.headers.location as string | undefined) ?? null, setCookies }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  get(p: string, headers?: Record<string, string>): Promise<HttpsReply> {
    return this.request('GET', p, { headers });
  }

  /** Open a WebSocket through nginx with this client's cookies. */
  websocket(p: string): Promise<WebSocket> {
    const url = this.baseUrl.replace(/^https/, 'wss') + p;
    const ws = new WebSocket(url, { ca: this.ca, headers: { cookie: this.cookieHeader(p), origin: this.baseUrl } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }
}
