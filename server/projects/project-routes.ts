import { Router, type Request, type Response } from 'express';
import { isSecureRequest } from '../web/server-cookie-issuer.js';
import type { UserRecord } from '../store/repos.js';
import { BadRequest, Conflict } from '../errors.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from '../web/context.js';
import type { AccountService } from '../auth/account-service.js';
import type { ProjectService } from './project-service.js';

export interface ProjectRoutesDeps {
  web: WebDeps;
  projects: ProjectService;
  accounts: AccountService;
}

const field = (req: Request, name: string, max = 1024): string => {
  const v = ((req.body ?? {}) as Record<string, unknown>)[name];
  return typeof v === 'string' ? v.slice(0, max) : '';
};

const INVITE_COOKIE = 'oerhub-invite';
const INVITE_COOKIE_PATH = '/hub/invite';
// Long enough for a sign-in at the IdP, short enough not to linger on a shared computer.
const INVITE_COOKIE_MAX_MS = 30 * 60_000;

/** One cookie's value from the request (the hub has no cookie parser; only this route needs one). */
function cookieOf(req: Request, name: string): string {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,200}$/.test(v) ? v : '';
    }
  }
  return '';
}

const tokenOf = (req: Request): string => (typeof req.query.token === 'string' ? req.query.token.slice(0, 200) : '');

/** A username suggestion from an email address: its local part, as normalizeUsername would take it. */
function suggestName(email: string): string {
  return email.split('@')[0]!.toLowerCase().replace(/[^a-z0-9._-]/g, '').slice(0, 40);
}

function logIn(req: Request, user: UserRecord): Promise<void> {
  // passport regenerates the session: an id seen before the sign-in is worthless after it.
  return new Promise((resolve, reject) => req.login(user, (err: unknown) => (err ? reject(err) : resolve())));
}

