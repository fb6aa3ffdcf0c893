import path from 'node:path';
import express, { type Express } from 'express';
import session from 'express-session';
import { Passport, type Strategy } from 'passport';
import { pinoHttp } from 'pino-http';
import type { CsrfSync } from 'csrf-sync';
import { SESSION_COOKIE } from '../auth/server-cookie.js';
import type { HubSessionStore } from '../auth/session-store.js';
import { apiRoutes } from '../api/routes.js';
import { authRoutes, landingFor } from './auth-routes.js';
import { safeNext } from './safe-redirect.js';
import { SamlAuthenticator } from '../auth/saml/index.js';
import { samlRoutes } from '../auth/saml/routes.js';
import { trustedHeaderAuth } from '../auth/trusted-header.js';
import { serverRoutes } from './server-routes.js';
import { adminRoutes } from './admin-routes.js';
import { tryRoutes } from './try-routes.js';
import { vendorAssetsRouter } from './vendor-assets.js';
import { errorHandler, notFound } from './errors.js';
import { NotFound } from '../errors.js';
import type { WebDeps } from './context.js';
import { logUrl } from '../log.js';

export interface WebAppOptions {
  deps: WebDeps;
  sessionStore: HubSessionStore;
  csrf: CsrfSync;
  staticDir: string;
}

/** Express for pages and the API. /user/ traffic never comes here: the proxy takes it first. */
export function createWebApp({ deps, sessionStore, csrf, staticDir }: WebAppOptions): Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  // X-Forwarded-* is believed only from the configured proxy addresses.
  app.set('trust proxy', config.trustedProxies);
  // Cookie paths are case-sensitive, so routes must be too: /HUB/ would run without a session.
  app.set('case sensitive routing', true);

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
  app.use(vendorAssetsRouter());
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

  // Single sign-on. The front proxy's header (only from the configured proxy addresses) signs
  // the user in before any route runs.
  if (config.trustedHeader) app.use(trustedHeaderAuth({ config, users: deps.users, log }));
  // SAML's ACS comes before the body parsers and the XSRF check: the IdP's cross-site POST
  // carries no session cookie (SameSite=Lax) and no XSRF token; SAML's signature and the
  // InResponseTo consumed from the store protect it instead.
  let saml: SamlAuthenticator | undefined;
  if (config.samlEnabled) {
    saml = new SamlAuthenticator({ config, log: log.child({ part: 'saml' }), store: deps.store, users: deps.users });
    // passport-saml is typed against express 4's Request; at runtime it is a passport Strategy.
    passport.use('saml', saml.strategy as unknown as Strategy);
    app.use(samlRoutes({ saml, passport, views: deps.views, log, landing: landingFor, safeNext }));
  }

  app.use(express.urlencoded({ extended: false, limit: '32kb' }));
  app.use(express.json({ limit: '64kb' }));
  app.use(csrf.csrfSynchronisedProtection);

  app.use(authRoutes(deps, { saml }));
  app.use(serverRoutes(deps));
  app.use(tryRoutes(deps));
  app.use(adminRoutes(deps));
  app.use(apiRoutes(deps));
  app.use(notFound());
  app.use(errorHandler(deps.views, log));
  return app;
}
