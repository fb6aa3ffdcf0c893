import type { Role } from '../store/repos.js';

/**
 * JupyterHub's scope names (docs: "Scopes in JupyterHub"), the subset oerhub has endpoints for.
 * A scope may carry a horizontal filter `!user=NAME` (or `!server=NAME/`, which oerhub, having
 * one server per user, reads as `!user=NAME`).
 */
export const SCOPES = {
  self: 'All your own resources (expands to the scopes below, filtered to !user=YOU).',
  'admin:users': 'Create, change and delete users, and everything users grants.',
  users: 'Read and change users (names, activity).',
  'list:users': 'List users (with read:users:name).',
  'read:users': 'Read users\' models (name, roles, admin, created, last activity).',
  'read:users:name': 'Read users\' names.',
  'read:users:activity': 'Read users\' last activity.',
  'users:activity': 'Record users\' activity (POST /users/NAME/activity).',
  'admin:servers': 'Start and stop servers, and everything servers grants.',
  servers: 'Start and stop servers, read their models.',
  'read:servers': 'Read server models (url, ready, pending, started, last activity).',
  'delete:servers': 'Stop servers.',
  'access:servers': 'Use servers through the proxy (/user/NAME/...) with the token.',
  tokens: 'Create, read and revoke tokens.',
  'read:tokens': 'Read token models (never the tokens).',
  'admin:services': 'Make tokens for the configured services.',
  'read:metrics': 'Read /hub/metrics.',
  'read:hub': 'Read /hub/api/info.',
} as const;

export type ScopeName = keyof typeof SCOPES;

/** What each scope includes (JupyterHub's scope hierarchy, cut to the scopes above). */
const INCLUDES: Partial<Record<ScopeName, readonly ScopeName[]>> = {
  'admin:users': ['users', 'list:users'],
  users: ['read:users', 'list:users', 'users:activity'],
  'read:users': ['read:users:name', 'read:users:activity'],
  'list:users': ['read:users:name'],
  'admin:servers': ['servers'],
  servers: ['read:servers', 'delete:servers'],
  tokens: ['read:tokens'],
};

/** The scopes `self` stands for, each filtered to the owner (JupyterHub's `user` role). */
const SELF: readonly ScopeName[] = ['users', 'servers', 'access:servers', 'tokens'];

/** Scopes a role grants. Anonymous "Try it" visitors get their own server only, never tokens. */
const ROLE_SCOPES: Record<Role, readonly string[]> = {
  admin: ['self', 'admin:users', 'admin:servers', 'access:servers', 'tokens', 'admin:services', 'read:metrics', 'read:hub'],
  instructor: ['self'],
  student: ['self'],
  anonymous: ['read:users!user', 'servers!user', 'access:servers!user'],
};

/** One expanded scope: a name and, when filtered, the one user it is limited to. */
export interface Grant {
  readonly scope: ScopeName;
  /** Limited to this user's resources; undefined: everyone's. */
  readonly user?: string;
}

export function isScopeName(s: string): s is ScopeName {
  return Object.prototype.hasOwnProperty.call(SCOPES, s);
}

/**
 * Parse a scope string (`read:users`, `servers!user=ana`, `access:servers!server=ana/`) or
 * return null when oerhub does not know it. `inherit` is handled by the caller.
 */
export function parseScope(text: string): { scope: ScopeName; user?: string } | null {
  const bang = text.indexOf('!');
  const base = bang < 0 ? text : text.slice(0, bang);
  if (!isScopeName(base)) return null;
  if (bang < 0) return { scope: base };
  const m = /^(user|server)=([^/!]+)\/?$/.exec(text.slice(bang + 1));
  if (!m) return null;
  return { scope: base, user: m[2] };
}

/** Every grant a list of scope strings means, with inclusions and `self` expanded. Unknown scopes grant nothing. */
export function expandScopes(scopes: readonly string[], owner: string): Grant[] {
  const out = new Map<string, Grant>();
  const add = (scope: ScopeName, user: string | undefined): void => {
    const key = `${scope}!${user ?? ''}`;
    if (out.has(key)) return;
    out.set(key, user === undefined ? { scope } : { scope, user });
    for (const sub of INCLUDES[scope] ?? []) add(sub, user);
  };
  for (const text of scopes) {
    if (text === 'self') {
      for (const s of SELF) add(s, owner);
      continue;
    }
    // `scope!user` without a name (role tables above): the owner.
    if (text.endsWith('!user')) {
      const base = text.slice(0, -'!user'.length);
      if (isScopeName(base)) add(base, owner);
      continue;
    }
    const parsed = parseScope(text);
    if (parsed) add(parsed.scope, parsed.user);
  }
  return [...out.values()];
}

/** The scopes an account's roles grant, as strings (role-less accounts: none). */
export function roleScopes(roles: readonly Role[]): string[] {
  return [...new Set(roles.flatMap((r) => ROLE_SCOPES[r] ?? []))];
}

/**
 * What a token may do: its own grants, cut to what its owner may do now. Read at every use, so
 * a token of a demoted admin loses admin at once.
 */
export function intersect(token: readonly Grant[], owner: readonly Grant[]): Grant[] {
  const out = new Map<string, Grant>();
  for (const t of token) {
    for (const o of owner) {
      if (o.scope !== t.scope) continue;
      if (o.user !== undefined && t.user !== undefined && o.user !== t.user) continue;
      const user = t.user ?? o.user;
      out.set(`${t.scope}!${user ?? ''}`, user === undefined ? { scope: t.scope } : { scope: t.scope, user });
    }
  }
  return [...out.values()];
}

/** Whether the grants allow `scope` on `user`'s resources (or, with no user, on everyone's). */
export function allows(grants: readonly Grant[], scope: ScopeName, user?: string): boolean {
  return grants.some((g) => g.scope === scope && (g.user === undefined || g.user === user));
}

/** Whether the grants allow `scope` on anyone at all (a listing then shows only those users). */
export function allowsAny(grants: readonly Grant[], scope: ScopeName): boolean {
  return grants.some((g) => g.scope === scope);
}

/** Grants as JupyterHub's scope strings (the `scopes` field of /hub/api/user). */
export function formatGrants(grants: readonly Grant[]): string[] {
  return grants.map((g) => (g.user === undefined ? g.scope : `${g.scope}!user=${g.user}`)).sort();
}
