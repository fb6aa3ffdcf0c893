import { Router, type Request, type Response } from 'express';
import { BadRequest, Forbidden, HubError, NotFound } from '../errors.js';
import type { Actor } from '../admin/index.js';
import type { AuditFilter } from '../audit/index.js';
import type { UserRecord } from '../store/repos.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from './context.js';

declare module 'express-session' {
  interface SessionData {
    /** One line shown on the next admin page after an action succeeded (post-redirect-get). */
    adminNotice?: string;
  }
}

const LOG_LINES = 200;
const AUDIT_PAGE = 200;
const ROLES = ['admin', 'instructor', 'student'] as const;

/** A failed action, shown next to the form that caused it. */
interface FormError {
  form: string;
  message: string;
}

/**
 * One admin form's POST: load what it acts on (a miss is the error page), act (AdminService
 * records it in the audit log), then redirect (303) to `to` with `notice`. With `refused`, a
 * refusal (4xx) re-renders that page with the message next to `form` instead.
 */
interface FormAction<T> {
  load(req: Request): Promise<T>;
  refused?: { form: string; page(req: Request, res: Response, formError: FormError, status: number): Promise<void> };
  act(req: Request, actor: Actor, target: T): Promise<{ to: string; notice: string }>;
}

function requireAdmin(req: Request): UserRecord {
  const user = currentUser(req);
  if (!user.roles.includes('admin')) throw new Forbidden('This page is for admins.', `${user.name} is not an admin`);
  return user;
}

function actorOf(req: Request): Actor {
  return { name: requireAdmin(req).name, address: req.ip ?? req.socket.remoteAddress ?? '' };
}

function field(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v.slice(0, 1024) : '';
}

/** A form field sent once or several times (checkboxes). */
function fields(req: Request, name: string): string[] {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all.filter((x): x is string => typeof x === 'string').slice(0, 1000);
}

function query(req: Request, name: string): string {
  const v = req.query[name];
  return typeof v === 'string' ? v.slice(0, 200) : '';
}

/** "3 min", "2 h 5 min": ages and remaining times for people, not seconds. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} days`;
}

function when(at: number | undefined): string {
  return at === undefined ? '' : new Date(at).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

function auditFilter(req: Request): AuditFilter {
  const day = (s: string, end: boolean): number | undefined => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return undefined;
    const t = Date.parse(`${s}T00:00:00Z`);
    return Number.isNaN(t) ? undefined : end ? t + 24 * 3600 * 1000 - 1 : t;
  };
  const from = day(query(req, 'from'), false);
  const to = day(query(req, 'to'), true);
  return {
    ...(query(req, 'actor') ? { actor: query(req, 'actor') } : {}),
    ...(query(req, 'action') ? { action: query(req, 'action') } : {}),
    ...(query(req, 'target') ? { target: query(req, 'target') } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
  };
}

/**
 * /hub/admin: accounts (search, roles, disable, delete), every server (stop, logs, bulk
 * stops), the "Try it" pool and the audit log. Every form carries the XSRF token (checked by
 * the app) and every action goes through AdminService, which records it in the audit log.
 * Successful actions redirect (303) to a page with a notice; refused ones re-render the page
 * with the message next to the form that was sent.
 */
