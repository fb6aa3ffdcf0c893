import express, { Router, type ErrorRequestHandler, type NextFunction, type Request, type Response } from 'express';
import type { AuthenticateOptions, Passport } from 'passport';
import type nunjucks from 'nunjucks';
import type { Logger } from '../../log.js';
import type { UserRecord } from '../../store/repos.js';
import { HubError } from '../../errors.js';
import { IdentityConflict } from '../identities.js';
import { PAGE_HEADERS } from '../../web/render.js';
import { checkRedirectMessage, checkSamlResponseShape, isSha1, signatureAlgorithms, MAX_SAML_RESPONSE_BASE64 } from './guards.js';
import { SAML_PATHS, SamlRefused, type SamlAuthenticator, type SamlSessionInfo } from './index.js';

export interface SamlRouteDeps {
  saml: SamlAuthenticator;
  /** config.samlAllowSha1: accept SHA-1 signatures and digests (logged). */
  allowSha1: boolean;
  passport: InstanceType<typeof Passport>;
  views: nunjucks.Environment;
  log: Logger;
  /** Where a signed-in user goes (landingFor of auth-routes: RelayState is checked like next=). */
  landing(user: UserRecord, next: unknown): string;
  /** Validate a redirect target like next= (safeNext). */
  safeNext(raw: unknown): string | null;
}

declare module 'express-session' {
  interface SessionData {
    saml?: SamlSessionInfo;
  }
}

/**
 * SAML endpoints. Mounted before the hub's body parsers and XSRF check: the IdP POSTs to the
 * ACS cross-site, and with SameSite=Lax the browser sends no session cookie with it, so the
 * ACS trusts only what SAML itself proves (signature, audience, time, and an InResponseTo
 * that is consumed from the store, not from the session).
 */
