import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';
import type { UserOrigins } from '../proxy/index.js';
import { SAML_PATHS } from '../auth/saml/index.js';
import { Forbidden } from '../errors.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
// The IdP posts these from its own origin, by design; SAML's signatures protect them.
const CROSS_SITE_POSTS = new Set<string>([SAML_PATHS.acs, SAML_PATHS.slo]);

/**
 * Refuse hub requests that a page of another origin made: every request to /hub/api and every
 * unsafe request whose Origin header is not the hub's own gets 403 and a log line. A user
 * origin (a notebook's JavaScript) is same-site with the hub in a subdomain deployment, so
 * SameSite cookies alone don't stop it. Requests without Origin are not from a cross-origin
 * page (browsers send it on every cross-origin fetch and every POST): API tokens and scripts.
 * The hub never sends CORS headers, so no other origin can read an answer either.
 */
export function originCheck(origins: UserOrigins, log: Logger): RequestHandler {
  return (req, _res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined) return next();
    if (SAFE.has(req.method) && !req.path.startsWith('/hub/api/')) return next();
    if (CROSS_SITE_POSTS.has(req.path)) return next();
    if (origins.isHubOrigin(origin, req, req.protocol)) return next();
    log.warn({ origin: origin.slice(0, 200), method: req.method, path: req.path.slice(0, 200) }, 'refused a hub request from a foreign origin');
    next(new Forbidden('This request came from another site or a user server, and the hub does not accept those.'));
  };
}
