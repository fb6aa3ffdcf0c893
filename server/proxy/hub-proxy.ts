import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import { logUrl, type Logger } from '../log.js';
import { readCookie, serverCookieHeader, serverCookieName, signServerCookie, stripOurCookies } from '../auth/server-cookie.js';
import type { HubConfig } from '../config/index.js';
import { safeNext } from '../web/safe-redirect.js';
import { cameThroughFrontDoor } from '../auth/front-door.js';
import type { RouteTable, Route } from './route-table.js';
import type { SessionChecker, SessionCheck } from './session-check.js';
import { parseUserPath } from './user-path.js';
import { isAnonymousEscapedName } from '../names.js';
import type { ActivityTracker } from './activity.js';
import type { HostKind, UserOrigins } from './origins.js';
import { HANDOFF_PATH, type SignInHandoff } from './handoff.js';
import { PREVIEW_NAME, type ContentOriginPages } from './try-workspace.js';
import type { ProxyTokenAuth, TokenAccess } from './token-access.js';
import { StaticAssets } from './static-assets.js';
import { HOP_BY_HOP, HttpForwarder } from './http-forward.js';
import { refusedGitPullUrl } from './gitpull-guard.js';

/** How the proxy shows a page when it can't forward (rendered by the web part). */
export interface ProxyPages {
  /** The user's server is not running: a page offering to start it. */
  notRunning(res: http.ServerResponse, escapedName: string, url: string): void;
  /** A short error page (or JSON when the client asked for it). */
  error(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string): void;
}

export interface HubProxyOptions {
  routes: RouteTable;
  sessions: SessionChecker;
  activity: ActivityTracker;
  pages: ProxyPages;
  log: Logger;
  /** Which host is the hub's and which are user origins (issue 9). */
  origins: UserOrigins;
  /** Swaps the hub's one-time codes for a user origin's cookie. */
  handoff: SignInHandoff;
  /** Signs server cookies (the hub's cookie secret). */
  cookieSecret: string;
  cookies: Pick<HubConfig, 'secureCookies' | 'publicUrl' | 'sessionMaxAgeS'>;
  maxSockets: number;
  /** Hub pages under a server's base path on its own origin (the "Try it" workspace). */
  contentPages?: ContentOriginPages;
  /** Hub API tokens on /user/ (token-access.ts); consulted only when an Authorization header is present. */
  tokenAccess?: TokenAccess;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// Headers a browser must not be able to set for the notebook server; the proxy sets its own.
const STRIPPED = ['authorization', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip'];
// Not copied to a plain HTTP request: the above, our cookies (the Cookie header is rebuilt) and
// hop-by-hop headers, except Transfer-Encoding, which says how the body that follows is framed.
const NOT_FORWARDED = new Set([...STRIPPED, 'cookie', ...[...HOP_BY_HOP].filter((h) => h !== 'transfer-encoding')]);
// A server may take this long to answer a request (or between two chunks of its answer).
const PROXY_TIMEOUT_MS = 300_000;

/**
 * The hot path: every request and WebSocket of every student under /user/NAME/. Runs before
 * express. For each: exact user match from the URL, session check (cached), XSRF on unsafe
 * methods, Origin on upgrades, then forward with the server's secret injected.
 */
export class HubProxy {
  /** WebSockets only; plain HTTP goes through `http`. */
  private readonly proxy: ProxyServer;
  private readonly http: HttpForwarder;
  private readonly agent: http.Agent;
  private readonly socketsBySession = new Map<string, Set<Duplex>>();
  /** WebSockets opened with an API token, by token id: closed when it is revoked or expires. */
  private readonly socketsByToken = new Map<string, Set<Duplex>>();
  private closed = false;

  constructor(private readonly opts: HubProxyOptions) {
    // Bounded keep-alive pool per notebook server: reuse sockets, never grow without limit.
    // Keep as many idle as may be busy, or steady load churns connections (measured in bench/proxy.ts).
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: opts.maxSockets, timeout: 120_000 });
    this.http = new HttpForwarder(this.agent, PROXY_TIMEOUT_MS, (err, req, res) => this.onProxyError(err, req, res), new StaticAssets());
    this.proxy = createProxyServer({ agent: this.agent, xfwd: false, ws: true, proxyTimeout: PROXY_TIMEOUT_MS });
    this.proxy.on('error', (err, req, res) => this.onProxyError(err as NodeJS.ErrnoException, req, res));
    // A browser that gives up on a WebSocket before Jupyter answers must not leave the upstream
    // request (and our half of the socket) hanging until Jupyter's own timeout.
    // And once the browser's socket is gone, http-proxy only half-closes Jupyter's: Jupyter may
    // keep its half open for as long as it runs, which leaks the socket (and outlives close()).
    this.proxy.on('proxyReqWs', (proxyReq, _req, socket) => {
      socket.once('close', () => proxyReq.destroy());
      proxyReq.once('upgrade', (_res: http.IncomingMessage, upstream: Duplex) => socket.once('close', () => upstream.destroy()));
    });
  }

