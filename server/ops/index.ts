export { HubMetrics, METRIC_PREFIX, type MetricsSources, type SpawnOutcome, type CullKind } from './metrics.js';
export { countStoreErrors } from './store-errors.js';
export { RequestDrain } from './drain.js';
export { healthRoutes, metricsRoutes, requireAdminSession, type ReadinessChecks } from './routes.js';
