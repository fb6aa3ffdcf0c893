import type http from 'node:http';
import { Router, type Request, type Response } from 'express';
import type nunjucks from 'nunjucks';
import { Forbidden, BadRequest } from '../errors.js';
import { sendPage } from './render.js';
import type { UserRecord } from '../store/repos.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from './context.js';
import { safeNext } from './safe-redirect.js';
import { openServerUrl } from './server-cookie-issuer.js';
import { landingFor } from './auth-routes.js';
import { homeCourses } from '../courses/index.js';
import { refusedGitPullUrl } from '../proxy/gitpull-guard.js';

/** Home, start/stop, the progress page and /hub/user-redirect. */
export function serverRoutes(deps: WebDeps): Router {
  const router = Router();
  const render = renderer(deps);
  const pages = requireUser(false);

  router.get('/hub/', (_req, res) => res.redirect(302, '/hub/home'));

  router.get(
    '/hub/home',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const profiles = await deps.manager.profilesFor(user);
      const { state, reason } = await deps.manager.state(user);
      const courseHome = await homeCourses(deps.courses.service, user);
      render(req, res, 'home.njk', { status: state, reason, defaultUrl: deps.config.defaultUrl, profiles, courseHome });
    }),
  );

  const spawn = asyncRoute(async (req, res) => {
    // A course link clicked while the hub restarts must not start (and so replace) a server that kept running.
    if (!deps.manager.ready) return hubStartingPage(deps.views, res);
    const user = currentUser(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const rawNext = req.method === 'POST' && body.next !== undefined ? body.next : req.query.next;
    const next = rawNext === undefined || rawNext === '' ? `/hub/user-redirect${deps.config.defaultUrl}` : landingFor(user, rawNext);
    // Only a profile name is read from the user (form or query), and only a configured one is
    // accepted (ServerManager.start refuses any other, and one this user's projects don't offer); image, volumes and environment come from
    // the admin's configuration alone.
    const profile = profileParam(req.method === 'POST' ? body.profile : req.query.profile);
    const profiles = await deps.manager.profilesFor(user);
    if (profile === undefined && req.method === 'GET' && profiles.length > 1 && (await deps.manager.status(user)) === 'stopped') {
      return render(req, res, 'spawn-options.njk', { profiles, next: rawNext === undefined ? '' : next });
    }
    const status = await deps.manager.start(user, profile === undefined ? {} : { profile });
    if (status === 'running') return res.redirect(303, next);
    res.redirect(303, `/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent(next)}`);
  });
  // GET starts too, as in JupyterHub: course links and "server not running" pages are plain links.
  router.get('/hub/spawn', pages, spawn);
  router.post('/hub/spawn', pages, spawn);

  router.get('/hub/spawn-pending/:name', pages, (req, res) => {
    const user = ownUser(req, String(req.params.name));
    render(req, res, 'spawn-pending.njk', { user, next: safeNext(req.query.next) ?? `/hub/user-redirect${deps.config.defaultUrl}` });
  });

  router.post(
    '/hub/stop',
    pages,
    asyncRoute(async (req, res) => {
      await deps.manager.stop(currentUser(req));
      res.redirect(303, '/hub/home');
    }),
  );

  // /hub/user-redirect/PATH -> /user/ME/PATH (nbgitpuller and course links use it).
  router.use(
    '/hub/user-redirect',
    asyncRoute(async (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new BadRequest('Only GET is supported here.');
      if (!req.user) return res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`);
      if (!deps.manager.ready) return hubStartingPage(deps.views, res);
      const user = req.user;
      const target = safeNext(`/user/${user.escapedName}${req.url.startsWith('/') ? req.url : '/' + req.url}`);
      if (!target) throw new BadRequest('That address is not valid.');
      // Refused before a server starts for it; the proxy refuses the same on /user/NAME/git-pull.
      const gitPull = refusedGitPullUrl(target, user.escapedName);
      if (gitPull) throw new BadRequest(gitPull);
      const status = await deps.manager.start(user);
      if (status === 'running') return res.redirect(302, await openServerUrl(deps, req, res, user, target));
      res.redirect(302, `/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent(req.originalUrl)}`);
    }),
  );
  return router;
}

/** Seconds a browser waits before asking a starting hub again. */
const HUB_STARTING_RETRY_S = 5;

/**
 * "The hub is starting, your server is safe" (503, Retry-After, no Start button): what /user/,
 * /hub/spawn and /hub/user-redirect answer until the hub has found the servers that kept running.
 */
export function hubStartingPage(views: nunjucks.Environment, res: http.ServerResponse): void {
  res.setHeader('retry-after', String(HUB_STARTING_RETRY_S));
  sendPage(views, res, 503, 'not-running.njk', { hubStarting: true, retryAfterS: HUB_STARTING_RETRY_S, user: null });
}

/** A profile name from a form or query: one plain string, or nothing. */
function profileParam(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new BadRequest('Choose one kind of server.');
  return value;
}

/** The signed-in user, if the URL names them. */
export function ownUser(req: Request, escapedName: string): UserRecord {
  const user = currentUser(req);
  if (user.escapedName !== escapedName) throw new Forbidden("This is someone else's server.");
  return user;
}

export type { Response };
