import path from 'node:path';
import express, { type Express, type RequestHandler } from 'express';
import session from 'express-session';
import { Passport } from 'passport';
import { pinoHttp } from 'pino-http';
import type { CsrfSync } from 'csrf-sync';
import { SESSION_COOKIE } from '../auth/server-cookie.js';
import type { HubSessionStore } from '../auth/session-store.js';
import { apiRoutes, isTokenRequest, tokenAuthentication, tokenPageRoutes } from '../api/index.js';
import { authRoutes, landingFor } from './auth-routes.js';
import { safeNext } from './safe-redirect.js';
import { identityRoutes, type Authenticator, type IdentityService } from '../auth/index.js';
import { cameThroughFrontDoor, dropForwardedHeaders, trustOneHop } from '../auth/front-door.js';
import { healthRoutes, metricsRoutes, type HubMetrics, type ReadinessChecks } from '../ops/index.js';
import { serverRoutes } from './server-routes.js';
import { adminRoutes } from './admin-routes.js';
import { tryRoutes } from './try-routes.js';
import { courseRoutes } from '../courses/index.js';
import { vendorAssetsRouter, type VendorAsset } from './vendor-assets.js';
import { errorHandler, notFound } from './errors.js';
import { originCheck } from './origin-check.js';
import { AccountDisabled, NotFound } from '../errors.js';
import type { WebDeps } from './context.js';
import { logUrl, requestIdOf } from '../log.js';

export interface WebAppOptions {
  deps: WebDeps;
  /** The sign-in methods (createAuthenticators), mounted in this order. */
  authenticators: readonly Authenticator[];
  identities: IdentityService;
  sessionStore: HubSessionStore;
  csrf: CsrfSync;
  staticDir: string;
  /** Metrics, health checks, and who may read /hub/metrics (default: a signed-in admin's session). */
  ops: { metrics: HubMetrics; readiness: ReadinessChecks; metricsGuard?: RequestHandler | RequestHandler[] };
  /** Routers of feature parts (projects, accounts), mounted after the XSRF check, before "not found". */
  routers?: readonly RequestHandler[];
  /** More vendored files to serve beside the maps' (BokehJS from the notebook environment). */
  vendorExtra?: readonly VendorAsset[];
}

