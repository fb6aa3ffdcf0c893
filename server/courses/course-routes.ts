import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Route } from '../proxy/route-table.js';
import type { UserRecord } from '../store/repos.js';
import { BadRequest, Forbidden, HubError, NotFound, TooManyRequests } from '../errors.js';
import { safeNext } from '../web/safe-redirect.js';
import { asyncRoute, currentUser, renderer, requireUser, type WebDeps } from '../web/context.js';
import { openServerUrl } from '../web/server-cookie-issuer.js';
import { hubStartingPage } from '../web/server-routes.js';
import { wantsJson } from '../web/render.js';
import type { CourseRecord, SyncRecord, VersionRecord } from './course-repo.js';
import { CourseService, LOCAL_PROFILE } from './course-service.js';
import { JupyterFolder, SyncFailed } from './course-sync.js';
import { checkCoursePath, UploadRefused } from './upload.js';
import { checkServerFolder, copyServerFolder, PublishServerNotRunning, PublishServerUnreachable } from './server-folder.js';

/** What the course pages need besides the web deps, built in createHub. */
export interface CoursesWeb {
  service: CourseService;
  /** The proxy's route to a running server (its address and secret), for syncing files. */
  routeOf(escapedName: string): Route | undefined;
  /** Last proxied activity per server (escaped name -> ms). */
  lastActivity(): Promise<Map<string, number>>;
}

/** The sync could not reach the student's server. */
class CourseSyncFailed extends HubError {
  constructor(detail: string) {
    super('COURSE_SYNC_FAILED', 502, 'Your course files could not be copied into your server just now. Your own files are untouched. Please open the link again in a moment.', detail);
  }
}

const encodePath = (p: string): string => p.split('/').map(encodeURIComponent).join('/');

/** Per file of the latest version: in which version it last changed. */
function lastChanged(history: readonly VersionRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  // Oldest first: each change overwrites.
  const sorted = [...history].sort((a, b) => a.n - b.n);
  let prev: VersionRecord | undefined;
  for (const v of sorted) {
    for (const [p, e] of Object.entries(v.files)) if (!prev || !Object.hasOwn(prev.files, p) || prev.files[p].sha256 !== e.sha256) out.set(p, v.n);
    prev = v;
  }
  return out;
}

export interface FileView {
  path: string;
  notebook: boolean;
  link: string;
  size: number;
  /** 'new' (never opened), 'changed' (changed since last opened), 'conflict', or ''. */
  badge: string;
  changedIn: number;
  conflict?: { besidePath: string; version: number };
}

/** The files of a course's latest version as one student sees them. */
export function filesFor(course: CourseRecord, latest: VersionRecord | null, history: readonly VersionRecord[], sync: SyncRecord): FileView[] {
  if (!latest) return [];
  const changed = lastChanged(history);
  return Object.entries(latest.files)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([path, e]) => {
      const conflict = sync.conflicts.find((c) => c.path === path);
      const openedAt = Object.hasOwn(sync.openedVersion, path) ? sync.openedVersion[path] : undefined;
      const changedIn = changed.get(path) ?? latest.n;
      const badge = conflict ? 'conflict' : openedAt === undefined ? 'new' : openedAt < changedIn ? 'changed' : '';
      return { path, notebook: path.endsWith('.ipynb'), link: `/hub/courses/${course.code}/open/${encodePath(path)}`, size: e.size, badge, changedIn, ...(conflict ? { conflict: { besidePath: conflict.besidePath, version: conflict.version } } : {}) };
    });
}

