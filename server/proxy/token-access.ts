import type http from 'node:http';
import type { Logger } from '../log.js';
import type { HostKind } from './origins.js';
import type { Route } from './route-table.js';
import { parseUserPath } from './user-path.js';

type Grants = readonly { scope: string; user?: string }[];

/** A verified token, as the proxy sees it: which one (its WebSockets close when it is revoked), until when, and what it may do. */
export interface ProxyTokenAuth {
  tokenId: string;
  /** ms since the epoch, or null: never expires. */
  expiresAt: number | null;
  grants: Grants;
}

/** What the proxy needs of the API's tokens (server/api/tokens.ts implements it). */
export interface ProxyTokenVerifier {
  /** A cached answer (null: known bad), or undefined when the store must be asked. */
  cached(token: string): ProxyTokenAuth | null | undefined;
  /** Resolves null for an unknown, revoked or expired token; rejects when the store is away. */
  authenticate(token: string): Promise<ProxyTokenAuth | null>;
}

export interface TokenAccessOptions {
  verifier: ProxyTokenVerifier;
  routes: { get(escapedName: string): Route | undefined };
  log: Logger;
  error(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string): void;
}

/** The hub's own tokens start so (server/api/tokens.ts); only those are taken from a WebSocket URL. */
const HUB_TOKEN_PREFIX = 'oh_';
const HEADER = /^(?:token|bearer)\s+(\S+)\s*$/i;

type Outcome = { route: Route; auth: ProxyTokenAuth } | { status: number; message: string };

/**
 * `Authorization: token <hub API token>` (or Bearer) on /user/NAME/..., as JupyterHub's
 * clients send it (@jupyterlab/services with the hub's token): served if the token has
 * `access:servers` for NAME. Never a browser's way in (no browser sends the header by itself), so
 * no XSRF check and no origin handoff; the hub's token is replaced by the server's own secret.
 * WebSockets can't carry headers from a browser's API, so there a hub token may also come as
 * `?token=oh_…` (what @jupyterlab/services appends); it is cut from the URL before forwarding.
 * Only requests that carry a token come here: the cookie path pays nothing.
 */
export class TokenAccess {
  constructor(private readonly o: TokenAccessOptions) {}

  /**
   * Take the request if it carries a hub API token for a /user/ path: returns false (doing
   * nothing) otherwise. Calls `forward` with the route once the token may use that server.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, host: HostKind, forward: (route: Route) => void): boolean {
    const token = HEADER.exec(req.headers.authorization ?? '')?.[1];
    const escapedName = token === undefined ? undefined : this.serverOf(req, host);
    if (token === undefined || escapedName === undefined) return false;
    this.decide(token, escapedName, (o) => ('route' in o ? forward(o.route) : this.o.error(req, res, o.status, o.message)));
    return true;
  }

  /**
   * The same for a WebSocket upgrade (header or `?token=oh_…`). Returns false when it carries no
   * hub token; otherwise calls `forward` (with the token, whose revocation or expiry must close
   * the socket) or `refuse` with an HTTP status.
   */
  handleUpgrade(req: http.IncomingMessage, host: HostKind, forward: (route: Route, auth: ProxyTokenAuth) => void, refuse: (status: number) => void): boolean {
    const url = req.url ?? '/';
    let token = HEADER.exec(req.headers.authorization ?? '')?.[1];
    const q = url.indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const fromQuery = query.get('token');
    if (token === undefined && fromQuery?.startsWith(HUB_TOKEN_PREFIX)) token = fromQuery;
    const escapedName = token === undefined ? undefined : this.serverOf(req, host);
    if (token === undefined || escapedName === undefined) return false;
    if (fromQuery !== null) {
      // Jupyter must see neither the hub's token nor a token of its own from the client.
      query.delete('token');
      const rest = query.toString();
      req.url = url.slice(0, q) + (rest ? `?${rest}` : '');
    }
    this.decide(token, escapedName, (o) => ('route' in o ? forward(o.route, o.auth) : refuse(o.status)));
    return true;
  }

  /** The server a /user/ request is for, or undefined when this part should not take it. */
  private serverOf(req: http.IncomingMessage, host: HostKind): string | undefined {
    const url = req.url ?? '/';
    if (!url.startsWith('/user/') || host.kind === 'unknown-content') return undefined;
    const parsed = parseUserPath(url);
    if (parsed.kind !== 'user') return undefined;
    if (host.kind === 'content' && host.owner !== null && host.owner !== parsed.escapedName) return undefined;
    return parsed.escapedName;
  }

  private decide(token: string, escapedName: string, done: (o: Outcome) => void): void {
    const judge = (auth: ProxyTokenAuth | null): void => {
      if (!auth) {
        this.o.log.warn({ server: escapedName }, 'refused an unknown, expired or revoked API token on a user server');
        return done({ status: 403, message: 'Missing or invalid credentials.' });
      }
      const route = this.o.routes.get(escapedName);
      const user = route?.user;
      if (!auth.grants.some((g) => g.scope === 'access:servers' && (g.user === undefined || g.user === user))) {
        this.o.log.warn({ server: escapedName }, 'refused an API token without access:servers for this server');
        return done({ status: 403, message: 'This token may not use this server (it needs access:servers).' });
      }
      if (!route) return done({ status: 503, message: 'This server is not running.' });
      done({ route, auth });
    };
    const hit = this.o.verifier.cached(token);
    if (hit !== undefined) return judge(hit);
    this.o.verifier.authenticate(token).then(judge, (err: Error) => {
      this.o.log.warn({ err: err.message }, 'API token check failed');
      done({ status: 503, message: 'The hub cannot check this token right now; please retry in a few seconds.' });
    });
  }
}
