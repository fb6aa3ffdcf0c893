import { Router, type Request } from 'express';
import { Forbidden, HubError } from '../errors.js';
import type { UserRecord } from '../store/repos.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from './context.js';

function requireAdmin(req: Request): UserRecord {
  const user = currentUser(req);
  if (!user.roles.includes('admin')) throw new Forbidden('This page is for admins.');
  return user;
}

/** /hub/admin: who has an account, whose server runs, and a form to add local accounts. */
export function adminRoutes(deps: WebDeps): Router {
  const router = Router();
  const render = renderer(deps);
  const pages = requireUser(false);

  const show = async (req: Request, res: Parameters<typeof render>[1], extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    requireAdmin(req);
    const names = await deps.users.list();
    const rows = [];
    for (const name of names) {
      const user = await deps.users.get(name);
      if (user) rows.push({ name: user.name, roles: user.roles.join(', '), source: user.source, status: await deps.manager.status(user) });
    }
    const pool = await deps.tryIt.pool.status();
    render(req, res, 'admin.njk', { rows, pool, ...extra }, status);
  };

  router.get('/hub/admin', pages, asyncRoute(async (req, res) => show(req, res)));

  router.post(
    '/hub/admin/users',
    pages,
    asyncRoute(async (req, res) => {
      requireAdmin(req);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const name = typeof body.username === 'string' ? body.username : '';
      const password = typeof body.password === 'string' ? body.password : '';
      const role = body.role === 'instructor' ? 'instructor' : 'student';
      if (password.length < 8) return show(req, res, { message: 'The password needs at least 8 characters.', username: name }, 400);
      try {
        const user = await deps.users.createLocal(name, password, [role]);
        await show(req, res, { notice: `Created ${user.name}.` }, 201);
      } catch (err) {
        if (err instanceof HubError && err.status < 500) return show(req, res, { message: err.userMessage, username: name }, err.status);
        throw err;
      }
    }),
  );
  return router;
}
