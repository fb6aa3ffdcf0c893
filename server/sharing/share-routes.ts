import { Router, type Request } from 'express';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from '../web/context.js';
import { wantsJson } from '../web/render.js';
import { AUDIENCES, type ShareService } from './share-service.js';
import { ShareNeedsSignIn } from './errors.js';
import type { ShareRecord } from './share-repo.js';

const when = (ms: number | undefined): string => (ms ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : '');

/**
 * Sharing on the hub's origin: /hub/share/ID (who may see it is decided here, then a signed
 * view URL on the share origin), the owner's list of shares, making and revoking them, and the
 * dashboard's "view this student's copy".
 */
export function shareRoutes(deps: WebDeps, shares: ShareService): Router {
  const router = Router({ caseSensitive: true });
  const render = renderer(deps);
  const signedIn = requireUser(false);
  const hubBase = (req: Request): string => deps.config.publicUrl ?? `${req.protocol}://${req.get('host') ?? ''}`;
  const linkOf = (req: Request, rec: ShareRecord): string => `${hubBase(req)}/hub/share/${rec.id}`;

  router.get(
    '/hub/share/:id',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      try {
        const url = await shares.open(req.user ?? null, id);
        res.set({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).redirect(303, url);
      } catch (err) {
        // Signed out (or a "Try it" visitor): through sign-in (SSO) and back to this link.
        if (err instanceof ShareNeedsSignIn && !req.user) return res.redirect(302, `/hub/login?next=${encodeURIComponent(`/hub/share/${id}`)}`);
        throw err;
      }
    }),
  );

  router.get(
    '/hub/shares',
    signedIn,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const mine = (await shares.listOf(user)).map((s) => ({ ...s, link: linkOf(req, s), createdIso: when(s.createdAt), revokedIso: when(s.revokedAt) }));
      const shareable = await shares.shareable(user);
      const preset = { course: typeof req.query.course === 'string' ? req.query.course : '', path: typeof req.query.path === 'string' ? req.query.path : '' };
      render(req, res, 'shares.njk', { shares: mine, shareable, audiences: AUDIENCES, available: shares.available, preset, notice: typeof req.query.notice === 'string' ? req.query.notice.slice(0, 300) : undefined });
    }),
  );

  router.post(
    '/hub/shares',
    signedIn,
    asyncRoute(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      // The form's one select says "COURSE/PATH"; the JSON API may send them apart.
      const pick = typeof body.notebook === 'string' ? body.notebook : '';
      const slash = pick.indexOf('/');
      const input = slash > 0 ? { course: pick.slice(0, slash), path: pick.slice(slash + 1), audience: body.audience } : body;
      const rec = await shares.create(currentUser(req), input);
      if (wantsJson(req)) return void res.status(201).json({ id: rec.id, link: linkOf(req, rec), title: rec.title });
      res.redirect(303, `/hub/shares?notice=${encodeURIComponent(`Shared ${rec.course}/${rec.path}. Copy its link below.`)}`);
    }),
  );

  router.post(
    '/hub/shares/:id/revoke',
    signedIn,
    asyncRoute(async (req, res) => {
      const rec = await shares.revoke(currentUser(req), String(req.params.id));
      if (wantsJson(req)) return void res.json({ id: rec.id, revoked: true });
      res.redirect(303, `/hub/shares?notice=${encodeURIComponent(`The link to ${rec.course}/${rec.path} is revoked: it shows nothing any more.`)}`);
    }),
  );

  router.post(
    '/hub/courses/:code/students/:name/view',
    signedIn,
    asyncRoute(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const rec = await shares.viewCopy(currentUser(req), String(req.params.code), String(req.params.name), body.path, req.ip ?? req.socket.remoteAddress ?? '');
      if (wantsJson(req)) return void res.status(201).json({ id: rec.id, link: `/hub/share/${rec.id}` });
      render(req, res, 'share-opening.njk', { rec, link: `/hub/share/${rec.id}` });
    }),
  );

  return router;
}