export function samlRoutes({ saml, allowSha1, passport, views, log, landing, safeNext }: SamlRouteDeps): Router {
  const router = Router();

  /** A refusal: a page, a log line, and nothing that would create a session. */
  const refuse = (req: Request, res: Response, status: number, reason: string, message?: string): void => {
    log.warn({ part: 'saml', status, reason, ip: req.ip }, 'SAML sign-in refused');
    const html = views.render('saml-error.njk', {
      status,
      message: message ?? "Your institution's sign-in could not be accepted. Please start again from the sign-in page.",
      user: null,
      csrfToken: '',
    });
    res.status(status).set(PAGE_HEADERS).send(html);
  };

  router.get(SAML_PATHS.metadata, (_req, res) => {
    res.status(200).set({ 'content-type': 'application/samlmetadata+xml; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).send(saml.spMetadata());
  });

  // A SAML message in a query string is looked at (bounded, then inflated with a cap) before
  // passport-saml inflates it without one. Sign-in answers come only by POST to the ACS.
  router.get([SAML_PATHS.login, SAML_PATHS.acs, SAML_PATHS.slo], (req, res, next) => {
    const query = req.query as Record<string, unknown>;
    if (query.SAMLResponse === undefined && query.SAMLRequest === undefined) return next();
    if (req.path !== SAML_PATHS.slo) return refuse(req, res, 400, 'a SAML message in the query string of the sign-in endpoint', 'That sign-in response was not understood. Please start again from the sign-in page.');
    const check = checkRedirectMessage(query.SAMLResponse ?? query.SAMLRequest);
    if (!check.ok) return refuse(req, res, 400, check.reason, 'That sign-out response was not understood.');
    if (typeof query.SigAlg === 'string' && isSha1(query.SigAlg) && !allowSha1) return refuse(req, res, 400, `SHA-1 signature on a logout message (${query.SigAlg}); set samlAllowSha1 to accept it`, 'That sign-out response was not understood.');
    next();
  });

  router.get(SAML_PATHS.login, (req, res, next) => {
    if (req.user) {
      res.redirect(303, landing(req.user, req.query.next));
      return;
    }
    const relayState = safeNext(req.query.next);
    // Ties the AuthnRequest to this browser: the ACS accepts its answer only with this cookie.
    const nonce = saml.browserNonce(req);
    const c = saml.browserCookie;
    res.cookie(c.name, nonce, { path: c.path, httpOnly: true, secure: c.secure, sameSite: c.sameSite, maxAge: c.maxAgeMs });
    // additionalParams is passport-saml's option: it carries RelayState to the IdP.
    const options = { session: false, additionalParams: relayState ? { RelayState: relayState } : {} } as AuthenticateOptions;
    saml.startFor(nonce, () => passport.authenticate('saml', options)(req, res, next));
  });

  // The IdP's form POST. Its own size limit: the hub's 32 kB would cut real responses, and
  // anything larger than a real response is refused before it is buffered.
  const body = express.urlencoded({ extended: false, limit: MAX_SAML_RESPONSE_BASE64 * 2, parameterLimit: 10 });
  router.post(
    SAML_PATHS.acs,
    body,
    (req: Request, res: Response, next: NextFunction) => {
      const form = (req.body ?? {}) as Record<string, unknown>;
      const shape = checkSamlResponseShape(form.SAMLResponse);
      if (!shape.ok) return refuse(req, res, 400, shape.reason, 'That sign-in response was not understood. Please start again from the sign-in page.');
      res.locals.samlXml = shape.xml;
      const sha1 = signatureAlgorithms(shape.xml).filter(isSha1);
      if (sha1.length) {
        if (!allowSha1) return refuse(req, res, 403, `SHA-1 signature or digest (${[...new Set(sha1)].join(', ')}); set samlAllowSha1 to accept it`);
        log.warn({ part: 'saml', algorithms: [...new Set(sha1)] }, 'accepted a SAML response signed with SHA-1 (samlAllowSha1)');
      }
      passport.authenticate('saml', { session: false }, (err: unknown, user: UserRecord | false, info: unknown) => {
        if (err instanceof IdentityConflict) {
          // The name is someone else's here: a clear page, and the account is untouched (logged by IdentityService).
          const html = views.render('identity-conflict.njk', { message: err.userMessage, method: 'SAML', user: null, csrfToken: '' });
          res.status(409).set(PAGE_HEADERS).send(html);
          return;
        }
        if (err || !user) {
          const status = err instanceof HubError && err.status === 503 ? 503 : 403;
          const detail = err instanceof HubError ? (err.detail ?? err.message) : err instanceof Error ? err.message : 'no user';
          return refuse(req, res, status, detail, err instanceof SamlRefused || err instanceof HubError ? err.userMessage : undefined);
        }
        // passport regenerates the session: nothing from before sign-in survives.
        req.login(user, (loginErr: unknown) => {
          if (loginErr) return next(loginErr);
          req.session.saml = info as SamlSessionInfo;
          let target = '/hub/home';
          try {
            target = landing(user, form.RelayState);
          } catch {
            // RelayState pointing at another user's server: land at home instead.
          }
          log.info({ part: 'saml', user: user.name, roles: user.roles, ip: req.ip }, 'signed in with SAML');
          res.redirect(303, target);
        });
      })(req, res, next);
    },
  );
  const acsErrors: ErrorRequestHandler = (err: { type?: string; message?: string }, req, res, next) => {
    if (req.path !== SAML_PATHS.acs) return next(err);
    if (err?.type === 'entity.too.large') return refuse(req, res, 400, 'request body too large');
    if (err?.type === 'entity.parse.failed' || err?.type === 'parameters.too.many' || err?.type === 'encoding.unsupported') return refuse(req, res, 400, `unreadable body: ${err.type}`);
    next(err);
  };
  router.use(acsErrors);

  // The IdP's answer to our LogoutRequest (redirect or POST binding). Local sign-out already
  // happened, so whatever the answer says, the user lands on the signed-out page; it is only logged.
  const sloResponse = (req: Request, res: Response, next: NextFunction): void => {
    const form = (req.method === 'POST' ? req.body : req.query) as Record<string, unknown>;
    // (A query's message was bounded and test-inflated above.)
    if (typeof form.SAMLResponse !== 'string' || form.SAMLResponse.length > MAX_SAML_RESPONSE_BASE64) {
      res.redirect(303, '/hub/logout');
      return;
    }
    saml
      .service()
      .then((service) =>
        req.method === 'POST'
          ? service.validatePostResponseAsync(form as Record<string, string>)
          : service.validateRedirectAsync(form as Record<string, string>, req.originalUrl.split('?')[1] ?? ''),
      )
      .then(
        () => {
          log.info({ part: 'saml' }, 'IdP confirmed single logout');
          res.redirect(303, '/hub/logout');
        },
        (err: Error) => {
          log.warn({ part: 'saml', reason: err.message }, 'IdP logout response not accepted');
          res.redirect(303, '/hub/logout');
        },
      )
      .catch(next);
  };
  router.get(SAML_PATHS.slo, sloResponse);
  router.post(SAML_PATHS.slo, body, sloResponse);
  return router;
}

/** The IdP logout URL for a user who signs out, or null (local sign-out only). */
export async function samlLogoutUrl(saml: SamlAuthenticator | undefined, req: Request, log: Logger): Promise<string | null> {
  // Whoever signed in with SAML this session (a linked local account too) has its NameID here.
  if (!saml || !req.session?.saml) return null;
  try {
    return await saml.logoutUrl(req.session?.saml);
  } catch (err) {
    log.warn({ part: 'saml', err: (err as Error).message }, 'single logout unavailable; signed out here only');
    return null;
  }
}

export { SamlRefused };
