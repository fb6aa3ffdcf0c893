import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { BadRequest, Forbidden, HubError, isHubError } from '../errors.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from '../web/context.js';
import { isAnonymousName } from '../names.js';
import { SCOPES } from './scopes.js';
import type { TokenOwner } from './token-repo.js';

const Form = z.object({
  note: z.string().max(500).default(''),
  expires_in: z.enum(['0', '3600', '86400', '604800', '2592000', '31536000']).default('0'),
  scopes: z.string().max(2000).default(''),
  owner: z.string().max(100).default(''),
});

/**
 * /hub/token: make (shown once) and revoke your own API tokens; admins also make and revoke
 * tokens of the services in `apiServices`. Plain forms with the session's XSRF token.
 */
export function tokenPageRoutes(deps: WebDeps): Router {
  const router = Router({ caseSensitive: true });
  const render = renderer(deps);
  const pages = requireUser(false);

  const isAdmin = (req: Request): boolean => currentUser(req).roles.includes('admin');
  const ownerFrom = (req: Request, raw: string): TokenOwner => {
    const me = currentUser(req);
    if (!raw || raw === `user:${me.name}`) return { kind: 'user', name: me.name };
    const m = /^service:(.+)$/.exec(raw);
    if (!m || !isAdmin(req) || !deps.tokens.hasService(m[1])) throw new Forbidden('You can make and revoke tokens for yourself, and admins for the configured services.');
    return { kind: 'service', name: m[1] };
  };

  async function show(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> {
    const me = currentUser(req);
    const owners: TokenOwner[] = [{ kind: 'user', name: me.name }, ...(isAdmin(req) ? deps.tokens.serviceNames().map((name) => ({ kind: 'service' as const, name })) : [])];
    const groups = await Promise.all(
      owners.map(async (owner) => ({
        key: `${owner.kind}:${owner.name}`,
        label: owner.kind === 'user' ? 'Your tokens' : `Service ${owner.name}`,
        tokens: await Promise.all((await deps.tokens.list(owner)).map((t) => deps.tokens.model(t))),
      })),
    );
    render(req, res, 'token.njk', { groups, owners: groups.map((g) => ({ key: g.key, label: g.label })), scopes: Object.entries(SCOPES).map(([name, description]) => ({ name, description })), ...extra }, status);
  }

  router.get(
    '/hub/token',
    pages,
    asyncRoute(async (req, res) => {
      if (isAnonymousName(currentUser(req).name)) throw new Forbidden('Visitors of "Try it" cannot have API tokens.');
      await show(req, res);
    }),
  );

  router.post(
    '/hub/token',
    pages,
    asyncRoute(async (req, res) => {
      if (isAnonymousName(currentUser(req).name)) throw new Forbidden('Visitors of "Try it" cannot have API tokens.');
      const parsed = Form.safeParse(req.body);
      try {
        if (!parsed.success) throw new BadRequest('The form was not filled in as expected.');
        const owner = ownerFrom(req, parsed.data.owner);
        const scopes = parsed.data.scopes.split(/[\s,]+/).filter(Boolean);
        const { token, record } = await deps.tokens.issue(owner, { scopes, note: parsed.data.note, expiresInS: Number(parsed.data.expires_in) });
        deps.log.info({ part: 'api', tokenId: record.id, by: currentUser(req).name }, 'API token made on the token page');
        await show(req, res, { created: { token, id: record.id, owner: `${owner.kind}:${owner.name}` } });
      } catch (err) {
        if (!isHubError(err) || err.status >= 500) throw err;
        await show(req, res, { message: err.userMessage, note: parsed.success ? parsed.data.note : '', scopesText: parsed.success ? parsed.data.scopes : '' }, err.status);
      }
    }),
  );

  router.post(
    '/hub/token/revoke',
    pages,
    asyncRoute(async (req, res) => {
      const body = req.body as Record<string, unknown>;
      const id = typeof body.id === 'string' ? body.id : '';
      try {
        await deps.tokens.revoke(ownerFrom(req, typeof body.owner === 'string' ? body.owner : ''), id);
      } catch (err) {
        if (!(err instanceof HubError) || err.status >= 500) throw err;
        await show(req, res, { message: err.userMessage }, err.status);
        return;
      }
      await show(req, res, { notice: 'The token was revoked.' });
    }),
  );
  return router;
}
