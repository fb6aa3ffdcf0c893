import https from 'node:https';
import tls from 'node:tls';
import WebSocket from 'ws';
import { CookieJar, localhostLookup } from './client.js';
import { startNginx, type HttpsReply, type TestNginx } from './nginx.js';

/** The request header a pinned client sends; nginx balances the hub upstream by its value. */
export const PIN_HEADER = 'x-test-hub';

/**
 * One real nginx with the shipped nginx/oerhub.conf in front of several hub processes: its
 * `oerhub_hub` upstream lists every hub's front door socket and balances with
 * `hash $http_x_test_hub`, so a request carrying X-Test-Hub always reaches the same hub (nginx's
 * hash of the value; which value reaches which hub is for the test to find out, see
 * {@link NginxBrowser.via}). Everything else is startNginx's rendering of the shipped file.
 */
export function startNginxCluster(hubSockets: readonly string[]): Promise<TestNginx> {
  if (hubSockets.length === 0) throw new Error('startNginxCluster needs at least one hub socket');
  const [first, ...rest] = hubSockets;
  return startNginx({ site: 'oerhub.conf', hubSocket: first!, moreHubSockets: rest, upstreamHash: `$http_${PIN_HEADER.replace(/-/g, '_')}` });
}

/**
 * A browser behind nginx: one cookie jar (host-only, path-scoped, as a browser's) for the hub's
 * origin (https://127.0.0.1:PORT) and the user origins (https://NAME.localhost:PORT). Its tabs
 * may be pinned to one hub process each with {@link via}; they share the cookies.
 */
export class NginxBrowser {
  readonly jar = new CookieJar();
  constructor(readonly nginx: TestNginx) {}

  /** This browser with every request and WebSocket pinned by X-Test-Hub: `pin`. */
  via(pin: string): PinnedClient {
    return new PinnedClient(this.nginx, this.jar, pin);
  }
}

/** Requests through nginx, always to the hub process `pin` selects. */
export class PinnedClient {
  constructor(
    private readonly nginx: TestNginx,
    private readonly jar: CookieJar,
    readonly pin: string,
  ) {}

  /** /user/NAME/... is on NAME's own origin (https://NAME.localhost:PORT), the rest on the hub's. */
  urlFor(p: string): URL {
    if (/^https:\/\//.test(p)) return new URL(p);
    const m = /^\/user\/([^/?#]+)/.exec(p);
    const base = new URL(this.nginx.url);
    return new URL(p, m ? `https://${m[1]}.localhost:${base.port}` : base.origin);
  }

  /** The cookie of that name on any host. */
  cookie(name: string): string | undefined {
    return this.jar.find(name)?.value;
  }

  private tlsOptions(): https.RequestOptions {
    // NAME.localhost resolves to 127.0.0.1; the test certificate is made for 127.0.0.1.
    return { ca: this.nginx.ca, lookup: localhostLookup, checkServerIdentity: (_host, cert) => tls.checkServerIdentity('127.0.0.1', cert) };
  }

  request(method: string, p: string, init: { headers?: Record<string, string>; form?: Record<string, string> } = {}): Promise<HttpsReply> {
    const url = this.urlFor(p);
    const headers: Record<string, string> = { accept: 'text/html', [PIN_HEADER]: this.pin, ...init.headers };
    const cookie = this.jar.header(url.pathname, url.hostname);
    if (cookie && !headers.cookie) headers.cookie = cookie;
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: false, ...this.tlsOptions() }, (res) => {
        const setCookies = res.headers['set-cookie'] ?? [];
        for (const line of setCookies) this.jar.store(line, url.pathname, url.hostname);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, location: (res.headers.location as string | undefined) ?? null, setCookies }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  get(p: string, headers?: Record<string, string>): Promise<HttpsReply> {
    return this.request('GET', p, { headers });
  }

  /** Sign in through the real form; returns the reply to the POST. */
  async login(username: string, password: string): Promise<HttpsReply> {
    const page = await this.get('/hub/login');
    return this.request('POST', '/hub/login', { form: { _csrf: csrfFrom(page.body), username, password } });
  }

  /** Follow /hub/user-redirect/REST to the user origin's sign-in handoff, as a link click does. */
  async openServer(rest = '/lab'): Promise<{ hub: HttpsReply; handoff: HttpsReply | null }> {
    const hub = await this.get(`/hub/user-redirect${rest}`);
    if (hub.status !== 302 || !hub.location || !/\/oerhub-login\?/.test(hub.location)) return { hub, handoff: null };
    return { hub, handoff: await this.get(hub.location) };
  }

  /** A WebSocket opened by a page of the path's origin. */
  websocket(p: string): Promise<WebSocket> {
    const url = this.urlFor(p);
    const ws = new WebSocket(url.href.replace(/^https/, 'wss'), { ...this.tlsOptions(), headers: { cookie: this.jar.header(url.pathname, url.hostname), origin: url.origin, [PIN_HEADER]: this.pin } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }
}

/** The hidden XSRF field of a hub form page. */
export function csrfFrom(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no _csrf field in page');
  return m[1];
}
