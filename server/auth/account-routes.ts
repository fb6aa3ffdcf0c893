import { Router, type Request, type RequestHandler } from 'express';
import { BadRequest, Forbidden } from '../errors.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from '../web/context.js';
import type { AccountService } from './account-service.js';

declare module 'express-session' {
  interface SessionData {
    /** Set once the session is in its user's list (AccountService.noteSession). */
    accountNoted?: string;
  }
}

/**
 * Puts each signed-in session in its user's list, once, so a password change can end the
 * others. Runs on every hub page request after the session is loaded.
 */
export function noteSessions(accounts: AccountService, deps: WebDeps): RequestHandler {
  return (req, _res, next) => {
    const user = req.user;
    if (!user || !req.session || req.session.accountNoted === user.name) return next();
    accounts.noteSession(user.name, req.sessionID).then(
      () => {
        req.session.accountNoted = user.name;
        next();
      },
      (err: Error) => {
        deps.log.warn({ part: 'account', user: user.name, err: err.message }, 'could not record a session');
        next();
      },
    );
  };
}

const field = (req: Request, name: string): string => {
  const v = ((req.body ?? {}) as Record<string, unknown>)[name];
  return typeof v === 'string' ? v.slice(0, 1024) : '';
};

/** /hub/account: a local account's own settings (password). */
export function accountRoutes(deps: WebDeps, accounts: AccountService): Router {
  const router = Router({ caseSensitive: true });
  const render = renderer(deps);
  const pages = requireUser(false);

  router.get('/hub/account', pages, (req, res) => {
    render(req, res, 'account.njk', { changed: req.query.changed === '1', local: currentUser(req).source === 'local' });
  });

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
  return router;
}