  /**
   * Every request to a user-content host, and every /user/ request to the hub's host. On the
   * hub's host (unless in single-origin mode) a /user/ page is sent to its own origin; on a
   * user origin only that user's /user/NAME/ is served.
   */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse, host: HostKind = this.opts.origins.classify(req)): void {
    const url = req.url ?? '/';
    if (host.kind === 'unknown-content') {
      this.opts.log.warn({ host: req.headers.host?.slice(0, 200) }, 'refused request for an unknown user-content host');
      this.opts.pages.error(req, res, 404, 'There is no server at this address.');
      return;
    }
    if (req.headers.authorization !== undefined && this.opts.tokenAccess?.handle(req, res, host, (route) => this.forwardWithToken(req, res, route))) return;
    if (host.kind === 'hub' && this.opts.origins.isolated) {
      this.toContentOrigin(req, res, url);
      return;
    }
    if (host.kind === 'content' && !url.startsWith('/user/')) {
      this.offContentPath(req, res, url);
      return;
    }
    const parsed = parseUserPath(url);
    if (parsed.kind === 'add-slash') {
      res.writeHead(302, { location: parsed.location }).end();
      return;
    }
    if (parsed.kind === 'bad') {
      this.opts.log.warn({ url: logUrl(url), reason: parsed.reason }, 'refused user path');
      this.opts.pages.error(req, res, 400, 'That address is not valid.');
      return;
    }
    const { escapedName } = parsed;
    if (host.kind === 'content' && host.owner !== null && host.owner !== escapedName) {
      this.opts.log.warn({ host: host.owner, path: escapedName }, "refused another user's path on a user origin");
      this.opts.pages.error(req, res, 404, 'There is no such page at this address.');
      return;
    }
    // The waiting line's preview host: the hub's rendered samples, no session, no server.
    if (escapedName === PREVIEW_NAME && host.kind === 'content' && this.opts.contentPages?.handlePreview) {
      this.opts.contentPages.handlePreview(req, res);
      return;
    }
    if (host.kind === 'content' && isHandoffPath(url, escapedName)) {
      this.redeem(req, res, url, escapedName);
      return;
    }
    const cookie = readCookie(req.headers.cookie, serverCookieName(escapedName));
    if (!cookie) {
      this.unauthenticated(req, res, url, escapedName);
      return;
    }
    const hit = this.opts.sessions.cached(cookie, escapedName);
    if (hit) {
      this.forward(req, res, escapedName, hit, host);
      return;
    }
    this.opts.sessions.check(cookie, escapedName).then(
      (check) => (check ? this.forward(req, res, escapedName, check, host) : this.unauthenticated(req, res, url, escapedName)),
      (err: Error) => {
        this.opts.log.warn({ err: err.message }, 'session check failed');
        this.opts.pages.error(req, res, 503, 'The hub cannot check your sign-in right now. Your work is safe; please retry in a few seconds.');
      },
    );
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '/';
    const host = this.opts.origins.classify(req);
    if (this.opts.tokenAccess?.handleUpgrade(req, host, (route, auth) => this.upgradeWithToken(req, socket, head, route, auth), (status) => refuseUpgrade(socket, status))) return;
    // User servers' WebSockets are served on their own origin only.
    if (host.kind === 'unknown-content' || (host.kind === 'hub' && this.opts.origins.isolated)) return refuseUpgrade(socket, 404);
    const parsed = url.startsWith('/user/') ? parseUserPath(url) : null;
    if (!parsed || parsed.kind !== 'user') return refuseUpgrade(socket, 404);
    if (host.kind === 'content' && host.owner !== null && host.owner !== parsed.escapedName) return refuseUpgrade(socket, 404);
    if (!this.isAllowedOrigin(req, parsed.escapedName)) {
      this.opts.log.warn({ origin: req.headers.origin, url: logUrl(url) }, 'refused WebSocket from foreign origin');
      return refuseUpgrade(socket, 403);
    }
    const { escapedName } = parsed;
    const cookie = readCookie(req.headers.cookie, serverCookieName(escapedName));
    if (!cookie) return refuseUpgrade(socket, 403);
    socket.on('error', () => socket.destroy());
    // Browsers never half-close a WebSocket: an end means it is gone.
    socket.once('end', () => socket.destroy());
    this.opts.sessions.check(cookie, escapedName).then(
      (check) => {
        if (!check) return refuseUpgrade(socket, 403);
        const route = this.opts.routes.get(escapedName);
        if (!route) return refuseUpgrade(socket, 503);
        this.track(this.socketsBySession, check.sid, socket, escapedName);
        this.prepare(req, route);
        this.proxy.ws(req, socket, head, { target: route.target });
      },
      () => refuseUpgrade(socket, 503),
    );
  }

  /** Close every proxied WebSocket opened with this session (it was signed out). */
  closeSession(sid: string): number {
    return closeAll(this.socketsBySession, sid);
  }

  /** Close every proxied WebSocket opened with this API token (it was revoked). */
  closeToken(tokenId: string): number {
    return closeAll(this.socketsByToken, tokenId);
  }

  /** Number of proxied WebSockets open now (metrics, benchmarks). */
  openWebSockets(): number {
    let n = 0;
    for (const map of [this.socketsBySession, this.socketsByToken]) for (const s of map.values()) n += s.size;
    return n;
  }

  /** Close every proxied WebSocket and upstream connection. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sid of [...this.socketsBySession.keys()]) this.closeSession(sid);
    for (const id of [...this.socketsByToken.keys()]) this.closeToken(id);
    this.proxy.close();
    this.agent.destroy();
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, escapedName: string, check: SessionCheck, host: HostKind): void {
    const route = this.opts.routes.get(escapedName);
    if (route && route.user !== check.user) {
      this.opts.pages.error(req, res, 403, 'This is not your server.');
      return;
    }
    // Before the XSRF check: End session is a plain form post, with a token of its own.
    // Getters: most requests are not for these pages and never need either answer.
    if (host.kind === 'content' && this.opts.contentPages) {
      const secure = (): boolean => this.isSecure(req);
      const content = { escapedName, check, get xsrfPair() { return hasXsrfPair(req); }, get secure() { return secure(); } };
      if (this.opts.contentPages.handle(req, res, content)) return;
    }
    const gitPull = refusedGitPullUrl(req.url ?? '/', escapedName);
    if (gitPull) {
      this.opts.log.warn({ user: check.user }, 'refused an nbgitpuller link that pulls outside a plain folder of the home');
      this.opts.pages.error(req, res, 400, gitPull);
      return;
    }
    if (UNSAFE.has(req.method ?? 'GET') && !hasXsrfPair(req)) {
      this.opts.log.warn({ user: check.user, method: req.method }, 'refused unsafe request without XSRF token');
      this.opts.pages.error(req, res, 403, 'This request is missing its XSRF token. Reload the page and try again.');
      return;
    }
    if (!route) {
      this.opts.pages.notRunning(res, escapedName, req.url ?? '/');
      return;
    }
    this.opts.activity.touch(escapedName);
    this.http.forward(req, res, route.target, this.upstreamHeaders(req, route));
  }

  /** A request the hub API token in its Authorization header may make (token-access.ts). */
  private forwardWithToken(req: http.IncomingMessage, res: http.ServerResponse, route: Route): void {
    this.opts.activity.touch(route.escapedName);
    // upstreamHeaders drops the browser's Authorization (the hub token) for the server's secret.
    this.http.forward(req, res, route.target, this.upstreamHeaders(req, route));
  }

  /** X-Forwarded-* are believed iff the request came through the front door socket (nginx). */
  private forwardedFor(req: http.IncomingMessage): { proto: string; host: string; clientFor: string } {
    const h = req.headers;
    const fromProxy = cameThroughFrontDoor(req);
    return {
      proto: (fromProxy && firstValue(h['x-forwarded-proto'])) || ((req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'),
      host: (fromProxy && firstValue(h['x-forwarded-host'])) || h.host || '',
      clientFor: (fromProxy && firstValue(h['x-forwarded-for'])) || req.socket.remoteAddress || '',
    };
  }

  /**
   * The headers a plain HTTP request goes on with, as a flat array: the browser's, without
   * Authorization, X-Forwarded-*, our cookies and hop-by-hop ones; then the server's secret and
   * our own X-Forwarded-*.
   */
  private upstreamHeaders(req: http.IncomingMessage, route: Route): string[] {
    const h = req.headers;
    const { proto, host, clientFor } = this.forwardedFor(req);
    const out: string[] = [];
    for (const name in h) {
      if (NOT_FORWARDED.has(name)) continue;
      const v = h[name];
      if (typeof v === 'string') out.push(name, v);
      else if (v !== undefined) for (const one of v) out.push(name, one);
    }
    if (h.host === undefined) out.push('host', route.target.host);
    const cookie = stripOurCookies(h.cookie);
    if (cookie !== undefined) out.push('cookie', cookie);
    // As before: some servers want a length on a bodiless DELETE or OPTIONS.
    if ((req.method === 'DELETE' || req.method === 'OPTIONS') && h['content-length'] === undefined && h['transfer-encoding'] === undefined) out.push('content-length', '0');
    out.push('authorization', route.authorization, 'x-forwarded-proto', proto, 'x-forwarded-host', host, 'x-forwarded-for', clientFor);
    return out;
  }

  /** A WebSocket the hub API token that came with it may open (token-access.ts). */
  private upgradeWithToken(req: http.IncomingMessage, socket: Duplex, head: Buffer, route: Route, auth: ProxyTokenAuth): void {
    socket.on('error', () => socket.destroy());
    socket.once('end', () => socket.destroy());
    // No session signs it out: the token's revocation (closeToken) or its expiry does.
    this.track(this.socketsByToken, auth.tokenId, socket, route.escapedName);
    if (auth.expiresAt !== null) closeAt(socket, auth.expiresAt);
    this.prepare(req, route);
    this.proxy.ws(req, socket, head, { target: route.target });
  }

  /** A WebSocket upgrade's headers, rewritten in place for http-proxy-3 (as upstreamHeaders, but an object). */
  private prepare(req: http.IncomingMessage, route: Route): void {
    const h = req.headers;
    const { proto, host, clientFor } = this.forwardedFor(req);
    for (const name of STRIPPED) delete h[name];
    const cookie = stripOurCookies(h.cookie);
    if (cookie === undefined) delete h.cookie;
    else h.cookie = cookie;
    h.authorization = route.authorization;
    h['x-forwarded-proto'] = proto;
    h['x-forwarded-host'] = host;
    h['x-forwarded-for'] = clientFor;
  }

  private unauthenticated(req: http.IncomingMessage, res: http.ServerResponse, url: string, escapedName: string): void {
    // Nobody can sign in as a "Try it" visitor: once their server is gone (signed out, culled),
    // its old address says the session ended. While it runs, the usual answer (sign in) stands.
    if (wantsPage(req) && isAnonymousEscapedName(escapedName) && this.opts.routes.get(escapedName) === undefined) {
      this.opts.pages.notRunning(res, escapedName, url);
      return;
    }
    if (wantsPage(req)) {
      // Through the hub's sign-in and back: it hands over with a one-time code (or refuses someone else's server).
      const hub = this.opts.origins.isolated ? this.opts.origins.hubOrigin() : '';
      res.writeHead(302, { location: `${hub}/hub/login?next=${encodeURIComponent(url)}`, 'cache-control': 'no-store' }).end();
      return;
    }
    this.opts.pages.error(req, res, 403, 'Sign in to use this server.');
  }

  /** A /user/ request on the hub's host: pages go to the server's own origin, where sign-in is handed over. */
  private toContentOrigin(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    const parsed = parseUserPath(url);
    if (parsed.kind === 'bad') {
      this.opts.log.warn({ url: logUrl(url), reason: parsed.reason }, 'refused user path');
      this.opts.pages.error(req, res, 400, 'That address is not valid.');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.opts.log.warn({ method: req.method, url: logUrl(url) }, "refused a user-server request on the hub's origin");
      this.opts.pages.error(req, res, 404, 'User servers are served from their own address, not from the hub\'s.');
      return;
    }
    const name = parsed.kind === 'user' ? parsed.escapedName : parsed.location.split('/')[2];
    const path = parsed.kind === 'user' ? url : parsed.location;
    res.writeHead(302, { location: this.opts.origins.contentOrigin(name) + path, 'cache-control': 'no-store' }).end();
  }

  /** Anything but /user/NAME/ on a user origin: the hub's pages are only on the hub's origin. */
  private offContentPath(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    if ((url === '/' || url.startsWith('/hub/') || url === '/hub') && !url.startsWith('/hub/api') && wantsPage(req)) {
      const target = safeNext(url === '/' || url === '/hub' ? '/hub/home' : url) ?? '/hub/home';
      res.writeHead(302, { location: this.opts.origins.hubOrigin() + target, 'cache-control': 'no-store' }).end();
      return;
    }
    this.opts.log.warn({ host: req.headers.host?.slice(0, 200), method: req.method, url: logUrl(url) }, 'refused a hub path on a user origin');
    this.opts.pages.error(req, res, 404, 'There is no such page at this address.');
  }

  /** GET /user/NAME/oerhub-login?code=...&next=...: swap the hub's one-time code for this origin's cookie. */
  private redeem(req: http.IncomingMessage, res: http.ServerResponse, url: string, escapedName: string): void {
    const query = new URLSearchParams(url.slice(url.indexOf('?') + 1));
    const home = `/user/${escapedName}/`;
    const rawNext = safeNext(query.get('next'));
    // Only this server's own pages, never the handoff itself (a loop) or anywhere else.
    const next = rawNext && rawNext.startsWith(home) && !isHandoffPath(rawNext, escapedName) ? rawNext : home;
    const retry = (reason: string): void => {
      this.opts.log.warn({ server: escapedName, reason }, 'sign-in handoff refused');
      if (wantsPage(req)) res.writeHead(302, { location: `${this.opts.origins.hubOrigin()}/hub/login?next=${encodeURIComponent(next)}`, 'cache-control': 'no-store' }).end();
      else this.opts.pages.error(req, res, 403, 'This sign-in link is not valid any more. Open your server from the hub again.');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return retry('not a GET');
    this.opts.handoff
      .redeem(query.get('code') ?? '', escapedName)
      .then(async (sid) => {
        if (!sid) return retry('unknown, used or expired code');
        const value = signServerCookie(this.opts.cookieSecret, sid, escapedName);
        // The session must still be signed in, and be the server's owner.
        const check = await this.opts.sessions.check(value, escapedName);
        if (!check) return retry('session signed out or not the owner');
        this.opts.log.info({ user: check.user }, 'signed in on user origin');
        res
          .writeHead(302, {
            location: next,
            'set-cookie': serverCookieHeader(escapedName, value, { secure: this.isSecure(req), maxAgeS: this.opts.cookies.sessionMaxAgeS }),
            'cache-control': 'no-store',
            // The code is spent, but keep it out of the next page's Referer anyway.
            'referrer-policy': 'no-referrer',
          })
          .end();
      })
      .catch((err: Error) => {
        this.opts.log.warn({ err: err.message }, 'sign-in handoff failed');
        this.opts.pages.error(req, res, 503, 'The hub cannot check your sign-in right now. Your work is safe; please retry in a few seconds.');
      });
  }

  private isSecure(req: http.IncomingMessage): boolean {
    const mode = this.opts.cookies.secureCookies;
    if (mode !== 'auto') return mode === 'always';
    if (this.opts.cookies.publicUrl?.startsWith('https:') || (req.socket as { encrypted?: boolean }).encrypted) return true;
    return cameThroughFrontDoor(req) && firstValue(req.headers['x-forwarded-proto']) === 'https';
  }

  /**
   * A WebSocket must come from a page of the server's own origin: on a user origin, that
   * origin (publicUrl's scheme and port); in single-origin mode, the hub's.
   */
  private isAllowedOrigin(req: http.IncomingMessage, escapedName: string): boolean {
    const origin = req.headers.origin;
    // Browsers always send Origin on WebSocket upgrades; a client without one is not a browser page.
    if (origin === undefined) return true;
    if (this.opts.cookies.publicUrl) return origin === this.opts.origins.contentOrigin(escapedName);
    const fromProxy = cameThroughFrontDoor(req);
    const host = (fromProxy && firstValue(req.headers['x-forwarded-host'])) || req.headers.host;
    try {
      return host !== undefined && new URL(origin).host === host;
    } catch {
      return false;
    }
  }

  private track(map: Map<string, Set<Duplex>>, key: string, socket: Duplex, escapedName: string): void {
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(socket);
    // Kernel traffic counts as activity for the culler, even with no HTTP requests.
    const touch = (): void => this.opts.activity.touch(escapedName);
    socket.on('data', touch);
    socket.once('close', () => {
      socket.off('data', touch);
      const current = map.get(key);
      if (!current) return;
      current.delete(socket);
      if (current.size === 0) map.delete(key);
    });
  }

  private onProxyError(err: NodeJS.ErrnoException, req: http.IncomingMessage, res: http.ServerResponse | Socket): void {
    // Expected network failures: one line, no stack.
    this.opts.log.warn({ code: err.code, url: logUrl(req.url) }, 'proxy error');
    if (!(res instanceof http.ServerResponse)) {
      res.destroy();
      return;
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const refused = err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET';
    this.opts.pages.error(req, res, 502, refused ? 'Your server is not answering. It may have stopped; try starting it again from your home page.' : 'Your server did not answer in time.');
  }
}

function firstValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const comma = s.indexOf(',');
  return (comma === -1 ? s : s.slice(0, comma)).trim() || undefined;
}

function wantsPage(req: http.IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html');
}

function isHandoffPath(url: string, escapedName: string): boolean {
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)) === `/user/${escapedName}/${HANDOFF_PATH}`;
}

function hasXsrfPair(req: http.IncomingMessage): boolean {
  const header = req.headers['x-xsrftoken'];
  const cookie = readCookie(req.headers.cookie, '_xsrf');
  return typeof header === 'string' && header.length > 0 && cookie !== undefined && header === cookie;
}

function refuseUpgrade(socket: Duplex, status: number): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

/** Destroy the sockets kept under `key`; returns how many. */
function closeAll(map: Map<string, Set<Duplex>>, key: string): number {
  const sockets = map.get(key);
  if (!sockets) return 0;
  map.delete(key);
  for (const s of sockets) s.destroy();
  return sockets.size;
}

// setTimeout fires at once for delays above 2^31-1 ms (about 24.8 days): wait in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Destroy the socket at `at` (ms since the epoch), unless it closed before. */
function closeAt(socket: Duplex, at: number): void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = at - Date.now();
    if (left <= 0) {
      socket.destroy();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}
