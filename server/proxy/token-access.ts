import type http from 'node:http';
import type { Logger } from '../log.js';
import type { HostKind } from './origins.js';
import type { Route } from './route-table.js';
import { parseUserPath } from './user-path.js';

/** What the proxy needs of the API's tokens (server/api/tokens.ts implements it). */
export interface ProxyTokenVerifier {
  /** A cached answer (null: known bad), or undefined when the store must be asked. */
  cached(token: string): { grants: readonly { scope: string; user?: string }[] } | null | undefined;
  /** Resolves null for an unknown, revoked or expired token; rejects when the store is away. */
  authenticate(token: string): Promise<{ grants: readonly { scope: string; user?: string }[] } | null>;
}

export interface TokenAccessOptions {
  verifier: ProxyTokenVerifier;
  routes: { get(escapedName: string): Route | undefined };
  log: Logger;
  error(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string): void;
}

/**
 * `Authorization: token <hub API token>` (or Bearer) on /user/NAME/..., as JupyterHub's
 * clients send it (@jupyterlab/services with the hub's token): served if the token has
 * `access:servers` for NAME. Never a browser's way in (no browser sends the header by itself), so
 * no XSRF check and no origin handoff; the hub's token is replaced by the server's own secret.
 * Only requests that carry the header come here: the cookie path pays nothing.
 */
export class TokenAccess {
  constructor(private readonly o: TokenAccessOptions) {}

  /**
   * Take the request if it carries a hub API token for a /user/ path: returns false (doing
   * nothing) otherwise. Calls `forward` with the route once the token may use that server.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, host: HostKind, forward: (route: Route) => void): boolean {
    const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const url = req.url ?? '/';
    if (!m || !url.startsWith('/user/') || host.kind === 'unknown-content') return false;
    const parsed = parseUserPath(url);
    if (parsed.kind !== 'user') return false;
    if (host.kind === 'content' && host.owner !== null && host.owner !== parsed.escapedName) return false;
    const token = m[1];
    const decide = (auth: { grants: readonly { scope: string; user?: string }[] } | null): void => {
      if (!auth) {
        this.o.log.warn({ server: parsed.escapedName }, 'refused an unknown, expired or revoked API token on a user server');
        return this.o.error(req, res, 403, 'Missing or invalid credentials.');
      }
      const route = this.o.routes.get(parsed.escapedName);
      const user = route?.user;
      if (!auth.grants.some((g) => g.scope === 'access:servers' && (g.user === undefined || g.user === user))) {
        this.o.log.warn({ server: parsed.escapedName }, 'refused an API token without access:servers for this server');
        return this.o.error(req, res, 403, 'This token may not use this server (it needs access:servers).');
      }
      if (!route) return this.o.error(req, res, 503, 'This server is not running.');
      forward(route);
    };
    const hit = this.o.verifier.cached(token);
    if (hit !== undefined) {
      decide(hit);
      return true;
    }
    this.o.verifier.authenticate(token).then(decide, (err: Error) => {
      this.o.log.warn({ err: err.message }, 'API token check failed');
      this.o.error(req, res, 503, 'The hub cannot check this token right now; please retry in a few seconds.');
    });
    return true;
  }
}
