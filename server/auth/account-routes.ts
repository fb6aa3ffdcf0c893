import { Router, type Request, type RequestHandler } from 'express';
import { BadRequest, Forbidden } from '../errors.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from '../web/context.js';
import type { AccountService } from './account-service.js';
import type { TotpService } from './account-totp.js';
import { landingFor } from '../web/auth-routes.js';
import type { InviteRecord } from '../projects/project-repo.js';
import type { UserRecord } from '../store/repos.js';

/** One-time emailed links (kept by the projects part, which sends invitations the same way). */
export interface ResetLinks {
  inspect(token: string): Promise<InviteRecord>;
  redeem<T>(token: string, use: (link: InviteRecord) => Promise<T>): Promise<T>;
  sendReset(email: string, accountOf: (email: string) => Promise<UserRecord | null>): Promise<void>;
}

function logIn(req: Request, user: UserRecord): Promise<void> {
  return new Promise((resolve, reject) => req.login(user, (err: unknown) => (err ? reject(err) : resolve())));
}

declare module 'express-session' {
  interface SessionData {
    /** A password sign-in waiting for its TOTP code. */
    totpPending?: { name: string; next: string; at: number };
  }
}

const field = (req: Request, name: string): string => {
  const v = ((req.body ?? {}) as Record<string, unknown>)[name];
  return typeof v === 'string' ? v.slice(0, 1024) : '';
};

/** /hub/account: a local account's own settings (password). */
export function accountRoutes(deps: WebDeps, accounts: AccountService, links: ResetLinks, totp: TotpService): Router {
  const router = Router({ caseSensitive: true });
  const render = renderer(deps);
  const pages = requireUser(false);

  router.get(
    '/hub/account',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      render(req, res, 'account.njk', { changed: req.query.changed === '1', local: user.source === 'local', totpOn: await totp.isEnabled(user.name) });
    }),
  );

  // TOTP enrolment: a secret for the app, in force once a code from the app is confirmed.
  router.post(
    '/hub/account/totp',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      if (user.source !== 'local') throw new Forbidden('Accounts that sign in through your institution use its second factor.');
      const code = field(req, 'code').trim();
      if (field(req, 'action') === 'disable') {
        if (!(await deps.users.verifyLocal(user.name, field(req, 'current')))) return render(req, res, 'account.njk', { local: true, totpOn: true, message: 'The current password is not right. Nothing was changed.' }, 400);
        await totp.disable(user.name);
        deps.log.info({ part: 'account', user: user.name }, 'TOTP turned off');
        return res.redirect(303, '/hub/account');
      }
      if (!code) {
        const enrol = await totp.begin(user.name);
        return render(req, res, 'account.njk', { local: true, totpOn: false, enrol });
      }
      if (!(await totp.confirm(user.name, code))) return render(req, res, 'account.njk', { local: true, totpOn: false, message: 'That code is not right (or the setup took longer than 10 minutes). Start again.' }, 400);
      deps.log.info({ part: 'account', user: user.name }, 'TOTP turned on');
      res.redirect(303, '/hub/account');
    }),
  );

  router.get('/hub/login/totp', (req, res) => {
    if (!req.session?.totpPending) return res.redirect(302, '/hub/login');
    render(req, res, 'account-totp.njk', {});
  });
  router.post(
    '/hub/login/totp',
    asyncRoute(async (req, res) => {
      const pending = req.session?.totpPending;
      if (!pending || Date.now() - pending.at > 5 * 60_000) {
        if (req.session) delete req.session.totpPending;
        return res.redirect(303, '/hub/login');
      }
      const failures = await deps.store.increment(`totp-fail:${pending.name}`, 15 * 60_000).then((n) => n - 1);
      if (failures >= 5) {
        delete req.session.totpPending;
        deps.log.warn({ part: 'account', user: pending.name }, 'sign-in refused: too many wrong TOTP codes');
        return render(req, res, 'account-totp.njk', { message: 'Too many wrong codes. Please wait 15 minutes and sign in again.' }, 429);
      }
      const user = await deps.users.get(pending.name);
      if (!user || !(await totp.verify(user.name, field(req, 'code').trim()))) {
        deps.log.warn({ part: 'account', user: pending.name }, 'sign-in failed: wrong TOTP code');
        return render(req, res, 'account-totp.njk', { message: 'That code is not right. Try the newest one from your app.' }, 401);
      }
      await deps.store.delete(`totp-fail:${user.name}`);
      delete req.session.totpPending;
      await logIn(req, user);
      deps.log.info({ part: 'account', user: user.name }, 'signed in with password and TOTP');
      res.redirect(303, landingFor(user, pending.next));
    }),
  );

  router.post(
    '/hub/account/password',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      try {
        await accounts.changePassword(user, field(req, 'current'), field(req, 'password'), field(req, 'confirm'), req.sessionID);
      } catch (err) {
        if (!(err instanceof BadRequest || err instanceof Forbidden)) throw err;
        deps.log.warn({ part: 'account', user: user.name, reason: err.userMessage }, 'password not changed');
        return render(req, res, 'account.njk', { local: user.source === 'local', message: err.userMessage }, err.status);
      }
      res.redirect(303, '/hub/account?changed=1');
    }),
  );

  // Forgotten password: a one-time link by email, to the address the account was invited with.
  router.get('/hub/account/forgot', (req, res) => render(req, res, 'account-forgot.njk', {}));
  router.post(
    '/hub/account/forgot',
    asyncRoute(async (req, res) => {
      const ip = req.ip ?? 'unknown';
      // Mail costs: a few requests per address and per email in 15 minutes.
      const email = field(req, 'email').slice(0, 254);
      const [byIp, byEmail] = await Promise.all([deps.store.increment(`reset-ask:ip:${ip}`, 15 * 60_000), deps.store.increment(`reset-ask:email:${email.toLowerCase()}`, 15 * 60_000)]);
      if (byIp > 20 || byEmail > 3) {
        deps.log.warn({ part: 'account', ip }, 'password reset requests throttled');
        return render(req, res, 'account-forgot.njk', { message: 'Too many requests. Please wait 15 minutes and try again.' }, 429);
      }
      await links.sendReset(email, (e) => accounts.accountWithEmail(e));
      render(req, res, 'account-forgot.njk', { sent: true });
    }),
  );
  router.get(
    '/hub/account/reset',
    asyncRoute(async (req, res) => {
      const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 200) : '';
      const link = await links.inspect(token);
      if (link.kind !== 'reset') throw new BadRequest('This is not a password-reset link.');
      render(req, res, 'account-reset.njk', { token, name: link.user });
    }),
  );
  router.post(
    '/hub/account/reset',
    asyncRoute(async (req, res) => {
      const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 200) : '';
      const link = await links.inspect(token);
      if (link.kind !== 'reset' || !link.user) throw new BadRequest('This is not a password-reset link.');
      const user = await deps.users.get(link.user);
      if (!user) throw new BadRequest('That account no longer exists.');
      const password = field(req, 'password');
      try {
        if (password !== field(req, 'confirm')) throw new BadRequest('The two passwords are not the same.');
        accounts.checkNew(password, user);
      } catch (err) {
        if (!(err instanceof BadRequest)) throw err;
        return render(req, res, 'account-reset.njk', { token, name: user.name, message: err.userMessage }, 400);
      }
      await links.redeem(token, () => accounts.resetPassword(user, password, password));
      await logIn(req, user);
      res.redirect(303, '/hub/account?changed=1');
    }),
  );
  return router;
}
