import { Router, type Request, type Response } from 'express';
import { Forbidden, HubError, NotFound, TooManyRequests } from '../errors.js';
import { isAnonymousName } from '../names.js';
import { readCookie } from '../auth/server-cookie.js';
import type { UserRecord } from '../store/repos.js';
import { SAMPLES_FOLDER, type QueuePlace, type TrySession } from '../pool/index.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from './context.js';
import { PAGE_HEADERS } from './render.js';
import { isSecureRequest, openServerUrl } from './server-cookie-issuer.js';
import { PREVIEW_NAME } from '../proxy/try-workspace.js';
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
// Set on the "session ended" page: the sign-out destroyed the session, and this is how the old
// workspace address still knows to say "your session ended" rather than offer a new start.
const ENDED_COOKIE = 'oerhub-try-ended';

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
  const renderForm = (req: Request, res: Response, template: string, ctx: Record<string, unknown>, status = 200, frameSrc?: string): void => {
    let csp = PAGE_HEADERS['content-security-policy'].replace("form-action 'self'", `form-action 'self' ${deps.origins.contentOrigin('*')}`);
    if (frameSrc) csp += `; frame-src ${frameSrc}`;
    const html = deps.views.render(template, { user: req.user ?? null, csrfToken: deps.csrfToken(req), ...ctx });
    res.status(status).set({ ...PAGE_HEADERS, 'content-security-policy': csp }).send(html);
  };
  const { config } = deps;
  const pool = deps.tryIt.pool;
  const lifetime = tryLifetime(config);
  // The workspace on the visitor's origin can show the rendered samples before their server runs.
  const rendersWhileStarting = (): boolean => deps.origins.isolated && deps.tryIt.rendersSamples();

  const activeSession = async (req: Request): Promise<{ user: UserRecord; session: TrySession } | null> => {
    const user = req.user;
    if (!isAnonymous(user)) return null;
    const session = await pool.session(user);
    return session ? { user, session } : null;
  };

  const endedPage = (req: Request, res: Response, status: number): void => {
    // Only a marker (no name, no id), for this browser session, on the try pages only.
    res.cookie(ENDED_COOKIE, '1', { path: '/hub/try', httpOnly: true, sameSite: 'lax', secure: isSecureRequest(config, req) });
    render(req, res, 'not-running.njk', { ended: true, user: null }, status);
  };

  const waiting = (req: Request, res: Response, place: QueuePlace): void => {
    req.session.tryTicket = place.ticket;
    res.set('retry-after', String(config.tryRetryAfterS));
    // Something to look at while in line: the rendered samples, from a content origin of their
    // own (never the hub's), framed here.
    const preview = deps.origins.isolated && deps.tryIt.rendersSamples() ? deps.origins.contentOrigin(PREVIEW_NAME) : undefined;
    const previewUrl = preview ? `${preview}/user/${PREVIEW_NAME}/oerhub/samples/index` : undefined;
    renderForm(req, res, 'try-waiting.njk', { position: place.position, retryAfterS: config.tryRetryAfterS, previewUrl }, 503, preview);
  };

  // Only a visitor who was turned away gets a place in line (and keeps the one they have).
  const turnAway = async (req: Request, res: Response, ip: string, place: QueuePlace): Promise<void> => {
    if (place.ticket) return waiting(req, res, place);
    const joined = await pool.joinQueue(ip);
    if (typeof joined === 'object') return waiting(req, res, joined);
    if (joined === 'address') {
      deps.log.warn({ ip }, 'try refused: address already waits with its maximum of places');
      throw new TooManyRequests(`Your address already waits for ${config.tryMaxPerAddress} temporary workspace${config.tryMaxPerAddress === 1 ? '' : 's'}, the most allowed. Please wait on the page you have open.`);
    }
    deps.log.warn({ ip }, 'try refused: the waiting line is full');
    throw new HubError('TRY_QUEUE_FULL', 503, 'Every temporary workspace is taken and the waiting line is full. Please come back in a few minutes.');
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
      // How fast one address may take servers, counted in the store; only hand-outs count, so a
      // visitor waiting in line does not use up their allowance.
      if (await pool.startsUsedUp(ip)) {
        deps.log.warn({ ip }, 'try refused: address took its maximum of workspaces for now');
        throw new TooManyRequests('You have started many workspaces in a short time. Please wait a while before starting another.');
      }
      // People who waited go first: a newcomer is served only if a server is left after them.
      const place = await pool.placeFor(req.session.tryTicket);
      if (!place.available) return turnAway(req, res, ip, place);
      const got = await pool.claim(ip);
      if (!got) {
        deps.log.info({ ip }, 'try: every workspace is taken; visitor waits');
        return turnAway(req, res, ip, place);
      }
      await pool.leaveQueue(place.ticket);
      req.session.tryTicket = undefined;
      await logIn(req, got.user);
      req.session.tryHad = true;
      // On a user origin the workspace shows the rendered samples at once, warm or not, and says
      // the visitor's own server is starting; with one origin the progress page does.
      if (got.warm || rendersWhileStarting()) return res.redirect(303, WORKSPACE);
      res.redirect(303, `/hub/spawn-pending/${got.user.escapedName}?next=${encodeURIComponent(WORKSPACE)}`);
    }),
  );

  // The waiting page's script asks here for its place, and submits the form once it is served.
  router.get(
    '/hub/try/queue',
    asyncRoute(async (req, res) => {
      res.set('cache-control', 'no-store');
      if (await activeSession(req)) return void res.json({ position: 0, available: true, retryAfterS: config.tryRetryAfterS });
      // Asking never queues anyone; a visitor not (or no longer) in line is told to send the
      // form, whose answer decides.
      const place = await pool.placeFor(req.session.tryTicket);
      if (!place.ticket) return void res.json({ position: 0, available: true, retryAfterS: config.tryRetryAfterS });
      res.json({ position: place.position, available: place.available, retryAfterS: config.tryRetryAfterS });
    }),
  );

  router.get(
    WORKSPACE,
    asyncRoute(async (req, res) => {
      if (req.user && !isAnonymous(req.user)) return res.redirect(302, '/hub/home');
      if (!req.user && !req.session.tryHad && readCookie(req.headers.cookie, ENDED_COOKIE) !== undefined) return endedPage(req, res, 410);
      const user = isAnonymous(req.user) ? req.user : undefined;
      const state = user ? await workspaceState(deps.tryIt, deps.manager, user) : 'none';
      if (!user || state === 'none') return res.redirect(302, req.user || req.session.tryHad ? ENDED : '/hub/try');
      if (state === 'starting' && !rendersWhileStarting()) return res.redirect(302, `/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent(WORKSPACE)}`);
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

  router.get(ENDED, (req, res) => endedPage(req, res, 200));

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