/** Express for pages and the API. /user/ traffic never comes here: the proxy takes it first. */
export function createWebApp({ deps, authenticators, identities, sessionStore, csrf, staticDir, ops, routers = [], vendorExtra }: WebAppOptions): Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  // One hop: on the front door socket that is nginx's X-Forwarded-*; on the TCP port those
  // headers were dropped at the door (front-door.ts), so req.ip is the real peer.
  app.set('trust proxy', trustOneHop);
  // createHub drops them already; repeated here (idempotent) so no other caller of this app can
  // make trustOneHop believe a TCP client's X-Forwarded-For.
  app.use((req, res, next) => {
    // Before dropping the forwarded headers: nginx's X-Request-Id counts only through the front door.
    req.id = requestIdOf(req, cameThroughFrontDoor(req));
    res.setHeader('x-request-id', String(req.id));
    dropForwardedHeaders(req);
    next();
  });
  // Cookie paths are case-sensitive, so routes must be too: /HUB/ would run without a session.
  app.set('case sensitive routing', true);
  // Before any route: a page on a user origin (or any other site) can't act on the hub.
  app.use(originCheck(deps.origins, log.child({ part: 'web' })));

  app.use(healthRoutes(ops.readiness));
  app.get('/', (_req, res) => res.redirect(302, '/hub/home'));
  app.get('/hub', (_req, res) => res.redirect(302, '/hub/home'));
  // Everything below needs the session, which lives on /hub/ only.
  app.use((req, _res, next) => next(req.path.startsWith('/hub/') ? undefined : new NotFound()));
  // Scripts and styles the sample notebooks' maps need, served here instead of by a CDN.
  app.use(vendorAssetsRouter(vendorExtra));
  app.use('/hub/static', express.static(path.resolve(staticDir), { maxAge: '1h', index: false, dotfiles: 'deny' }));

  app.use(
    pinoHttp({
      logger: log.child({ part: 'web' }),
      genReqId: (req) => req.id,
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      serializers: { req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: logUrl(req.url) }), res: (res: { statusCode: number }) => ({ status: res.statusCode }) },
    }),
  );
  // A hub whose public address is https is only ever reached over TLS by browsers, whatever the
  // hop from the front proxy says: its cookie is Secure even without X-Forwarded-Proto.
  // express-session sets a Secure cookie only on a request it thinks is secure, hence req.secure.
  const alwaysSecure = config.secureCookies === 'always' || (config.secureCookies === 'auto' && config.publicUrl?.startsWith('https:') === true);
  if (alwaysSecure) {
    app.use((req, _res, next) => {
      Object.defineProperty(req, 'secure', { value: true, configurable: true });
      next();
    });
  }
  app.use(
    session({
      name: SESSION_COOKIE,
      secret: deps.cookieSecret,
      store: sessionStore,
      resave: false,
      saveUninitialized: false,
      cookie: {
        path: '/hub/',
        httpOnly: true,
        sameSite: 'lax',
        secure: alwaysSecure ? true : config.secureCookies === 'never' ? false : 'auto',
        maxAge: config.sessionMaxAgeS * 1000,
      },
    }),
  );

  const passport = new Passport();
  // Every sign-in, whatever the method, goes through serializeUser (once per req.login): a
  // disabled account stops here; the others are counted by method.
  passport.serializeUser<string>((user, done) => {
    deps.admin.isDisabled(user.name).then((disabled) => {
      if (disabled) return done(new AccountDisabled(user.name));
      ops.metrics.signedIn(user.source);
      done(null, user.name);
    }, done);
  });
  // A session of an account disabled since (in any hub process) signs nobody in.
  passport.deserializeUser<string>((name, done) => {
    Promise.all([deps.users.get(name), deps.admin.isDisabled(name)]).then(([user, disabled]) => done(null, user && !disabled ? user : false), done);
  });
  app.use(passport.initialize());
  app.use(passport.session());

  // Sign-in methods, built by createHub. What they mount runs before the body parsers and the
  // XSRF check: the front proxy's header signs the user in before any route runs, and SAML's
  // ACS takes the IdP's cross-site POST, which carries no session cookie (SameSite=Lax) and no
  // XSRF token; SAML's signature, the browser-bound request id and the replay guard protect it.
  const early = express.Router({ caseSensitive: true });
  for (const a of authenticators) a.mount?.({ router: early, passport, views: deps.views, log, landing: landingFor, safeNext });
  app.use(early);
  // API tokens: such a request is the token's, never the session's (server/api/auth.ts).
  app.use(tokenAuthentication(deps.tokens, log.child({ part: 'api' })));

  app.use(express.urlencoded({ extended: false, limit: '32kb' }));
  app.use(express.json({ limit: '64kb' }));
  // Token requests skip the XSRF check: no browser sends an Authorization header by itself.
  app.use((req, res, next) => (isTokenRequest(req) ? next() : csrf.csrfSynchronisedProtection(req, res, next)));

  app.use(authRoutes(deps, { authenticators }));
  app.use(serverRoutes(deps));
  app.use(tryRoutes(deps));
  app.use(courseRoutes(deps, deps.courses));
  app.use(adminRoutes(deps));
  app.use(metricsRoutes(ops.metrics, ops.metricsGuard));
  app.use(apiRoutes(deps));
  app.use(tokenPageRoutes(deps));
  app.use(identityRoutes(identities, log));
  for (const r of routers) app.use(r);
  app.use(notFound());
  app.use(errorHandler(deps.views, log));
  return app;
}