/** A cell for CSV: quoted, and never read as a formula by a spreadsheet. */
function csvCell(v: string | number): string {
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

/** /hub/courses: the catalog, course pages, publishing, course links, the dashboard. */
export function courseRoutes(deps: WebDeps, web: CoursesWeb): Router {
  const router = Router({ caseSensitive: true });
  const render = renderer(deps);
  const signedIn = requireUser(false);
  // "Try it" visitors are signed in as anonymous users: course pages are for account holders.
  const pages = (req: Request, res: Response, next: NextFunction): void => {
    signedIn(req, res, (err?: unknown) => {
      if (err) next(err);
      else if (req.user?.source === 'anonymous') next(new Forbidden('Courses are for signed-in students and instructors. Sign out of the temporary workspace and sign in.'));
      else next();
    });
  };
  const svc = web.service;

  const code = (req: Request): string => String(req.params.code);
  const done = (req: Request, res: Response, to: string, json: Record<string, unknown>): void => {
    if (wantsJson(req)) res.json({ ...json, redirect: to });
    else res.redirect(303, to);
  };

  router.get(
    '/hub/courses',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const mine = new Set(await svc.coursesOf(user.name));
      const courses = (await svc.list()).map((c) => ({ ...c, manage: svc.canManage(user, c), enrolled: mine.has(c.code) }));
      render(req, res, 'courses.njk', { courses, isInstructor: CourseService.isInstructor(user), profileNames: svc.profileNames, datasetNames: svc.datasetNames, error: req.query.error === undefined ? undefined : String(req.query.error).slice(0, 300) });
    }),
  );

  router.post(
    '/hub/courses',
    pages,
    asyncRoute(async (req, res) => {
      const course = await svc.create(currentUser(req), (req.body ?? {}) as Record<string, unknown>);
      done(req, res, `/hub/courses/${course.code}`, { code: course.code });
    }),
  );

  const coursePage = async (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200): Promise<void> => {
    const user = currentUser(req);
    const course = await svc.get(code(req));
    const access = await svc.access(user, course);
    const history = await svc.history(course.code);
    const latest = history[0] ?? null;
    const sync = await svc.syncRecord(course.code, user.name);
    const base = deps.config.publicUrl ?? `${req.protocol}://${req.get('host') ?? ''}`;
    render(
      req,
      res,
      'course.njk',
      {
        course,
        access,
        latest,
        latestPublished: latest ? new Date(latest.publishedAt).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : '',
        history: access.manage ? history : [],
        files: filesFor(course, latest, history, sync),
        sync,
        courseLink: `${base}/hub/courses/${course.code}/open`,
        linkBase: base,
        roster: access.manage ? await svc.roster(course.code) : [],
        profileNames: svc.profileNames,
        datasetNames: svc.datasetNames,
        limits: { fileMb: deps.config.courseMaxFileMb, uploadMb: deps.config.courseMaxUploadMb },
        notice: typeof req.query.notice === 'string' ? req.query.notice.slice(0, 300) : undefined,
        ...extra,
      },
      status,
    );
  };

  router.get('/hub/courses/:code', pages, asyncRoute(async (req, res) => coursePage(req, res)));

  router.post(
    '/hub/courses/:code/settings',
    pages,
    asyncRoute(async (req, res) => {
      const course = await svc.update(currentUser(req), code(req), (req.body ?? {}) as Record<string, unknown>);
      done(req, res, `/hub/courses/${course.code}?notice=${encodeURIComponent('Settings saved.')}`, { ok: true });
    }),
  );

  router.post(
    '/hub/courses/:code/roster',
    pages,
    asyncRoute(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const entries = await svc.setRoster(currentUser(req), code(req), typeof body.csv === 'string' ? body.csv : '');
      done(req, res, `/hub/courses/${code(req)}?notice=${encodeURIComponent(`Roster saved: ${entries.length} entries.`)}`, { entries });
    }),
  );

  // Multipart: the XSRF token comes in the X-CSRF-Token header (the page's script sends it),
  // since the synchronizer check runs before any route could read a multipart body.
  router.post(
    '/hub/courses/:code/publish',
    pages,
    asyncRoute(async (req, res) => {
      const version = await svc.publish(currentUser(req), code(req), req);
      done(req, res, `/hub/courses/${code(req)}?notice=${encodeURIComponent(`Published version ${version.n}.`)}`, { version: version.n, files: Object.keys(version.files) });
    }),
  );

  // A folder of the instructor's own running server, read through its contents API (server-folder.ts).
  router.post(
    '/hub/courses/:code/publish-server',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      await svc.managed(user, code(req));
      const body = (req.body ?? {}) as Record<string, unknown>;
      const folder = checkServerFolder(body.folder);
      const route = (await deps.manager.status(user)) === 'running' ? web.routeOf(user.escapedName) : undefined;
      if (!route) throw new PublishServerNotRunning();
      const signal = AbortSignal.timeout(deps.config.courseSyncTimeoutS * 1000);
      const replace = body.replace === 'on' || body.replace === 'true';
      let version: VersionRecord;
      try {
        version = await svc.publishFromServer(user, code(req), folder, replace, (staging, limits) => copyServerFolder(route, folder, staging, limits, signal));
      } catch (err) {
        if (err instanceof SyncFailed || (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') throw new PublishServerUnreachable((err as Error).message);
        throw err;
      }
      const diff = (await svc.history(code(req))).find((v) => v.n === version.n)?.diff ?? { added: [], changed: [], removed: [] };
      const notice = `Published version ${version.n} from ~/${folder}: ${diff.added.length} added, ${diff.changed.length} changed, ${diff.removed.length} removed.`;
      done(req, res, `/hub/courses/${code(req)}?notice=${encodeURIComponent(notice)}`, { version: version.n, files: Object.keys(version.files), diff });
    }),
  );

  router.post(
    '/hub/courses/:code/rollback',
    pages,
    asyncRoute(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const version = await svc.rollback(currentUser(req), code(req), Number(body.version));
      done(req, res, `/hub/courses/${code(req)}?notice=${encodeURIComponent(`Version ${version.n} restores version ${version.rollbackOf}.`)}`, { version: version.n, rollbackOf: version.rollbackOf });
    }),
  );

  router.post(
    '/hub/courses/:code/join',
    pages,
    asyncRoute(async (req, res) => {
      const course = await svc.get(code(req));
      await svc.enrol(currentUser(req), course);
      done(req, res, `/hub/courses/${course.code}`, { ok: true });
    }),
  );

  /** The student's course folder in their running server, or a redirect that starts it and comes back. */
  const folderOf = async (req: Request, res: Response, user: UserRecord, course: CourseRecord): Promise<JupyterFolder | null> => {
    if (!deps.manager.ready) {
      hubStartingPage(deps.views, res);
      return null;
    }
    // The hub picks the kind of server from the course, never from the request.
    const profile = deps.config.spawner === 'docker' ? course.profiles.find((p) => deps.manager.profiles().some((q) => q.name === p)) : undefined;
    const running = deps.config.spawner === 'docker' || course.datasets.length ? (await deps.manager.list()).find((s) => s.escapedName === user.escapedName && s.phase === 'running') : undefined;
    if (running?.profile && !course.profiles.includes(running.profile)) {
      render(req, res, 'course-profile.njk', { course, running: running.profile, next: req.originalUrl }, 409);
      return null;
    }
    // The course's datasets are mounted at start: a server started without one must be restarted to get it
    // (a visitor's temporary workspace never gets a course's datasets, so it is never asked to).
    const missing = running?.datasets && !running.ephemeral ? course.datasets.filter((d) => !running.datasets?.includes(d)) : [];
    if (missing.length) {
      render(req, res, 'course-profile.njk', { course, missingDatasets: missing, next: req.originalUrl }, 409);
      return null;
    }
    const datasets = course.datasets.length ? { datasets: course.datasets } : {};
    const status = await deps.manager.start(user, { ...(profile ? { profile } : {}), ...datasets });
    if (status !== 'running') {
      res.redirect(302, `/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent(req.originalUrl)}`);
      return null;
    }
    const route = web.routeOf(user.escapedName);
    if (!route) throw new CourseSyncFailed('no route for a running server');
    return new JupyterFolder(route, course.code, AbortSignal.timeout(deps.config.courseSyncTimeoutS * 1000));
  };

  const open = asyncRoute(async (req, res) => {
    const course = await svc.get(code(req));
    const raw = req.params.path as string[] | undefined;
    let rel = '';
    if (raw?.length) {
      try {
        rel = checkCoursePath(raw.join('/'));
      } catch {
        throw new NotFound('The course has no such file.');
      }
    }
    const login = `/hub/login?next=${encodeURIComponent(req.originalUrl)}`;
    if (!req.user) {
      // A course open to anonymous visitors offers a temporary workspace beside signing in.
      if (course.anonymousAllowed && deps.tryIt.pool.enabled) return render(req, res, 'course-guest.njk', { course, next: req.originalUrl, login });
      // Signed out: through sign-in (SSO) and back to this same link.
      return res.redirect(302, login);
    }
    const user = req.user;
    if (rel) {
      const latest = await svc.latest(course.code);
      if (!latest || !Object.hasOwn(latest.files, rel)) throw new NotFound('The course has no such file (yet).');
    }
    // A visitor of a course that allows them is not enrolled (nothing of theirs outlives the workspace).
    if (!(user.source === 'anonymous' && course.anonymousAllowed)) await svc.enrol(user, course);
    const folder = await folderOf(req, res, user, course);
    if (!folder) return;
    try {
      await svc.syncInto(user, course, folder, rel || undefined);
    } catch (err) {
      if (err instanceof SyncFailed || (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') throw new CourseSyncFailed((err as Error).message);
      throw err;
    }
    const target = `/user/${user.escapedName}/lab/tree/${encodeURIComponent(course.code)}${rel ? '/' + encodePath(rel) : ''}`;
    res.redirect(302, await openServerUrl(deps, req, res, user, target));
  });
  // An anonymous visitor takes a temporary workspace from the "Try it" pool for a course that
  // allows it, then comes back to the course link; the same limits as "Try it" apply.
  router.post(
    '/hub/courses/:code/guest',
    asyncRoute(async (req, res) => {
      const course = await svc.get(code(req));
      const body = (req.body ?? {}) as Record<string, unknown>;
      const next = safeNext(body.next);
      const back = next && next.startsWith(`/hub/courses/${course.code}/open`) ? next : `/hub/courses/${course.code}/open`;
      if (!course.anonymousAllowed) throw new Forbidden('This course is for signed-in students only. Please sign in.');
      if (req.user) return res.redirect(303, back);
      const pool = deps.tryIt.pool;
      if (!pool.enabled) throw new NotFound('Temporary workspaces are not offered on this hub.');
      const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
      if ((await pool.heldBy(ip)) >= deps.config.tryMaxPerAddress || (await pool.startsUsedUp(ip))) {
        throw new TooManyRequests('Your address holds or has started the most temporary workspaces allowed for now. Sign in instead, or try again later.');
      }
      const place = await pool.placeFor(undefined);
      const got = place.available ? await pool.claim(ip) : null;
      if (!got) throw new HubError('POOL_BUSY', 503, 'Every temporary workspace is taken right now. Sign in, or try again in a minute.');
      await new Promise<void>((resolve, reject) => req.login(got.user, (err: unknown) => (err ? reject(err) : resolve())));
      req.session.tryHad = true;
      deps.log.info({ part: 'courses', course: course.code, user: got.user.name, ip }, 'anonymous visitor opened a course');
      if (got.warm) return res.redirect(303, back);
      res.redirect(303, `/hub/spawn-pending/${got.user.escapedName}?next=${encodeURIComponent(back)}`);
    }),
  );

  router.get('/hub/courses/:code/open', open);
  router.get('/hub/courses/:code/open/*path', open);

  router.post(
    '/hub/courses/:code/reset',
    pages,
    asyncRoute(async (req, res) => {
      const user = currentUser(req);
      const course = await svc.get(code(req));
      const access = await svc.access(user, course);
      if (!access.enrolled && !access.manage) throw new NotFound('You are not in this course.');
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body.path !== 'string') throw new BadRequest('Say which file to reset.');
      const rel = checkCoursePath(body.path);
      const folder = await folderOf(req, res, user, course);
      if (!folder) return;
      let aside: string | undefined;
      try {
        aside = await svc.reset(user, course, folder, rel);
      } catch (err) {
        if (err instanceof SyncFailed || (err as Error).name === 'TimeoutError') throw new CourseSyncFailed((err as Error).message);
        throw err;
      }
      const notice = aside ? `${rel} is the course version again; your copy is kept as ${aside}.` : `${rel} is the course version again.`;
      done(req, res, `/hub/courses/${course.code}?notice=${encodeURIComponent(notice)}`, { aside: aside ?? null });
    }),
  );

  const dashboardRows = async (course: CourseRecord) => {
    const activity = await web.lastActivity();
    const rows = [];
    for (const name of await svc.students(course.code)) {
      const student = await deps.users.get(name);
      const sync = await svc.syncRecord(course.code, name);
      const server = student ? (await deps.manager.state(student)).state : 'stopped';
      const proxied = student ? activity.get(student.escapedName) : undefined;
      const last = Math.max(sync.lastActivity ?? 0, proxied ?? 0);
      rows.push({
        name,
        email: student?.email ?? '',
        displayName: student?.displayName ?? '',
        server,
        lastActivity: last || undefined,
        version: sync.version,
        conflicts: sync.conflicts.map((c) => c.path),
        lastActivityIso: last ? new Date(last).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : '',
        opened: Object.entries(sync.opened).sort(([a], [b]) => a.localeCompare(b)).map(([path, at]) => ({ path, at, atIso: new Date(at).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' })),
      });
    }
    return rows;
  };

  router.get(
    '/hub/courses/:code/dashboard',
    pages,
    asyncRoute(async (req, res) => {
      const course = await svc.managed(currentUser(req), code(req));
      const latest = await svc.latest(course.code);
      render(req, res, 'course-dashboard.njk', { course, latest, rows: await dashboardRows(course) });
    }),
  );

  router.get(
    '/hub/courses/:code/dashboard.csv',
    pages,
    asyncRoute(async (req, res) => {
      const course = await svc.managed(currentUser(req), code(req));
      const latest = await svc.latest(course.code);
      const notebooks = Object.keys(latest?.files ?? {}).filter((p) => p.endsWith('.ipynb')).sort();
      const iso = (ms: number | undefined): string => (ms ? new Date(ms).toISOString() : '');
      const lines = [['student', 'email', 'server', 'last_activity', 'version_received', 'conflicts', ...notebooks.map((n) => `opened:${n}`)].map(csvCell).join(',')];
      for (const r of await dashboardRows(course)) {
        const opened = new Map(r.opened.map((o) => [o.path, o.at]));
        lines.push([r.name, r.email, r.server, iso(r.lastActivity), r.version, r.conflicts.join(' '), ...notebooks.map((n) => iso(opened.get(n)))].map(csvCell).join(','));
      }
      res
        .status(200)
        .set({ 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${course.code}-students.csv"`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
        .send(lines.join('\r\n') + '\r\n');
    }),
  );

  return router;
}

/** What the home page's course section shows: my courses, their files, what changed. */
export async function homeCourses(svc: CourseService, user: UserRecord): Promise<{ course: CourseRecord; manage: boolean; files: FileView[]; conflicts: number }[]> {
  const codes = new Set(await svc.coursesOf(user.name));
  const out = [];
  for (const course of await svc.list()) {
    const manage = svc.canManage(user, course);
    if (!manage && !codes.has(course.code)) continue;
    const history = await svc.history(course.code);
    const sync = await svc.syncRecord(course.code, user.name);
    const files = filesFor(course, history[0] ?? null, history, sync);
    out.push({ course, manage, files, conflicts: sync.conflicts.length });
  }
  return out;
}

export { LOCAL_PROFILE, UploadRefused };
