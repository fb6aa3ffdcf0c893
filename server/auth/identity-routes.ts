import { Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { BadRequest, Forbidden } from '../errors.js';
import { asyncRoute, currentUser, requireUser } from '../web/context.js';
import type { IdentityService } from './identities.js';

const Link = z.object({
  method: z.enum(['saml', 'header']),
  issuer: z.string().min(1).max(1024),
  subject: z.string().min(1).max(1024),
});
const Grant = z.object({ roles: z.array(z.enum(['admin', 'instructor', 'student'])).max(3) });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new BadRequest(parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return parsed.data;
}

/**
 * Admin API for identities and roles (after the XSRF check, like /hub/api):
 * - GET  /hub/api/identity-conflicts: external sign-ins refused because their name was taken;
 * - POST /hub/api/users/:name/identities {method, issuer, subject}: link one to that account;
 * - PUT  /hub/api/users/:name/roles {roles}: the roles the hub grants (kept across IdP sign-ins).
 */
export function identityRoutes(identities: IdentityService, log: Logger): Router {
  const router = Router();
  const api = requireUser(true);
  const mustBeAdmin = (req: Parameters<typeof currentUser>[0]): string => {
    const me = currentUser(req);
    if (!me.roles.includes('admin')) throw new Forbidden('Only admins can change identities and roles.', `${me.name} is not an admin`);
    return me.name;
  };

  router.get(
    '/hub/api/identity-conflicts',
    api,
    asyncRoute(async (req, res) => {
      mustBeAdmin(req);
      res.json({ conflicts: await identities.conflicts() });
    }),
  );

  router.post(
    '/hub/api/users/:name/identities',
    api,
    asyncRoute(async (req, res) => {
      const by = mustBeAdmin(req);
      const identity = parse(Link, req.body);
      const name = String(req.params.name);
      await identities.linkAccount(identity, name);
      log.info({ part: 'identities', by, user: name, method: identity.method }, 'admin linked an identity');
      res.status(201).json({ name, identity });
    }),
  );

  router.put(
    '/hub/api/users/:name/roles',
    api,
    asyncRoute(async (req, res) => {
      const by = mustBeAdmin(req);
      const { roles } = parse(Grant, req.body);
      const user = await identities.grant(String(req.params.name), roles);
      log.info({ part: 'identities', by, user: user.name, roles: user.roles }, 'admin granted roles');
      res.json({ name: user.name, roles: user.roles });
    }),
  );
  return router;
}
