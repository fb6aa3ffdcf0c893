import { Router, type Request } from 'express';
import { z } from 'zod';
import { BadRequest, Conflict, Forbidden, NotFound } from '../errors.js';
import { asyncRoute, type WebDeps } from '../web/context.js';
import { isAnonymousName } from '../names.js';
import { ServerRepo, type Role, type UserRecord } from '../store/repos.js';
import { mergeRoles } from '../auth/index.js';
import { checkScope, requirePrincipal, type Principal } from './auth.js';
import { UserActivityRepo } from './activity-repo.js';
import { isActive, serverModel, userModel, withQuery, type RoleSources, type ServerView } from './models.js';
import { allows, allowsAny, expandScopes, formatGrants, type Grant } from './scopes.js';
import type { TokenOwner } from './token-repo.js';

/** The JupyterHub REST API version oerhub answers like (clients gate features on it, e.g. the idle culler's ?state=). */
export const JUPYTERHUB_API_VERSION = '5.0.0';
const PAGE_DEFAULT = 50;
const PAGE_MAX = 200;
const PAGINATION = 'application/jupyterhub-pagination+json';

const roleList = z.array(z.enum(['admin', 'instructor', 'student']));
const NewUser = z.object({
  name: z.string().min(1).max(256).optional(),
  password: z.string().min(8).max(1024).optional(),
  roles: roleList.optional(),
  admin: z.boolean().optional(),
  usernames: z.array(z.string().min(1).max(256)).max(1000).optional(),
});
const UserPatch = z.object({ name: z.string().optional(), admin: z.boolean().optional(), roles: roleList.optional() }).strict();
const NewToken = z
  .object({
    note: z.string().max(500).optional(),
    expires_in: z.number().int().min(0).nullable().optional(),
    scopes: z.array(z.string().max(200)).max(100).optional(),
    roles: z.array(z.string()).max(0, 'oerhub tokens take scopes, not roles').optional(),
  })
  .strict();
