import { Router, type Request, type Response } from 'express';
import { parse as parseCookies } from 'cookie';
import { Forbidden } from '../errors.js';
import { SESSION_COOKIE } from '../auth/server-cookie.js';
import type { UserRecord } from '../store/repos.js';
import { asyncRoute, renderer, type WebDeps } from './context.js';
import { safeNext } from './safe-redirect.js';
import { clearServerCookie, isSecureRequest } from './server-cookie-issuer.js';
import { DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_MS, DEVICE_COOKIE_PATH, throttleName } from '../auth/login-throttle.js';
import type { Authenticator } from '../auth/index.js';
import { isAnonymousName } from '../names.js';
import { TRY_ENDED } from './try-shared.js';

/** The sign-in methods (built by createHub): choices on the login page, single logout. */
export interface AuthExtras {
  authenticators?: readonly Authenticator[];
}

/**
 * Where to send a user who just signed in (or was already): their own server goes through
 * /hub/user-redirect (which starts it if needed and hands out its cookie); another user's
 * server is refused; anything else must pass safeNext.
 */
export function landingFor(user: UserRecord, rawNext: unknown): string {
  const next = safeNext(rawNext) ?? '/hub/home';
  if (!next.startsWith('/user/')) return next;
  const rest = next.slice('/user/'.length);
  const slash = rest.indexOf('/');
  const owner = slash === -1 ? rest : rest.slice(0, slash);
  if (owner !== user.escapedName) throw new Forbidden("This is someone else's server.", `user ${user.name} asked for /user/${owner}/`);
  return '/hub/user-redirect' + (slash === -1 ? '/' : rest.slice(slash));
}

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

export function authRoutes(deps: WebDeps, extras: AuthExtras = {}): Router {
  const router = Router();
  const baseRender = renderer(deps);
  // The login page offers SAML (when configured) above the local form.
  const choice = extras.authenticators?.find((a) => a.loginChoice)?.loginChoice;
  const samlButton = choice ? { label: choice.label } : null;
  const render: typeof baseRender = (req, res, template, ctx = {}, status) =>
    baseRender(req, res, template, template === 'login.njk' ? { saml: samlButton, ...ctx } : ctx, status);

  router.get(
    '/hub/login',
    asyncRoute(async (req, res) => {
      if (req.user) return res.redirect(303, landingFor(req.user, req.query.next));
      // The form's XSRF token lives in the session: store it before the form is shown, so a hub
      // that can't write (disk full, store down) says so now, not "form expired" after the POST.
      deps.csrfToken(req);
      await new Promise<void>((resolve, reject) => req.session.save((err: unknown) => (err ? reject(err as Error) : resolve())));
      render(req, res, 'login.njk', { next: safeNext(req.query.next) ?? '' });
    }),
  );

  router.post(
    '/hub/login',
    asyncRoute(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const username = typeof body.username === 'string' ? body.username.slice(0, 256) : '';
      const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
      const ip = clientIp(req);
      const next = safeNext(req.query.next) ?? '';
      // Failures are counted per address (the store keeps them for every hub process), except
      // in a browser where this user signed in before: there, per browser (see LoginThrottle).
      const device = deps.throttle.knownDevice(parseCookies(req.headers.cookie ?? '')[DEVICE_COOKIE], username);
      // Only names of real accounts are logged as typed.
      const logName = async (): Promise<string> => ((await deps.users.get(throttleName(username)).catch(() => null)) ? throttleName(username) : deps.throttle.unknownNameForLog(username));
      if (await deps.throttle.isBlocked(ip, username, device)) {
        deps.log.warn({ ip, username: await logName() }, 'sign-in refused: too many failures');
        return render(req, res, 'login.njk', { next, username, message: 'Too many failed attempts. Please wait 15 minutes and try again.' }, 429);
      }
      const user = await deps.users.verifyLocal(username, password);
      if (!user) {
        await deps.throttle.recordFailure(ip, username, device);
        deps.log.warn({ ip, username: await logName() }, 'sign-in failed: wrong username or password');
        return render(req, res, 'login.njk', { next, username, message: 'Wrong username or password.' }, 401);
      }
      const deviceCookie = await deps.throttle.succeeded(ip, username, device);
      res.cookie(DEVICE_COOKIE, deviceCookie, { path: DEVICE_COOKIE_PATH, httpOnly: true, sameSite: 'strict', secure: isSecureRequest(deps.config, req), maxAge: DEVICE_COOKIE_MAX_AGE_MS });
      if (await deps.needsSecondFactor?.(user)) {
        // Not signed in yet: the code page (account-routes) finishes the sign-in.
        req.session.totpPending = { name: user.name, next, at: Date.now() };
        return res.redirect(303, '/hub/login/totp');
      }
      await logIn(req, user);
      deps.log.info({ user: user.name, ip }, 'signed in');
      res.redirect(303, landingFor(user, next));
    }),
  );

  router.get('/hub/logout', (req, res) => render(req, res, 'logout.njk'));

  router.post(
    '/hub/logout',
    asyncRoute(async (req, res) => {
      const user = req.user;
      const sid = req.sessionID;
      // Ask the IdP to end its session too (single logout), if it offers that; decided before
      // the session (which holds the SAML NameID and SessionIndex) is destroyed.
      let idpLogout: string | null = null;
      for (const a of extras.authenticators ?? []) idpLogout ??= (await a.signOutUrl?.(req)) ?? null;
      await new Promise<void>((resolve, reject) => req.session.destroy((err: unknown) => (err ? reject(err) : resolve())));
      res.clearCookie(SESSION_COOKIE, { path: '/hub/' });
      if (user) {
        clearServerCookie(deps.config, req, res, user);
        await deps.onSignedOut(sid, user);
        deps.log.info({ user: user.name }, 'signed out');
      }
      req.user = undefined;
      // A page that goes on to the IdP, not a redirect: a form POST redirected to another origin
      // is blocked by our own CSP (form-action 'self'), which would leave the IdP session alive.
      if (idpLogout) return render(req, res, 'saml-logout.njk', { user: null, csrfToken: '', idpLogout });
      // A visitor's workspace is gone with the sign-out: say so, never "your server keeps running".
      if (user && isAnonymousName(user.name)) return res.redirect(303, TRY_ENDED);
      render(req, res, 'logout.njk', { user: null, csrfToken: '' });
    }),
  );
  return router;
}

function logIn(req: Request, user: UserRecord): Promise<void> {
  // passport regenerates the session here, so a session id seen before sign-in is worthless after.
  return new Promise((resolve, reject) => req.login(user, (err: unknown) => (err ? reject(err) : resolve())));
}

export type { Response };
