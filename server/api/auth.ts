import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Forbidden, HubError, NotFound, NotSignedIn } from '../errors.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import { allows, allowsAny, expandScopes, roleScopes, type Grant, type ScopeName } from './scopes.js';
import { tokenFromHeader, type TokenAuth, type TokenService } from './tokens.js';

declare global {
  namespace Express {
    interface Request {
      /** Set when the request came with a valid `Authorization: token …` (api/auth.ts). */
      apiToken?: TokenAuth;
    }
  }
}

/** Who is asking and what they may do: a session's user with their roles' scopes, or a token. */
export interface Principal {
  readonly grants: readonly Grant[];
  /** The account acting (token owner or session user); null for a service. */
  readonly user: UserRecord | null;
  /** A service's name, for service tokens. */
  readonly service: string | null;
  readonly token: TokenAuth | null;
}

/** JupyterHub's answer for a bad, expired or revoked token. */
export class InvalidToken extends HubError {
  constructor() {
    super('INVALID_TOKEN', 403, 'Missing or invalid credentials.');
  }
}

/** Whether the request authenticates with an API token (then it skips the browser XSRF check). */
export function isTokenRequest(req: Request): boolean {
  return tokenFromHeader(req.headers.authorization) !== undefined;
}

/**
 * After the session: a request with `Authorization: token X` (or Bearer) is the token's, never
 * the session's, whatever cookie it carries. A bad token is 403 (JupyterHub's answer). Only a
 * token with all of its owner's powers also counts as the owner on the hub's other routes
 * (req.user); a narrower one works only on routes that check scopes (requireScopes, /hub/api).
 */
export function tokenAuthentication(tokens: TokenService, log: Logger): RequestHandler {
  return (req, _res, next) => {
    const token = tokenFromHeader(req.headers.authorization);
    if (token === undefined) return next();
    req.user = undefined;
    tokens.authenticate(token, { fresh: true }).then(
      async (auth) => {
        if (!auth) {
          log.warn({ method: req.method, path: req.path.slice(0, 200) }, 'refused an unknown, expired or revoked API token');
          return next(new InvalidToken());
        }
        req.apiToken = auth;
        if (auth.user && (await tokens.ownerGrants(auth.owner))?.grants.every((g) => allows(auth.grants, g.scope, g.user))) req.user = auth.user;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

/** The principal of a request, or null when it has neither a session nor a token. */
export function principalOf(req: Request): Principal | null {
  if (req.apiToken) {
    const t = req.apiToken;
    return { grants: t.grants, user: t.user, service: t.owner.kind === 'service' ? t.owner.name : null, token: t };
  }
  if (req.user) return { grants: expandScopes(roleScopes(req.user.roles), req.user.name), user: req.user, service: null, token: null };
  return null;
}

/** The principal, or NotSignedIn (401). */
export function requirePrincipal(req: Request): Principal {
  const p = principalOf(req);
  if (!p) throw new NotSignedIn();
  return p;
}

/**
 * Check one scope for one user's resources, as JupyterHub does: without the scope at all 403;
 * with it but filtered to other users 404 (the resource is not revealed).
 */
export function checkScope(p: Principal, scope: ScopeName, user?: string): void {
  if (allows(p.grants, scope, user)) return;
  if (user !== undefined && allowsAny(p.grants, scope)) throw new NotFound('No access to resources or resources not found.');
  throw new Forbidden(`Action is not authorized with current scopes; requires any of [${scope}].`);
}

/**
 * Middleware for another part's route: passes when the request's session or token has any of
 * the scopes (unfiltered), e.g. `app.get('/hub/metrics', requireScopes('read:metrics'), …)`.
 * 401 without credentials, 403 with too few. Mount it after tokenAuthentication (app.ts does).
 */
export function requireScopes(...scopes: ScopeName[]): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const p = principalOf(req);
    if (!p) return next(new NotSignedIn());
    if (scopes.some((s) => allows(p.grants, s))) return next();
    next(new Forbidden(`Action is not authorized with current scopes; requires any of [${scopes.join(', ')}].`));
  };
}

/**
 * requireScopes for a route mounted before the session middleware (no cookie session there):
 * authenticates the token itself. Without a token: 401.
 */
export function scopeGuard(tokens: TokenService, ...scopes: ScopeName[]): RequestHandler {
  const check = requireScopes(...scopes);
  return (req, res, next) => {
    const token = tokenFromHeader(req.headers.authorization);
    if (req.apiToken || token === undefined) return check(req, res, next);
    tokens.authenticate(token).then((auth) => {
      if (!auth) return next(new InvalidToken());
      req.apiToken = auth;
      check(req, res, next);
    }, next);
  };
}
