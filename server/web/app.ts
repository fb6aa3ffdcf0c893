import path from 'node:path';
import express, { type Express } from 'express';
import session from 'express-session';
import { Passport } from 'passport';
import { pinoHttp } from 'pino-http';
import type { CsrfSync } from 'csrf-sync';
import { SESSION_COOKIE } from '../auth/server-cookie.js';
import type { HubSessionStore } from '../auth/session-store.js';
import { apiRoutes } from '../api/routes.js';
import { authRoutes } from './auth-routes.js';
import { serverRoutes } from './server-routes.js';
import { adminRoutes } from './admin-routes.js';
import { errorHandler, notFound } from './errors.js';
import { NotFound } from '../errors.js';
import type { WebDeps } from './context.js';

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
  app.use('/hub/static', express.static(path.resolve(staticDir), { maxAge: '1h', index: false, dotfiles: 'deny' }));

  app.use(
    pinoHttp({
      logger: log.child({ part: 'web' }),
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      serializers: { req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }), res: (res: { statusCode: number }) => ({ status: res.statusCode }) },
    }),
  );
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
        secure: config.secureCookies === 'always' ? true : config.secureCookies === 'never' ? false : 'auto',
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

  app.use(express.urlencoded({ extended: false, limit: '32kb' }));
  app.use(express.json({ limit: '64kb' }));
  app.use(csrf.csrfSynchronisedProtection);

  app.use(authRoutes(deps));
  app.use(serverRoutes(deps));
  app.use(adminRoutes(deps));
  app.use(apiRoutes(deps));
  app.use(notFound());
  app.use(errorHandler(deps.views, log));
  return app;
}
