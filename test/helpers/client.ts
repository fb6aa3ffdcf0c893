import dns from 'node:dns';
import http from 'node:http';
import type { LookupFunction } from 'node:net';

/**
 * A browser-like HTTP client for tests: a cookie jar that honours host and Path (so the hub's
 * /hub/ cookie, each user origin's /user/NAME/ cookie and their scoping are exercised as a
 * browser would), manual redirects, the sign-in handoff to user origins (`NAME.localhost`),
 * and helpers to sign in through the real login form.
 */
export interface StoredCookie {
  name: string;
  value: string;
  path: string;
  /** The host name the cookie was set by (host-only, as all of the hub's are; cookies ignore ports); '' in a jar that ignores hosts. */
  host: string;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  /** The body's bytes as they came (a compressed body stays compressed). */
  raw: Buffer;
  location: string | null;
}

/**
 * A browser's cookie jar in miniature: host-only and Path-scoped, honouring expiry and
 * deletion. Callers that pass no host (one-host clients) get a jar that ignores hosts.
 */
export class CookieJar {
  readonly cookies = new Map<string, StoredCookie>();

  /** The Cookie header a browser would send to this host and path. */
  header(path: string, host = ''): string {
    return [...this.cookies.values()]
      .filter((c) => c.host === host.toLowerCase() && (path.startsWith(c.path) || path === c.path.replace(/\/$/, '')))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** The first cookie of that name, on any host (or on `host` only). */
  find(name: string, host?: string): StoredCookie | undefined {
    for (const c of this.cookies.values()) if (c.name === name && (host === undefined || c.host === host.toLowerCase())) return c;
    return undefined;
  }

  /** Take one Set-Cookie line received for a request to requestPath on host. */
  store(line: string, requestPath: string, host = ''): void {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = requestPath.slice(0, requestPath.lastIndexOf('/') + 1) || '/';
    let expired = false;
    for (const a of attrs) {
      const [k, v = ''] = a.split('=');
      const key = k.trim().toLowerCase();
      if (key === 'path') path = v.trim();
      if (key === 'max-age' && Number(v) <= 0) expired = true;
      if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      // The hub never sets Domain: a cookie that would reach other hosts is a bug, so fail loudly.
      if (key === 'domain') throw new Error(`cookie ${name} was set with Domain=${v}`);
    }
    const h = host.toLowerCase();
    const id = `${h}\n${name}\n${path}`;
    if (expired || value === '') this.cookies.delete(id);
    else this.cookies.set(id, { name, value, path, host: h });
  }
}

/**
 * Resolves `localhost` and every `NAME.localhost` to 127.0.0.1, as Chromium does by itself
 * (glibc doesn't), so requests to a user origin reach the test hub with that Host header.
 */
export const localhostLookup = ((hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void): void => {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dns.lookup(hostname, options, callback);
}) as LookupFunction;

export interface HubClientOptions {
  /**
   * The origin of one user's server. Default: `http://NAME.localhost:<hub port>`, the hub's
   * default (originMode=subdomain without publicUrl). For a single-origin hub: the hub's URL.
   */
  contentOrigin?: (escapedName: string) => string;
  /** The local address connections come from (a visitor's own address, see test/helpers/try.ts). */
  localAddress?: string;
}

export class HubClient {
  readonly jar = new CookieJar();

  constructor(
    readonly baseUrl: string,
    private readonly options: HubClientOptions = {},
  ) {}

  // Read from baseUrl on each use: a test may point a copy of this browser at a restarted hub.
  private get hubOrigin(): string {
    return new URL(this.baseUrl).origin;
  }

  private contentOriginOf(escapedName: string): string {
    if (this.options.contentOrigin) return this.options.contentOrigin(escapedName);
    const base = new URL(this.baseUrl);
    return `${base.protocol}//${escapedName}.localhost:${base.port}`;
  }

  get cookies(): Map<string, StoredCookie> {
    return this.jar.cookies;
  }

  /** The origin of this user's server, e.g. http://alice.localhost:8000. */
  contentOrigin(escapedName: string): string {
    return this.contentOriginOf(escapedName);
  }