/** /hub/projects (list, new, one project, members, close, archive) and /hub/invite (following an emailed link). */
export function projectRoutes({ web, projects, accounts }: ProjectRoutesDeps): Router {
  const router = Router({ caseSensitive: true });
  const render = renderer(web);
  const pages = requireUser(false);

  router.get(
    '/hub/projects',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const list = await projects.list(user);
      if (req.query.format === 'json') {
        const waiting = await projects.restartNeededFor(user);
        res.set('cache-control', 'no-store').json({ projects: list.filter((p) => p.state === 'open').map((p) => ({ number: p.number, name: p.name, unit: p.unit, restartNeeded: waiting.includes(p.number) })) });
        return;
      }
      render(req, res, 'projects/list.njk', { projects: list, canCreate: projects.isLibrarian(user) });
    }),
  );

  router.get('/hub/projects/new', pages, (req, res) => {
    if (!projects.isLibrarian(currentUser(req))) return render(req, res, 'error.njk', { status: 403, heading: 'Not allowed', message: 'Only admins and data librarians create projects.' }, 403);
    render(req, res, 'projects/new.njk', { units: web.config.projectUnits, profiles: web.config.projectImageProfiles, form: { capacityGb: '2' } });
  });

  router.post(
    '/hub/projects/new',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const body = (req.body ?? {}) as Record<string, unknown>;
      try {
        const input = projects.parseNew(body);
        const project = await projects.create(input, user);
        res.redirect(303, `/hub/projects/${project.number}`);
      } catch (err) {
        if (!(err instanceof BadRequest || err instanceof Conflict)) throw err;
        web.log.warn({ part: 'projects', user: user.name, err: err.userMessage }, 'project not created');
        render(req, res, 'projects/new.njk', { units: web.config.projectUnits, profiles: web.config.projectImageProfiles, form: body, message: err.userMessage }, err.status);
      }
    }),
  );

  router.get(
    '/hub/projects/:number',
    pages,
    asyncRoute(async (req, res) => {
      const view = await projects.view(String(req.params.number), currentUser(req));
      render(req, res, 'projects/project.njk', { ...view, notice: typeof req.query.notice === 'string' ? req.query.notice.slice(0, 40) : '' });
    }),
  );

  router.post(
    '/hub/projects/:number/invite',
    pages,
    asyncRoute(async (req, res) => {
      const number = String(req.params.number);
      await projects.invite(number, field(req, 'email', 254), currentUser(req));
      res.redirect(303, `/hub/projects/${number}?notice=invited`);
    }),
  );

  router.post(
    '/hub/projects/:number/revoke',
    pages,
    asyncRoute(async (req, res) => {
      const number = String(req.params.number);
      await projects.revoke(number, field(req, 'email', 254).toLowerCase(), currentUser(req));
      res.redirect(303, `/hub/projects/${number}?notice=revoked`);
    }),
  );

  router.post(
    '/hub/projects/:number/remove',
    pages,
    asyncRoute(async (req, res) => {
      const number = String(req.params.number);
      const name = field(req, 'name', 256);
      await projects.removeMember(number, name, currentUser(req), await web.users.get(name));
      res.redirect(303, `/hub/projects/${number}?notice=removed`);
    }),
  );

  // "Restart your server to see the project folder": stop, then start with the same profile;
  // the new start reads the membership (and clears the notice).
  router.post(
    '/hub/projects/:number/restart-server',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const number = String(req.params.number);
      await projects.visible(number, user);
      const running = (await web.manager.list()).find((s) => s.escapedName === user.escapedName);
      await web.manager.stop(user);
      await web.manager.start(user, running?.profile ? { profile: running.profile } : {});
      web.log.info({ part: 'projects', user: user.name, project: number, profile: running?.profile }, 'server restarted for a new project folder');
      res.redirect(303, `/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent(`/hub/projects/${number}`)}`);
    }),
  );

  router.post(
    '/hub/projects/:number/close',
    pages,
    asyncRoute(async (req, res) => {
      const number = String(req.params.number);
      await projects.close(number, currentUser(req));
      res.redirect(303, `/hub/projects/${number}?notice=closed`);
    }),
  );

  router.get(
    '/hub/projects/:number/archive',
    pages,
    asyncRoute(async (req, res) => {
      const file = await projects.archiveFile(String(req.params.number), currentUser(req));
      res.download(file.path, file.name, { headers: { 'cache-control': 'no-store', 'content-type': 'application/gzip' } });
    }),
  );

  // --- following an emailed link ---

  /** The invitation page for this token: the join button, the SSO button, or the password form. */
  const invitePage = async (req: Request, res: Response, token: string): Promise<void> => {
    const invite = await projects.inspect(token);
    const user = req.user;
    const ctx = { token, invite, sso: web.config.inviteUseSso, username: suggestName(invite.email) };
    if (user && projects.isOtherInvitee(invite, user)) {
      web.log.warn({ part: 'projects', user: user.name, project: invite.project }, 'invitation link opened while signed in as someone else');
      return render(req, res, 'projects/invite.njk', { ...ctx, wrongAccount: true }, 409);
    }
    render(req, res, 'projects/invite.njk', ctx);
  };

  router.get(
    '/hub/invite',
    asyncRoute(async (req, res) => invitePage(req, res, tokenOf(req))),
  );

  // inviteUseSso: the token waits in a cookie of our own (path /hub/invite) while the browser is
  // at the IdP, so it never travels in the RelayState, where the IdP would see and log it.
  router.get(
    '/hub/invite/sso',
    asyncRoute(async (req, res) => {
      const token = tokenOf(req);
      const invite = await projects.inspect(token);
      const maxAge = Math.max(1000, Math.min(invite.expiresAt - Date.now(), INVITE_COOKIE_MAX_MS));
      res.cookie(INVITE_COOKIE, token, { path: INVITE_COOKIE_PATH, httpOnly: true, sameSite: 'lax', secure: isSecureRequest(web.config, req), maxAge });
      const back = encodeURIComponent('/hub/invite/continue');
      res.redirect(303, web.config.samlEnabled ? `/hub/saml/login?next=${back}` : `/hub/login?next=${back}`);
    }),
  );

  // Back from the IdP, signed in: the same invitation page, now with "Join as NAME".
  router.get(
    '/hub/invite/continue',
    pages,
    asyncRoute(async (req, res) => {
      const token = cookieOf(req, INVITE_COOKIE);
      if (!token) throw new BadRequest('This browser has no invitation waiting (it may have taken longer than 30 minutes, or cookies are off). Open the link from your email again.');
      await invitePage(req, res, token);
    }),
  );

  // A new local account with a password the invitee chooses, then into the project.
  router.post(
    '/hub/invite',
    asyncRoute(async (req, res) => {
      const token = tokenOf(req);
      const invite = await projects.inspect(token);
      const rawName = field(req, 'username', 256);
      const password = field(req, 'password');
      const again = (message: string, status: number): void =>
        render(req, res, 'projects/invite.njk', { token, invite, sso: web.config.inviteUseSso, username: rawName, message }, status);
      if (web.config.inviteUseSso) return again('This site signs in through your institution: use the button below.', 400);
      let name: string;
      try {
        name = web.users.normalize(rawName);
        if (password !== field(req, 'confirm')) throw new BadRequest('The two passwords are not the same.');
        accounts.checkNew(password, { name, email: invite.email });
        if (await web.users.get(name)) throw new Conflict(`The username ${name} is taken. Choose another.`);
      } catch (err) {
        if (err instanceof BadRequest || err instanceof Conflict) return again(err.userMessage, err.status);
        throw err;
      }
      const { user, number } = await projects.redeem(token, async (taken) => {
        const created = await web.users.createLocal(name, password, ['student']);
        const withEmail = await web.users.update(created.name, { email: taken.email });
        await accounts.recordEmail(created.name, taken.email);
        const project = await projects.join(taken, withEmail);
        return { user: withEmail, number: project.number };
      });
      await logIn(req, user);
      web.log.info({ part: 'projects', user: user.name, project: number }, 'invited member set a password and signed in');
      res.redirect(303, `/hub/projects/${number}`);
    }),
  );

  // Someone already signed in (SSO, or an existing account) takes the invitation for that account.
  router.post(
    '/hub/invite/join',
    requireUser(false),
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const token = tokenOf(req);
      const invite = await projects.inspect(token);
      if (projects.isOtherInvitee(invite, user)) return render(req, res, 'projects/invite.njk', { token, invite, sso: web.config.inviteUseSso, wrongAccount: true }, 409);
      const project = await projects.redeem(token, (taken) => projects.join(taken, user));
      res.clearCookie(INVITE_COOKIE, { path: INVITE_COOKIE_PATH });
      web.log.info({ part: 'projects', user: user.name, source: user.source, project: project.number }, 'signed-in user joined a project from an invitation');
      res.redirect(303, `/hub/projects/${project.number}`);
    }),
  );

  return router;
}
