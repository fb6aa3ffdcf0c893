import { Router } from 'express';
import { z } from 'zod';
import { BadRequest, Forbidden } from '../errors.js';
import { asyncRoute, currentUser, requireUser, type WebDeps } from '../web/context.js';
import { ownUser } from '../web/server-routes.js';

const NewUser = z.object({
  name: z.string().min(1).max(256),
  password: z.string().min(8).max(1024),
  roles: z.array(z.enum(['admin', 'instructor', 'student'])).default(['student']),
});

/**
 * /hub/api: JSON, shaped like JupyterHub's where it overlaps. Signed-in by the hub session;
 * unsafe methods need the X-CSRF-Token header (csrf-sync, checked by the app).
 */
export function apiRoutes(deps: WebDeps): Router {
  const router = Router();
  const api = requireUser(true);

  router.get(
    '/hub/api/user',
    api,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      res.json({ name: user.name, escaped_name: user.escapedName, roles: user.roles, server: await deps.manager.status(user), csrf_token: deps.csrfToken(req) });
    }),
  );

  router.post(
    '/hub/api/users/:name/server',
    api,
    asyncRoute(async (req, res) => {
      const user = ownUser(req, String(req.params.name));
      const status = await deps.manager.start(user);
      res.status(status === 'running' ? 201 : 202).json({ status, progress_url: `/hub/api/users/${user.escapedName}/server/progress` });
    }),
  );

  router.delete(
    '/hub/api/users/:name/server',
    api,
    asyncRoute(async (req, res) => {
      await deps.manager.stop(ownUser(req, String(req.params.name)));
      res.status(204).end();
    }),
  );

  // Server-sent events: every step of the start, replayed for late subscribers, then closed.
  router.get('/hub/api/users/:name/server/progress', api, (req, res) => {
    const user = ownUser(req, String(req.params.name));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no', // nginx: deliver each event at once
      connection: 'keep-alive',
    });
    res.flushHeaders();
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    let stop: () => void = () => undefined;
    const end = (): void => {
      clearInterval(heartbeat);
      stop();
    };
    stop = deps.manager.watch(user, (event) => {
      res.write(`data: ${JSON.stringify(event)}\n\n`);
      if (event.ready || event.failed) {
        end();
        res.end();
      }
    });
    req.on('close', end);
  });

  router.post(
    '/hub/api/users',
    api,
    asyncRoute(async (req, res) => {
      if (!currentUser(req).roles.includes('admin')) throw new Forbidden('Only admins can create users.');
      const parsed = NewUser.safeParse(req.body);
      if (!parsed.success) throw new BadRequest(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      const user = await deps.users.createLocal(parsed.data.name, parsed.data.password, parsed.data.roles);
      res.status(201).json({ name: user.name, escaped_name: user.escapedName, roles: user.roles });
    }),
  );
  return router;
}
