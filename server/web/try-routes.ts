import { Router, type Request, type Response } from 'express';
import rateLimit from 'express-rate-limit';
import { Forbidden, NotFound, TooManyRequests } from '../errors.js';
import { isAnonymousName } from '../names.js';
import type { UserRecord } from '../store/repos.js';
import { SAMPLES_FOLDER, type QueuePlace, type TrySession } from '../pool/index.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from './context.js';
import { PAGE_HEADERS } from './render.js';
import { openServerUrl } from './server-cookie-issuer.js';
import { TRY_ENDED, TRY_WORKSPACE_SUBPATH, sendWorkspaceZip, trySessionInfo, tryLifetime, workspaceState, type WorkspacePageUrls } from './try-shared.js';

declare module 'express-session' {
  interface SessionData {
    /** The visitor's ticket in the "Try it" waiting queue. */
    tryTicket?: string;
    /** Set once this browser got a workspace: after it is destroyed, its pages say so. */
    tryHad?: boolean;
  }
}

/** Where a visitor lands in their server. */
export const TRY_LANDING = `/hub/user-redirect/lab/tree/${SAMPLES_FOLDER}/index.ipynb`;
const WORKSPACE = '/hub/try/workspace';
const ENDED = TRY_ENDED;

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

function isAnonymous(user: UserRecord | undefined): user is UserRecord {
  return user !== undefined && user.source === 'anonymous' && isAnonymousName(user.name);
}

function logIn(req: Request, user: UserRecord): Promise<void> {
  // passport regenerates the session: the visitor's pre-"Try it" session id is worthless after.
  return new Promise((resolve, reject) => req.login(user, (err: unknown) => (err ? reject(err) : resolve())));
}

/**
 * /hub/try: anonymous visitors and the warm pool (issue 5). The page with the button; the
 * XSRF-protected POST that hands out a server (warm at once, on demand through the progress
 * page, or a 503 waiting page with the visitor's place in the queue); the workspace page around
 * JupyterLab with the countdown, the download and "End session"; the session's deadlines as
 * JSON for that page; the zip download; the "session ended" page; and pool counts for admins.
 */