  /**
   * The absolute URL a path means: /user/NAME/... is on NAME's own origin (where a browser is
   * after the hub's redirect and handoff); every other path is on the hub; absolute URLs stay.
   */
  urlFor(pathOrUrl: string): URL {
    if (/^https?:\/\//.test(pathOrUrl)) return new URL(pathOrUrl);
    const m = /^\/user\/([^/?#]+)/.exec(pathOrUrl);
    // new URL() would resolve dot segments: keep the path exactly as given (traversal tests).
    const url = new URL(m ? this.contentOriginOf(m[1]) : this.hubOrigin);
    return Object.assign(url, { rawPath: pathOrUrl }) as URL & { rawPath: string };
  }

  /** The Cookie header a browser would send with a request to this path (or URL). */
  cookieHeader(pathOrUrl: string): string {
    const url = this.urlFor(pathOrUrl);
    return this.jar.header(rawPathOf(url), url.hostname);
  }

  /** The first cookie of that name, on any host. */
  cookie(name: string, host?: string): StoredCookie | undefined {
    return this.jar.find(name, host);
  }

  async request(method: string, pathOrUrl: string, init: { headers?: Record<string, string>; body?: string; form?: Record<string, string> } = {}): Promise<Reply> {
    const url = this.urlFor(pathOrUrl);
    const path = rawPathOf(url);
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    const cookie = this.jar.header(path, url.hostname);
    if (cookie && !headers.cookie) headers.cookie = cookie;
    let body = init.body;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, path, method, headers, lookup: localhostLookup, localAddress: this.options.localAddress, agent: false }, resolve);
      req.on('error', reject);
      req.end(body);
    });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const replyHeaders = new Headers();
    for (let i = 0; i < res.rawHeaders.length; i += 2) replyHeaders.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
    for (const line of replyHeaders.getSetCookie()) this.jar.store(line, path.split('?')[0], url.hostname);
    const raw = Buffer.concat(chunks);
    return { status: res.statusCode ?? 0, headers: replyHeaders, body: raw.toString('utf8'), raw, location: replyHeaders.get('location') };
  }

  get(pathOrUrl: string, headers?: Record<string, string>): Promise<Reply> {
    return this.request('GET', pathOrUrl, { headers });
  }

  /**
   * GET and follow redirects on this hub and its user origins (at most 10), sign-in handoffs
   * included. Returns the last reply, its path and its full URL.
   */
  async follow(pathOrUrl: string, headers?: Record<string, string>): Promise<Reply & { path: string; url: string }> {
    const start = this.urlFor(pathOrUrl);
    let current = new URL(rawPathOf(start), start.origin).href;
    for (let i = 0; i < 10; i++) {
      const reply = await this.get(current, headers);
      const here = new URL(current);
      const done = { ...reply, path: here.pathname + here.search, url: current };
      if (reply.status < 300 || reply.status >= 400 || !reply.location) return done;
      const next = new URL(reply.location, current);
      if (!this.isOurs(next)) return done;
      current = next.href;
    }
    throw new Error(`too many redirects from ${pathOrUrl}`);
  }

  /**
   * Open the signed-in user's own server as a link to /hub/user-redirect/REST does: the hub
   * redirects to the server's origin with a one-time code, which that origin swaps for its
   * cookie. Returns the hub's reply and the user origin's (a redirect to the page).
   */
  async openServer(rest = '/lab'): Promise<{ hub: Reply; handoff: Reply | null }> {
    const hub = await this.get(`/hub/user-redirect${rest}`);
    if (hub.status !== 302 || !hub.location || !/\/oerhub-login\?/.test(hub.location)) return { hub, handoff: null };
    // By path: it goes to this client's origin for that server, which is the hub's own listener
    // even when publicUrl names a front proxy this test doesn't run (the hub tells hosts apart by name).
    const target = new URL(hub.location, this.baseUrl);
    return { hub, handoff: await this.get(target.pathname + target.search) };
  }

  /** The hub's own origin, or a user origin of it (a *.localhost host on the hub's port). */
  private isOurs(url: URL): boolean {
    if (url.origin === this.hubOrigin) return true;
    const m = /^([a-z0-9-]+)\./.exec(url.hostname);
    return m !== null && url.origin === new URL(this.contentOriginOf(m[1])).origin;
  }

  /** The hidden XSRF field of a hub form page. */
  static csrfFrom(html: string): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (!m) throw new Error('no _csrf field in page');
    return m[1];
  }

  /** Sign in through the real form; returns the reply to the POST. */
  async login(username: string, password: string, next?: string): Promise<Reply> {
    const q = next ? `?next=${encodeURIComponent(next)}` : '';
    const page = await this.get(`/hub/login${q}`);
    return this.request('POST', `/hub/login${q}`, { form: { _csrf: HubClient.csrfFrom(page.body), username, password } });
  }
}

/** The request target of a URL from urlFor: a relative path as given, else path and query. */
function rawPathOf(url: URL): string {
  const raw = (url as URL & { rawPath?: string }).rawPath;
  return raw ?? url.pathname + url.search;
}
