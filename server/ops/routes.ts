import { Router, type RequestHandler } from 'express';
import { Forbidden } from '../errors.js';
import { asyncRoute, currentUser, requireUser } from '../web/context.js';
import type { HubMetrics } from './metrics.js';

/** What readiness is made of; each answers fast (createHub wires them). */
export interface ReadinessChecks {
  /** Whether the state store answers (a bounded ping). */
  storeReachable(): Promise<boolean>;
  /** Whether the server manager has reconciled (the hub routes servers and takes starts). */
  managerReady(): boolean;
  /** Whether the hub is shutting down (draining). */
  draining(): boolean;
}

/**
 * /hub/health/live: the process answers (200 even while Redis or Docker are away, so nothing
 * restarts a healthy process for an outage a restart can't fix). /hub/health/ready: it can do
 * its work: store reachable, servers reconciled, not shutting down; 503 names what is not.
 * /hub/health: the store check it always was, for monitors set up before the split.
 * No session: load balancers and systemd ask without cookies.
 */
export function healthRoutes(checks: ReadinessChecks): Router {
  const router = Router({ caseSensitive: true });
  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('cache-control', 'no-store');
    next();
  };
  router.get('/hub/health/live', noStore, (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get(
    '/hub/health/ready',
    noStore,
    asyncRoute(async (_req, res) => {
      const store = (await checks.storeReachable()) ? 'ok' : 'unavailable';
      const servers = checks.managerReady() ? 'ok' : 'starting';
      const shutdown = checks.draining() ? 'draining' : 'no';
      const ok = store === 'ok' && servers === 'ok' && shutdown === 'no';
      if (!ok) res.setHeader('retry-after', '5');
      res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', store, servers, shutdown });
    }),
  );
  router.get(
    '/hub/health',
    noStore,
    asyncRoute(async (_req, res) => {
      const ok = await checks.storeReachable();
      res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', store: ok ? 'ok' : 'unavailable' });
    }),
  );
  return router;
}

/** The default guard of /hub/metrics: a signed-in admin's session (401 signed out, 403 for others). */
export function requireAdminSession(): RequestHandler[] {
  return [
    requireUser(true),
    (req, _res, next) => {
      next(currentUser(req).roles.includes('admin') ? undefined : new Forbidden('Metrics are for admins.'));
    },
  ];
}

/**
 * GET /hub/metrics in Prometheus' text format, behind `guard` (one parameter, so that a token
 * scope such as requireScopes('read:metrics') replaces the session check in one line).
 */
export function metricsRoutes(metrics: HubMetrics, guard: RequestHandler | RequestHandler[] = requireAdminSession()): Router {
  const router = Router({ caseSensitive: true });
  router.get(
    '/hub/metrics',
    guard,
    asyncRoute(async (_req, res) => {
      const { contentType, body } = await metrics.exposition();
      res.status(200).set({ 'content-type': contentType, 'cache-control': 'no-store' }).send(body);
    }),
  );
  return router;
}