export function adminRoutes(deps: WebDeps): Router {
  const router = Router();
  const render = renderer(deps);
  const pages = requireUser(false);

  const page = (req: Request, res: Response, template: string, ctx: Record<string, unknown>, status = 200): void => {
    const notice = req.session?.adminNotice;
    if (notice) delete req.session.adminNotice;
    render(req, res, template, { notice, ...ctx }, status);
  };
  const done = (req: Request, res: Response, to: string, notice: string): void => {
    req.session.adminNotice = notice;
    res.redirect(303, to);
  };

  /** Run an action; a refusal (4xx) is shown on `again` next to `form`, anything else goes to the error page. */
  const attempt = async (form: string, again: (e: FormError, status: number) => Promise<void>, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof HubError && err.status < 500) {
        deps.log.warn({ part: 'admin', form, code: err.code, detail: err.detail }, err.userMessage);
        return again({ form, message: err.userMessage }, err.status);
      }
      throw err;
    }
  };

  const action = <T>(path: string, a: FormAction<T>): void => {
    router.post(
      path,
      pages,
      asyncRoute(async (req, res) => {
        const actor = actorOf(req);
        const target = await a.load(req);
        const run = async (): Promise<void> => {
          const { to, notice } = await a.act(req, actor, target);
          done(req, res, to, notice);
        };
        const { refused } = a;
        if (refused) await attempt(refused.form, (formError, status) => refused.page(req, res, formError, status), run);
        else await run();
      }),
    );
  };
  const account = (req: Request): Promise<UserRecord> => deps.admin.account(String(req.params.name));
  const nothing = (): Promise<null> => Promise.resolve(null);

  // Users
  const usersPage = async (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    requireAdmin(req);
    const q = query(req, 'q');
    const role = ROLES.find((r) => r === query(req, 'role')) ?? '';
    const rows = await deps.admin.listUsers(q, role);
    const pool = await deps.tryIt.pool.status();
    page(req, res, 'admin.njk', { tab: 'users', q, role, rows, pool, ...extra }, status);
  };

  router.get('/hub/admin', pages, asyncRoute(async (req, res) => usersPage(req, res)));
  router.get('/hub/admin/users', pages, (_req, res) => res.redirect(302, '/hub/admin'));

  router.post(
    '/hub/admin/users',
    pages,
    asyncRoute(async (req, res) => {
      const actor = actorOf(req);
      const name = field(req, 'username');
      const password = field(req, 'password');
      const role = field(req, 'role') === 'instructor' ? 'instructor' : 'student';
      await attempt('create',
        (formError, status) => usersPage(req, res, { formError, username: name }, status),
        async () => {
          if (password.length < 8) throw new BadRequest('The password needs at least 8 characters.');
          const user = await deps.users.createLocal(name, password, [role]);
          await deps.audit.record({ actor: actor.name, action: 'user.create', target: user.name, details: { role, source: 'local' }, address: actor.address });
          // 201 with the page (not a redirect): scripts that add accounts see it was made.
          await usersPage(req, res, { notice: `Created ${user.name}.` }, 201);
        },
      );
    }),
  );

  const userPage = async (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    requireAdmin(req);
    const user = await deps.admin.account(String(req.params.name));
    const row = await deps.admin.userRow(user);
    page(req, res, 'admin-user.njk', { tab: 'users', row, roleNames: ROLES, isSelf: user.name === req.user?.name, ...extra }, status);
  };

  router.get('/hub/admin/users/:name', pages, asyncRoute(async (req, res) => userPage(req, res)));

  const onUserPage = (form: string): FormAction<UserRecord>['refused'] => ({ form, page: (req, res, formError, status) => userPage(req, res, { formError }, status) });

  action('/hub/admin/users/:name/roles', {
    load: account,
    refused: onUserPage('roles'),
    act: async (req, actor, user) => {
      const updated = await deps.admin.setRoles(actor, user, fields(req, 'roles'));
      return { to: `/hub/admin/users/${user.escapedName}`, notice: `Roles of ${user.name}: ${updated.roles.join(', ')}.` };
    },
  });

  action('/hub/admin/users/:name/disable', {
    load: account,
    refused: onUserPage('disable'),
    act: async (_req, actor, user) => {
      await deps.admin.disable(actor, user);
      return { to: `/hub/admin/users/${user.escapedName}`, notice: `${user.name} is disabled: signed out everywhere, server stopped, sign-in refused.` };
    },
  });

  action('/hub/admin/users/:name/enable', {
    load: account,
    act: async (_req, actor, user) => {
      await deps.admin.enable(actor, user);
      return { to: `/hub/admin/users/${user.escapedName}`, notice: `${user.name} can sign in again.` };
    },
  });

  const deletePage = async (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    requireAdmin(req);
    const user = await deps.admin.account(String(req.params.name));
    page(req, res, 'admin-delete.njk', { tab: 'users', target: user, canRemoveData: deps.admin.canRemoveData, ...extra }, status);
  };

  router.get('/hub/admin/users/:name/delete', pages, asyncRoute(async (req, res) => deletePage(req, res)));

  action('/hub/admin/users/:name/delete', {
    load: account,
    refused: { form: 'delete', page: (req, res, formError, status) => deletePage(req, res, { formError, data: field(req, 'data') }, status) },
    act: async (req, actor, user) => {
      const data = field(req, 'data');
      if (data !== 'keep' && data !== 'remove') throw new BadRequest('Choose whether to keep or remove the user\'s files.');
      if (field(req, 'confirm').trim() !== user.name) throw new BadRequest(`Type the username (${user.name}) to confirm.`);
      const { homeRemoved } = await deps.admin.deleteUser(actor, user, data === 'keep');
      return { to: '/hub/admin', notice: data === 'keep' ? `Deleted ${user.name}; their files are kept.` : `Deleted ${user.name} and ${homeRemoved ? 'their files' : 'everything they had (there were no files)'}.` };
    },
  });

  // Servers
  const serversPage = async (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    requireAdmin(req);
    const now = Date.now();
    const rows = (await deps.admin.servers()).map((s) => ({
      ...s,
      age: duration(s.ageMs),
      last: s.lastActivity === undefined ? 'none yet' : `${duration(now - s.lastActivity)} ago`,
      started: when(s.startedAt),
    }));
    page(req, res, 'admin-servers.njk', { tab: 'servers', rows, idleStop: duration(deps.config.adminIdleStopS * 1000), ...extra }, status);
  };

  router.get('/hub/admin/servers', pages, asyncRoute(async (req, res) => serversPage(req, res)));

  action('/hub/admin/servers/stop', {
    load: nothing,
    refused: { form: 'stop', page: (req, res, formError, status) => serversPage(req, res, { formError }, status) },
    act: async (req, actor) => {
      const names = fields(req, 'names');
      if (!names.length) throw new BadRequest('Select at least one server to stop.');
      const stopped = await deps.admin.stopServers(actor, names);
      return { to: '/hub/admin/servers', notice: stopped.length === 1 ? `Stopped the server of ${stopped[0]}.` : `Stopped ${stopped.length} servers.` };
    },
  });

  action('/hub/admin/servers/stop-idle', {
    load: nothing,
    act: async (_req, actor) => {
      const stopped = await deps.admin.stopIdle(actor);
      return { to: '/hub/admin/servers', notice: `Stopped ${stopped.length} idle server${stopped.length === 1 ? '' : 's'}.` };
    },
  });

  router.get(
    '/hub/admin/servers/:name/logs',
    pages,
    asyncRoute(async (req, res) => {
      const actor = actorOf(req);
      const user = await deps.users.getByEscaped(String(req.params.name));
      if (!user) throw new NotFound('There is no such user.');
      const lines = await deps.admin.logs(actor, user, LOG_LINES);
      page(req, res, 'admin-logs.njk', { tab: 'servers', target: user, lines, noLogs: lines === null, max: LOG_LINES });
    }),
  );

  // The pool
  const poolPage = async (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    requireAdmin(req);
    const [status_, rows] = await Promise.all([deps.tryIt.pool.status(), deps.admin.pool()]);
    const view = rows.map((r) => ({ ...r, remaining: r.remainingMs === undefined ? '' : duration(r.remainingMs), claimed: when(r.claimedAt) }));
    page(req, res, 'admin-pool.njk', { tab: 'pool', pool: status_, rows: view, enabled: deps.tryIt.pool.enabled, ...extra }, status);
  };

  router.get('/hub/admin/pool', pages, asyncRoute(async (req, res) => poolPage(req, res)));

  action('/hub/admin/pool/end', {
    load: nothing,
    refused: { form: 'end', page: (req, res, formError, status) => poolPage(req, res, { formError }, status) },
    act: async (req, actor) => {
      const names = fields(req, 'names');
      if (!names.length) throw new BadRequest('Select at least one session to end.');
      const n = await deps.admin.endPoolSessions(actor, names);
      return { to: '/hub/admin/pool', notice: `Ended ${n} session${n === 1 ? '' : 's'}.` };
    },
  });

  action('/hub/admin/pool/refill', {
    load: nothing,
    act: async (_req, actor) => {
      await deps.admin.refillPool(actor);
      return { to: '/hub/admin/pool', notice: 'Refilling the pool.' };
    },
  });

  // The audit log
  router.get(
    '/hub/admin/audit',
    pages,
    asyncRoute(async (req, res) => {
      requireAdmin(req);
      const filter = auditFilter(req);
      const entries = (await deps.audit.list({ ...filter, limit: AUDIT_PAGE })).map((e) => ({ ...e, time: when(e.at), detailText: Object.entries(e.details).map(([k, v]) => `${k}: ${v}`).join(', ') }));
      const qs = new URLSearchParams(Object.entries({ actor: query(req, 'actor'), action: query(req, 'action'), target: query(req, 'target'), from: query(req, 'from'), to: query(req, 'to') }).filter(([, v]) => v)).toString();
      page(req, res, 'admin-audit.njk', { tab: 'audit', entries, f: { actor: query(req, 'actor'), action: query(req, 'action'), target: query(req, 'target'), from: query(req, 'from'), to: query(req, 'to') }, exportUrl: `/hub/admin/audit.csv${qs ? `?${qs}` : ''}`, max: AUDIT_PAGE });
    }),
  );

  router.get(
    '/hub/admin/audit.csv',
    pages,
    asyncRoute(async (req, res) => {
      const actor = actorOf(req);
      const filter = auditFilter(req);
      const csv = await deps.audit.csv(filter);
      await deps.audit.record({ actor: actor.name, action: 'audit.export', details: { rows: csv.split('\r\n').length - 2 }, address: actor.address });
      res
        .status(200)
        .set({ 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="oerhub-audit-${new Date().toISOString().slice(0, 10)}.csv"`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
        .send(csv);
    }),
  );
  return router;
}
