import path from 'node:path';
import express, { type Express } from 'express';
import session from 'express-session';
import { Passport } from 'passport';
import { pinoHttp } from 'pino-http';
import type { CsrfSync } from 'csrf-sync';
import { SESSION_COOKIE } from '../auth/server-cookie.js';
import type { HubSessionStore } from '../auth/session-store.js';
import { apiRoutes } from '../api/routes.js';
import { authRoutes, landingFor } from './auth-routes.js';
import { safeNext } from './safe-redirect.js';
import { identityRoutes, type Authenticator, type IdentityService } from '../auth/index.js';
import { dropForwardedHeaders, trustOneHop } from '../auth/front-door.js';
import { serverRoutes } from './server-routes.js';
import { adminRoutes } from './admin-routes.js';
import { tryRoutes } from './try-routes.js';
import { vendorAssetsRouter, type VendorAsset } from './vendor-assets.js';
import { errorHandler, notFound } from './errors.js';
import { originCheck } from './origin-check.js';
import { NotFound } from '../errors.js';
import type { WebDeps } from './context.js';
import { logUrl } from '../log.js';

export interface WebAppOptions {
  deps: WebDeps;
  /** The sign-in methods (createAuthenticators), mounted in this order. */
  authenticators: readonly Authenticator[];
  identities: IdentityService;
  sessionStore: HubSessionStore;
  csrf: CsrfSync;
  staticDir: string;
  /** More vendored files to serve beside the maps' (BokehJS from the notebook environment). */
  vendorExtra?: readonly VendorAsset[];
}

/** Express for pages and the API. /user/ traffic never comes here: the proxy takes it first. */
export function createWebApp({ deps, authenticators, identities, sessionStore, csrf, staticDir, vendorExtra }: WebAppOptions): Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  // One hop: on the front door socket that is nginx's X-Forwarded-*; on the TCP port those
  // headers were dropped at the door (front-door.ts), so req.ip is the real peer.
  app.set('trust proxy', trustOneHop);
  // createHub drops them already; repeated here (idempotent) so no other caller of this app can
  // make trustOneHop believe a TCP client's X-Forwarded-For.
  app.use((req, _res, next) => {
    dropForwardedHeaders(req);
    next();
  });
  // Cookie paths are case-sensitive, so routes must be too: /HUB/ would run without a session.
  app.set('case sensitive routing', true);
  // Before any route: a page on a user origin (or any other site) can't act on the hub.
  app.use(originCheck(deps.origins, log.child({ part: 'web' })));

  app.get('/hub/health', (_req, res, next) => {
    deps.storeHealthy().then(
      (ok) => res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', store: ok ? 'ok' : 'unavailable' }),
      next,
    );
  });
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
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      serializers: { req: (req: { method: string; url: string }) => ({ method: req.method, url: logUrl(req.url) }), res: (res: { statusCode: number }) => ({ status: res.statusCode }) },
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
  passport.serializeUser<string>((user, done) => done(null, user.name));
  passport.deserializeUser<string>((name, done) => {
    deps.users.get(name).then((user) => done(null, user ?? false), done);
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

  app.use(express.urlencoded({ extended: false, limit: '32kb' }));
  app.use(express.json({ limit: '64kb' }));
  app.use(csrf.csrfSynchronisedProtection);

  app.use(authRoutes(deps, { authenticators }));
  app.use(serverRoutes(deps));
  app.use(tryRoutes(deps));
  app.use(adminRoutes(deps));
  app.use(apiRoutes(deps));
  app.use(identityRoutes(identities, log));
  app.use(notFound());
  app.use(errorHandler(deps.views, log));
  return app;
}