const Activity = z.object({
  last_activity: z.string().datetime({ offset: true }).optional(),
  servers: z.record(z.object({ last_activity: z.string().datetime({ offset: true }) }).passthrough()).optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new BadRequest(r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

function rolesFrom(body: { roles?: Role[]; admin?: boolean }, base: Role[]): Role[] {
  const roles = new Set<Role>(body.roles ?? base);
  if (body.admin === true) roles.add('admin');
  if (body.admin === false) roles.delete('admin');
  return [...roles];
}

/**
 * The hub's grants after a PATCH of `roles` (the effective roles wanted, JupyterHub's field)
 * and/or `admin` (alone: adds or removes the hub's admin grant). A role the identity provider
 * gives can't be taken away here (it would stay): Conflict, naming it. A wanted role the IdP
 * already gives stays the IdP's (not also granted, unless it was), so sending back what GET
 * shows in `roles` changes nothing.
 */
export function grantsAfterPatch(body: { roles?: Role[]; admin?: boolean }, sources: RoleSources): Role[] {
  let granted: Role[];
  let removed: readonly Role[];
  if (body.roles === undefined) {
    granted = rolesFrom(body, [...sources.granted]);
    removed = body.admin === false ? ['admin'] : [];
  } else {
    const wanted = rolesFrom(body, []);
    granted = wanted.filter((r) => !sources.idp.includes(r) || sources.granted.includes(r));
    // Never student: it is what everyone without instructor is, whoever says so.
    removed = (['admin', 'instructor'] as const).filter((r) => !wanted.includes(r));
  }
  const kept = mergeRoles(granted, sources.idp).filter((r) => removed.includes(r) && sources.idp.includes(r));
  if (kept.length) {
    throw new Conflict(
      `The role${kept.length === 1 ? '' : 's'} ${kept.join(' and ')} ${kept.length === 1 ? 'comes' : 'come'} from the user's identity provider and can't be removed through the API; change ${kept.length === 1 ? 'it' : 'them'} there. The hub's own grants are in granted_roles.`,
      `PATCH tried to remove the IdP's roles ${kept.join(' ')}`,
    );
  }
  return granted;
}

/**
 * /hub/api: JSON, shaped like JupyterHub's REST API where the two overlap (names, fields,
 * status codes, scopes). A session works as in the browser (unsafe methods need X-CSRF-Token);
 * `Authorization: token …` works with the token's scopes and skips the XSRF check.
 */
export function apiRoutes(deps: WebDeps): Router {
  const router = Router({ caseSensitive: true });
  const servers = new ServerRepo(deps.store);
  const activity = new UserActivityRepo(deps.store);
  // Who acted, for the audit log: the account, or `service:NAME` for a service's token.
  const actorOf = (req: Request, p: Principal) => ({ name: p.user?.name ?? `service:${p.service ?? '?'}`, address: req.ip ?? '' });
  const audit = (req: Request, p: Principal, action: string, target: string, details?: Record<string, string>): Promise<unknown> => {
    const actor = actorOf(req, p);
    return deps.audit.record({ actor: actor.name, address: actor.address, action, target, details: { via: 'api', ...details } });
  };

  /** A user by name (JupyterHub's URLs) or escaped name (oerhub's own pages). Anonymous visitors only to themselves. */
  async function target(p: Principal, raw: string): Promise<UserRecord> {
    const user = (await deps.users.get(raw)) ?? (await deps.users.getByEscaped(raw));
    if (!user || (isAnonymousName(user.name) && p.user?.name !== user.name)) throw new NotFound(`No such user: ${raw.slice(0, 100)}`);
    return user;
  }

  async function viewOf(user: UserRecord): Promise<ServerView> {
    const { state } = await deps.manager.state(user);
    const record = await servers.get(user.escapedName);
    const last = (await servers.lastActivity()).get(user.escapedName);
    const phase = state === 'failed' ? 'stopped' : state;
    const profile = record?.spawnerState?.profile;
    return { phase, ...(record ? { startedAt: record.startedAt } : {}), ...(typeof profile === 'string' ? { profile } : {}), ...(last === undefined ? {} : { lastActivityMs: last }) };
  }

  /** Where the roles come from, when the caller may read them (read:users). */
  async function sourcesFor(grants: Principal['grants'], user: UserRecord): Promise<RoleSources | undefined> {
    return allows(grants, 'read:users', user.name) ? deps.admin.rolesOf(user) : undefined;
  }

  async function modelOf(p: Principal, user: UserRecord): Promise<Record<string, unknown>> {
    return userModel(user, await viewOf(user), (await activity.all()).get(user.name), p.grants, await sourcesFor(p.grants, user));
  }

  router.get('/hub/api/', (_req, res) => {
    res.json({ version: JUPYTERHUB_API_VERSION });
  });
  router.get('/hub/api', (_req, res) => {
    res.json({ version: JUPYTERHUB_API_VERSION });
  });

  router.get(
    '/hub/api/info',
    asyncRoute(async (req, res) => {
      checkScope(requirePrincipal(req), 'read:hub');
      res.json({
        version: JUPYTERHUB_API_VERSION,
        implementation: 'oerhub',
        python: null,
        sys_executable: null,
        spawner: { class: deps.config.spawner === 'docker' ? 'oerhub.DockerSpawner' : 'oerhub.LocalProcessSpawner', version: JUPYTERHUB_API_VERSION },
        authenticator: { class: 'oerhub.Authenticators', version: JUPYTERHUB_API_VERSION },
      });
    }),
  );

  // Who am I: the token's or session's user (or service), with the scopes it has now.
  router.get(
    '/hub/api/user',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      if (!p.user) {
        res.json({ kind: 'service', name: p.service, roles: [], scopes: formatGrants(p.grants) });
        return;
      }
      // Your own model whatever the token's read scopes (JupyterHub does the same for /user).
      const own: Grant[] = [
        { scope: 'read:users', user: p.user.name },
        { scope: 'read:servers', user: p.user.name },
      ];
      const model = userModel(p.user, await viewOf(p.user), (await activity.all()).get(p.user.name), own, await sourcesFor(own, p.user));
      const session = p.token ? {} : { csrf_token: deps.csrfToken(req) };
      res.json({ ...model, escaped_name: p.user.escapedName, scopes: formatGrants(p.grants), ...(p.token ? { token_id: p.token.tokenId } : {}), ...session });
    }),
  );

  router.get(
    '/hub/api/users',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      if (!allowsAny(p.grants, 'list:users')) checkScope(p, 'list:users');
      const state = typeof req.query.state === 'string' ? req.query.state : '';
      if (state && !['active', 'inactive', 'ready'].includes(state)) throw new BadRequest(`Unrecognized state filter: ${state.slice(0, 50)}; use active, inactive or ready.`);
      const offset = pageNumber(req.query.offset, 0, 'offset');
      const limit = Math.min(pageNumber(req.query.limit, PAGE_DEFAULT, 'limit') || PAGE_DEFAULT, PAGE_MAX);
      const byServer = new Map((await deps.manager.list()).map((s) => [s.escapedName, s]));
      const lastByServer = await servers.lastActivity();
      const lastByUser = await activity.all();
      // "Try it" visitors are throwaway sessions, not accounts: never listed.
      const names = (await deps.users.list()).filter((n) => !isAnonymousName(n) && allows(p.grants, 'list:users', n));
      const matched: { user: UserRecord; view: ServerView }[] = [];
      for (const name of names) {
        const user = await deps.users.get(name);
        if (!user) continue;
        const s = byServer.get(user.escapedName);
        const phase: ServerView['phase'] = !s || s.phase === 'failed' ? 'stopped' : s.phase;
        if (state === 'active' && !isActive(phase)) continue;
        if (state === 'inactive' && isActive(phase)) continue;
        if (state === 'ready' && phase !== 'running') continue;
        const last = lastByServer.get(user.escapedName);
        matched.push({ user, view: { phase, ...(s ? { startedAt: s.startedAt } : {}), ...(s?.profile ? { profile: s.profile } : {}), ...(last === undefined ? {} : { lastActivityMs: last }) } });
      }
      const page: Record<string, unknown>[] = [];
      for (const { user, view } of matched.slice(offset, offset + limit)) page.push(userModel(user, view, lastByUser.get(user.name), p.grants, await sourcesFor(p.grants, user)));
      if (!(req.get('accept') ?? '').includes(PAGINATION)) {
        res.json(page);
        return;
      }
      const nextOffset = offset + limit;
      res.type(PAGINATION).send(
        JSON.stringify({
          items: page,
          _pagination: {
            offset,
            limit,
            total: matched.length,
            next: nextOffset < matched.length ? { offset: nextOffset, limit, url: withQuery(req, { offset: String(nextOffset), limit: String(limit) }) } : null,
          },
        }),
      );
    }),
  );

  // Create users: JupyterHub's {usernames: [...], admin}, or oerhub's {name, password, roles} (a local account).
  router.post(
    '/hub/api/users',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      checkScope(p, 'admin:users');
      const body = parse(NewUser, req.body);
      if (body.usernames) {
        const made: Record<string, unknown>[] = [];
        for (const raw of body.usernames) {
          const user = await deps.users.createExternal(raw, 'local', rolesFrom(body, ['student']));
          if (!user) throw new Conflict(`User ${deps.users.normalize(raw)} already exists.`);
          await audit(req, p, 'user.create', user.name, { roles: user.roles.join(' ') });
          made.push(await modelOf(p, user));
        }
        res.status(201).json(made);
        return;
      }
      if (!body.name) throw new BadRequest('name: Required (or usernames: [...]).');
      const user = await createOne(body.name, body);
      await audit(req, p, 'user.create', user.name, { roles: user.roles.join(' ') });
      res.status(201).json(await modelOf(p, user));
    }),
  );

  async function createOne(raw: string, body: z.infer<typeof NewUser>): Promise<UserRecord> {
    const roles = rolesFrom(body, ['student']);
    if (body.password) return deps.users.createLocal(raw, body.password, roles);
    const user = await deps.users.createExternal(raw, 'local', roles);
    if (!user) throw new Conflict(`User ${deps.users.normalize(raw)} already exists.`);
    return user;
  }

  router.get(
    '/hub/api/users/:name',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      const user = await target(p, String(req.params.name));
      if (!allows(p.grants, 'read:users:name', user.name) && !allows(p.grants, 'read:servers', user.name)) checkScope(p, 'read:users', user.name);
      res.json(await modelOf(p, user));
    }),
  );

  router.post(
    '/hub/api/users/:name',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      checkScope(p, 'admin:users');
      const user = await createOne(String(req.params.name), parse(NewUser, req.body));
      await audit(req, p, 'user.create', user.name, { roles: user.roles.join(' ') });
      res.status(201).json(await modelOf(p, user));
    }),
  );

  router.patch(
    '/hub/api/users/:name',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      checkScope(p, 'admin:users');
      const user = await target(p, String(req.params.name));
      const body = parse(UserPatch, req.body);
      if (body.name !== undefined && body.name !== user.name) throw new BadRequest('Renaming users is not supported: their servers, volumes and sign-ins are keyed by the name.');
      if (body.roles === undefined && body.admin === undefined) {
        res.json(await modelOf(p, user));
        return;
      }
      // The hub's grants only, through the admin pages' own path (audited there): the IdP's roles stay.
      const granted = grantsAfterPatch(body, await deps.admin.rolesOf(user));
      const updated = await deps.admin.setRoles(actorOf(req, p), user, granted);
      res.json(await modelOf(p, updated));
    }),
  );

  // Delete an account: its server stops (files kept), its tokens are revoked.
  router.delete(
    '/hub/api/users/:name',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      checkScope(p, 'admin:users');
      const user = await target(p, String(req.params.name));
      if (p.user?.name === user.name) throw new BadRequest('You cannot delete your own account.');
      // As the admin page's delete keeping the files: sessions end, the server stops, identities
      // and roles are forgotten, the home stays (JupyterHub's DELETE keeps it too); audited there.
      await deps.admin.deleteUser(actorOf(req, p), user, true);
      await activity.forget(user.name);
      res.status(204).end();
    }),
  );

  router.post(
    '/hub/api/users/:name/server',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      const user = await target(p, String(req.params.name));
      checkScope(p, 'servers', user.name);
      const options = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      const profile = typeof options.profile === 'string' ? options.profile : undefined;
      const { state } = await deps.manager.state(user);
      // As JupyterHub: a running or pending server is a 400, never a second start.
      if (state === 'running') throw new BadRequest(`${user.name} is already running.`);
      if (state === 'starting' || state === 'stopping') throw new BadRequest(`${user.name}'s server is pending ${state === 'starting' ? 'spawn' : 'stop'}, please wait.`);
      const status = await deps.manager.start(user, profile ? { profile } : {});
      if (p.user?.name !== user.name) await audit(req, p, 'server.start', user.name, profile ? { profile } : {});
      res.status(status === 'running' ? 201 : 202).json(await modelOf(p, user));
    }),
  );

  // JupyterHub: 204 once stopped (also when there was nothing to stop), 202 while another stop runs.
  router.delete(
    '/hub/api/users/:name/server',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      const user = await target(p, String(req.params.name));
      if (!allows(p.grants, 'delete:servers', user.name)) checkScope(p, 'servers', user.name);
      const { state } = await deps.manager.state(user);
      if (state === 'stopping') {
        res.status(202).end();
        return;
      }
      // A start in progress is cancelled; a failed one's record is cleared; a stopped one is left alone.
      if (state !== 'stopped') await deps.manager.stop(user);
      if (p.user?.name !== user.name) await audit(req, p, 'server.stop', user.name, { was: state });
      else deps.log.info({ part: 'api', user: user.name, was: state }, 'server stop through the API');
      res.status(204).end();
    }),
  );

  // Server-sent events: every step of the start, replayed for late subscribers, then closed.
  router.get(
    '/hub/api/users/:name/server/progress',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      const user = await target(p, String(req.params.name));
      checkScope(p, 'read:servers', user.name);
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
    }),
  );

  // An external process (a service, a server extension) says when the user was last active.
  router.post(
    '/hub/api/users/:name/activity',
    asyncRoute(async (req, res) => {
      const p = requirePrincipal(req);
      const user = await target(p, String(req.params.name));
      checkScope(p, 'users:activity', user.name);
      const body = parse(Activity, req.body);
      const times = [body.last_activity, ...Object.entries(body.servers ?? {}).map(([name, s]) => {
        if (name !== '') throw new BadRequest(`No such server: ${name.slice(0, 100)} (oerhub has one server per user, named '').`);
        return s.last_activity;
      })].filter((t): t is string => t !== undefined);
      if (!times.length) throw new BadRequest('Give last_activity, or servers with their last_activity.');
      const latest = Math.min(Math.max(...times.map((t) => Date.parse(t))), Date.now());
      await activity.record(user.name, latest);
      const serverTime = body.servers?.['']?.last_activity;
      if (serverTime && (await servers.get(user.escapedName))) await servers.recordActivity(new Map([[user.escapedName, Math.min(Date.parse(serverTime), Date.now())]]));
      res.status(200).json({});
    }),
  );

  // Tokens: /hub/api/users/NAME/tokens (JupyterHub), and /hub/api/services/NAME/tokens for configured services (oerhub).
  for (const kind of ['users', 'services'] as const) {
    const ownerOf = async (req: Request, p: Principal): Promise<TokenOwner> => {
      const raw = String(req.params.name);
      if (kind === 'services') {
        checkScope(p, 'admin:services');
        if (!deps.tokens.hasService(raw)) throw new NotFound(`No such service: ${raw.slice(0, 100)}`);
        return { kind: 'service', name: raw };
      }
      const user = await target(p, raw);
      return { kind: 'user', name: user.name };
    };
    const need = (p: Principal, owner: TokenOwner, scope: 'tokens' | 'read:tokens'): void => {
      if (owner.kind === 'user') checkScope(p, scope, owner.name);
    };
    router.get(
      `/hub/api/${kind}/:name/tokens`,
      asyncRoute(async (req, res) => {
        const p = requirePrincipal(req);
        const owner = await ownerOf(req, p);
        need(p, owner, 'read:tokens');
        const list = await deps.tokens.list(owner);
        res.json({ api_tokens: await Promise.all(list.map((t) => deps.tokens.model(t))), oauth_tokens: [] });
      }),
    );
    router.post(
      `/hub/api/${kind}/:name/tokens`,
      asyncRoute(async (req, res) => {
        const p = requirePrincipal(req);
        const owner = await ownerOf(req, p);
        need(p, owner, 'tokens');
        // Anonymous visitors have no account to hold a token for.
        if (owner.kind === 'user' && isAnonymousName(owner.name)) throw new NotFound('Visitors of "Try it" cannot have API tokens.');
        const body = parse(NewToken, req.body);
        // A token never gets more than the one who makes it (a token making a token included).
        if (body.scopes?.length && !body.scopes.includes('inherit')) {
          const asked = expandScopes(body.scopes, owner.name);
          const beyond = asked.filter((g) => !allows(p.grants, g.scope, g.user));
          if (beyond.length && owner.kind === 'user') throw new Forbidden(`Not assigning requested scopes ${formatGrants(beyond).join(', ')}: you do not have them.`);
        }
        const { token, record } = await deps.tokens.issue(owner, {
          ...(body.scopes ? { scopes: body.scopes } : {}),
          note: body.note ?? `Requested via API${p.user ? ` by user ${p.user.name}` : ''}`,
          ...(body.expires_in ? { expiresInS: body.expires_in } : {}),
        });
        res.status(201).json({ ...(await deps.tokens.model(record)), token });
      }),
    );
    router.get(
      `/hub/api/${kind}/:name/tokens/:id`,
      asyncRoute(async (req, res) => {
        const p = requirePrincipal(req);
        const owner = await ownerOf(req, p);
        need(p, owner, 'read:tokens');
        res.json(await deps.tokens.model(await deps.tokens.get(owner, String(req.params.id))));
      }),
    );
    router.delete(
      `/hub/api/${kind}/:name/tokens/:id`,
      asyncRoute(async (req, res) => {
        const p = requirePrincipal(req);
        const owner = await ownerOf(req, p);
        need(p, owner, 'tokens');
        await deps.tokens.revoke(owner, String(req.params.id));
        res.status(204).end();
      }),
    );
  }
  return router;
}

function pageNumber(v: unknown, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new BadRequest(`${name} must be a whole number.`);
  return n;
}
