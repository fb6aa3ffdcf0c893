import type { Request, Response, NextFunction, RequestHandler } from 'express';
import type nunjucks from 'nunjucks';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { UserService } from '../auth/users.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { ServerManager } from '../servers/server-manager.js';
import type { Store } from '../store/store.js';
import type { TryIt } from '../pool/index.js';
import type { SignInHandoff, UserOrigins } from '../proxy/index.js';
import type { TokenService } from '../api/tokens.js';
import type { AdminService } from '../admin/index.js';
import type { AuditLog } from '../audit/index.js';
import type { CoursesWeb } from '../courses/index.js';
import { NotSignedIn } from '../errors.js';
import { PAGE_HEADERS, type PageContext } from './render.js';

declare global {
  namespace Express {
    // passport's req.user is our user record
    interface User extends UserRecord {}
  }
}

/** Everything the web routes need, built once in createHub. */
export interface WebDeps {
  config: HubConfig;
  log: Logger;
  /** The state store, for parts that keep their own records (SAML request ids, replay guards). */
  store: Store;
  views: nunjucks.Environment;
  users: UserService;
  manager: ServerManager;
  throttle: LoginThrottle;
  cookieSecret: string;
  /** Called after a session is destroyed: closes its proxied WebSockets in every hub process. */
  onSignedOut(sid: string, user: UserRecord): Promise<void>;
  /** Whether a password sign-in needs a second step (TOTP) before the session is signed in. */
  needsSecondFactor?(user: UserRecord): Promise<boolean>;
  /** XSRF token for the current session (csrf-sync). */
  csrfToken(req: Request): string;
  /** Whether the store answers (health). */
  storeHealthy(): Promise<boolean>;
  /** "Try it": the warm pool of ephemeral servers and what its pages need. */
  tryIt: TryIt;
  /** Which origin serves each user server (issue 9). */
  origins: UserOrigins;
  /** One-time codes that hand a sign-in over to a user origin. */
  handoff: SignInHandoff;
  /** API tokens (server/api). */
  tokens: TokenService;
  /** Admin actions on accounts, servers and the pool; also says which accounts are disabled. */
  admin: AdminService;
  /** The audit log of admin actions. */
  audit: AuditLog;
  /** Courses: publishing, course links, the dashboard (issue 11). */
  courses: CoursesWeb;
}

export function renderer(deps: WebDeps) {
  return (req: Request, res: Response, template: string, ctx: PageContext = {}, status = 200): void => {
    const html = deps.views.render(template, { user: req.user ?? null, csrfToken: req.session ? deps.csrfToken(req) : '', ...ctx });
    res.status(status).set(PAGE_HEADERS).send(html);
  };
}

/** Pages: send anonymous visitors to the login page and back. API: 401 JSON. */
export function requireUser(api: boolean): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.user) return next();
    if (api) return next(new NotSignedIn());
    res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`);
  };
}

/** Wrap an async handler so a rejection reaches the error middleware. */
export function asyncRoute(fn: (req: Request, res: Response, next: NextFunction) => Promise<void>): RequestHandler {
  return (req, res, next) => {
    fn(req, res, next).catch(next);
  };
}

export function currentUser(req: Request): UserRecord {
  if (!req.user) throw new NotSignedIn();
  return req.user;
}
