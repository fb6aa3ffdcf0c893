import type { Request } from 'express';
import type { ServerSummary } from '../servers/server-manager.js';
import type { Role, UserRecord } from '../store/repos.js';
import { allows, type Grant } from './scopes.js';

/** JupyterHub's server model (the `servers['']` entry of a user). */
export interface ServerModel {
  name: string;
  ready: boolean;
  stopped: boolean;
  pending: 'spawn' | 'stop' | null;
  url: string;
  progress_url: string;
  started: string;
  last_activity: string | null;
  user_options: Record<string, string>;
}

/** Where a user's roles come from: granted by the hub, or said by the identity provider at the latest sign-in. */
export interface RoleSources {
  granted: readonly Role[];
  idp: readonly Role[];
}

const ROLE_ORDER: readonly Role[] = ['admin', 'instructor', 'student', 'anonymous'];
/** Roles in one fixed order, as `roles` is (an IdP lists them in any order). */
const inOrder = (roles: readonly Role[]): Role[] => ROLE_ORDER.filter((r) => roles.includes(r));

/** What the API knows of one user's server at one moment. */
export interface ServerView {
  phase: ServerSummary['phase'] | 'stopped';
  startedAt?: number;
  profile?: string;
  lastActivityMs?: number;
}

export const iso = (ms: number | undefined): string | null => (ms === undefined || !Number.isFinite(ms) || ms <= 0 ? null : new Date(ms).toISOString());

export function pendingOf(phase: ServerView['phase']): 'spawn' | 'stop' | null {
  return phase === 'starting' ? 'spawn' : phase === 'stopping' ? 'stop' : null;
}

/** Active in JupyterHub's sense: running or pending. Failed and stopped servers are not listed. */
export function isActive(phase: ServerView['phase']): boolean {
  return phase === 'starting' || phase === 'running' || phase === 'stopping';
}

export function serverModel(user: UserRecord, s: ServerView): ServerModel {
  return {
    name: '',
    ready: s.phase === 'running',
    stopped: !isActive(s.phase),
    pending: pendingOf(s.phase),
    url: `/user/${user.escapedName}/`,
    progress_url: `/hub/api/users/${user.escapedName}/server/progress`,
    started: iso(s.startedAt) ?? new Date(user.createdAt).toISOString(),
    last_activity: iso(s.lastActivityMs),
    user_options: s.profile ? { profile: s.profile } : {},
  };
}

/**
 * JupyterHub's user model, with the fields the grants allow for this user (JupyterHub's
 * vertical filtering): read:users:name gives name and kind, read:users the rest,
 * read:users:activity last_activity, read:servers the server fields. `roles` and `admin` are the
 * effective roles; `granted_roles` and `idp_roles` (oerhub's) say where they come from.
 */
export function userModel(user: UserRecord, s: ServerView, userActivityMs: number | undefined, grants: readonly Grant[], roles?: RoleSources): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: 'user', name: user.name };
  const lastActivity = iso(Math.max(s.lastActivityMs ?? 0, userActivityMs ?? 0));
  if (allows(grants, 'read:users', user.name)) {
    Object.assign(out, {
      admin: user.roles.includes('admin'),
      roles: [...user.roles],
      ...(roles ? { granted_roles: inOrder(roles.granted), idp_roles: inOrder(roles.idp) } : {}),
      groups: [],
      created: new Date(user.createdAt).toISOString(),
      last_activity: lastActivity,
    });
  } else if (allows(grants, 'read:users:activity', user.name)) {
    out.last_activity = lastActivity;
  }
  if (allows(grants, 'read:servers', user.name)) {
    out.server = s.phase === 'running' ? `/user/${user.escapedName}/` : null;
    out.pending = pendingOf(s.phase);
    out.servers = isActive(s.phase) ? { '': serverModel(user, s) } : {};
  }
  return out;
}

/** The request's own absolute URL with other query values (pagination links). */
export function withQuery(req: Request, values: Record<string, string>): string {
  const url = new URL(req.originalUrl, `${req.protocol}://${req.get('host') ?? 'localhost'}`);
  for (const [k, v] of Object.entries(values)) url.searchParams.set(k, v);
  return url.toString();
}