export function tryRoutes(deps: WebDeps): Router {
  const router = Router();
  const render = renderer(deps);
  // The "Try it" form's answer goes on (303, then the sign-in handoff) to the visitor's own
  // origin, and Chromium applies form-action to every redirect of a form's navigation. In
  // subdomain mode contentOrigin('*') is the wildcard source of every user origin.
  const renderForm = (req: Request, res: Response, template: string, ctx: Record<string, unknown>, status = 200): void => {
    const csp = PAGE_HEADERS['content-security-policy'].replace("form-action 'self'", `form-action 'self' ${deps.origins.contentOrigin('*')}`);
    const html = deps.views.render(template, { user: req.user ?? null, csrfToken: deps.csrfToken(req), ...ctx });
    res.status(status).set({ ...PAGE_HEADERS, 'content-security-policy': csp }).send(html);
  };
  const { config } = deps;
  const pool = deps.tryIt.pool;
  const lifetime = tryLifetime(config);
  // How fast one address may take servers. Answers that hand out nothing (the waiting page, a
  // refusal) don't count: a visitor waiting in line must not use up their allowance.
  const starts = rateLimit({
    windowMs: config.tryStartsWindowS * 1000,
    limit: config.tryStartsPerAddress,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skipFailedRequests: true,
    handler: (_req, _res, next) => next(new TooManyRequests('You have started many workspaces in a short time. Please wait a while before starting another.')),
  });

  const activeSession = async (req: Request): Promise<{ user: UserRecord; session: TrySession } | null> => {
    const user = req.user;
    if (!isAnonymous(user)) return null;
    const session = await pool.session(user);
    return session ? { user, session } : null;
  };

  const waiting = (req: Request, res: Response, place: QueuePlace): void => {
    req.session.tryTicket = place.ticket;
    res.set('retry-after', String(config.tryRetryAfterS));
    renderForm(req, res, 'try-waiting.njk', { position: place.position, retryAfterS: config.tryRetryAfterS }, 503);
  };

  router.get(
    '/hub/try',
    asyncRoute(async (req, res) => {
      const active = await activeSession(req);
      const signedIn = req.user !== undefined && !isAnonymous(req.user);
      renderForm(req, res, 'try.njk', { enabled: pool.enabled, active: active !== null, signedIn, lifetime });
    }),
  );

  router.post(
    '/hub/try',
    starts,
    asyncRoute(async (req, res) => {
      if (!pool.enabled) throw new NotFound('"Try it" is not offered on this hub.');
      if (req.user && !isAnonymous(req.user)) return res.redirect(303, '/hub/home');
      if (await activeSession(req)) return res.redirect(303, WORKSPACE);
      const ip = clientIp(req);
      const held = await pool.heldBy(ip);
      if (held >= config.tryMaxPerAddress) {
        deps.log.warn({ ip, held }, 'try refused: address holds its maximum of workspaces');
        throw new TooManyRequests(`Your address already holds ${held} temporary workspace${held === 1 ? '' : 's'}, the most allowed. End one ("End session") before starting another.`);
      }
      // People who waited go first: with a queue, a newcomer lines up behind it.
      const ticket = req.session.tryTicket;
      const place = ticket !== undefined || (await pool.hasQueue()) ? await pool.queuePlace(ticket) : null;
      if (place && !place.available) return waiting(req, res, place);
      const got = await pool.claim(ip);
      if (!got) {
        deps.log.info({ ip }, 'try: every workspace is taken; visitor waits');
        return waiting(req, res, place ?? (await pool.queuePlace(undefined)));
      }
      await pool.leaveQueue(place?.ticket);
      await logIn(req, got.user);
      req.session.tryHad = true;
      if (got.warm) return res.redirect(303, WORKSPACE);
      res.redirect(303, `/hub/spawn-pending/${got.user.escapedName}?next=${encodeURIComponent(WORKSPACE)}`);
    }),
  );

  // The waiting page's script asks here for its place, and submits the form once it is served.
  router.get(
    '/hub/try/queue',
    asyncRoute(async (req, res) => {
      res.set('cache-control', 'no-store');
      if (await activeSession(req)) return void res.json({ position: 0, available: true, retryAfterS: config.tryRetryAfterS });
      const place = await pool.queuePlace(req.session.tryTicket);
      req.session.tryTicket = place.ticket;
      res.json({ position: place.position, available: place.available, retryAfterS: config.tryRetryAfterS });
    }),
  );

  router.get(
    WORKSPACE,
    asyncRoute(async (req, res) => {
      if (req.user && !isAnonymous(req.user)) return res.redirect(302, '/hub/home');
      const user = isAnonymous(req.user) ? req.user : undefined;
      const state = user ? await workspaceState(deps.tryIt, deps.manager, user) : 'none';
      if (!user || state === 'none') return res.redirect(302, req.user || req.session.tryHad ? ENDED : '/hub/try');
      if (state === 'starting') return res.redirect(302, `/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent(WORKSPACE)}`);
      if (state === 'failed') return res.redirect(302, ENDED);
      // On a user origin the page is served there, by the proxy, so JupyterLab's frame is
      // same-origin: framed cross-site, the browser would withhold its cookie and storage.
      if (deps.origins.isolated) return res.redirect(302, await openServerUrl(deps, req, res, user, `/user/${user.escapedName}/${TRY_WORKSPACE_SUBPATH}`));
      const urls: WorkspacePageUrls = { hub: '', landing: TRY_LANDING, sessionUrl: '/hub/try/session', downloadUrl: '/hub/try/download', endUrl: '/hub/logout' };
      const html = deps.views.render('try-workspace.njk', { user, csrfToken: deps.csrfToken(req), lifetime, warningS: config.tryWarningS, ...urls });
      res.status(200).set(PAGE_HEADERS).send(html);
    }),
  );

  router.get(
    '/hub/try/session',
    asyncRoute(async (req, res) => {
      res.set('cache-control', 'no-store');
      res.json(await trySessionInfo(deps.tryIt, config, isAnonymous(req.user) ? req.user : null));
    }),
  );

  router.get(
    '/hub/try/download',
    asyncRoute(async (req, res) => {
      await sendWorkspaceZip(deps.tryIt, deps.log, isAnonymous(req.user) ? req.user : null, req, res);
    }),
  );

  router.get(ENDED, (req, res) => {
    render(req, res, 'not-running.njk', { ended: true, user: null });
  });

  router.get(
    '/hub/api/pool',
    requireUser(true),
    asyncRoute(async (req, res) => {
      if (!currentUser(req).roles.includes('admin')) throw new Forbidden('Only admins can see the pool.');
      res.set('cache-control', 'no-store').json(await pool.status());
    }),
  );
  return router;
}
