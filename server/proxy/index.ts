export { HubProxy, type ProxyPages, type HubProxyOptions } from './hub-proxy.js';
export { RouteTable, type Route } from './route-table.js';
export { SessionChecker, type SessionLookup, type SessionCheck } from './session-check.js';
export { ActivityTracker } from './activity.js';
export { parseUserPath, type UserPath } from './user-path.js';
export { UserOrigins, hostnameOf, type HostKind, type OriginMode } from './origins.js';
export { SignInHandoff, HANDOFF_PATH, type HandoffStore } from './handoff.js';
export { TryWorkspace, type ContentOriginPages, type ContentRequest, type TryWorkspaceDeps } from './try-workspace.js';
export { TokenAccess, type ProxyTokenVerifier } from './token-access.js';
