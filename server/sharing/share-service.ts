import fs from 'node:fs/promises';
import path from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { Route } from '../proxy/route-table.js';
import type { AuditLog } from '../audit/index.js';
import { BadRequest, Forbidden, HubError } from '../errors.js';
import { CourseService, JupyterFolder, SyncFailed, checkCoursePath, type CourseRecord } from '../courses/index.js';
import { renderNotebook, NotebookInvalid } from '../notebooks/index.js';
import type { Audience, ShareRecord, ShareRepo } from './share-repo.js';
import type { ShareOrigin } from './share-origin.js';
import { ServerNotRunning, ShareForbidden, ShareGone, ShareNeedsSignIn, ShareNotFound, SharingUnavailable } from './errors.js';

export const AUDIENCES: readonly Audience[] = ['classmates', 'instructors', 'anyone'];
/** Share ids: 16 random bytes, base64url. */
export const SHARE_ID_RE = /^[A-Za-z0-9_-]{22}$/;
/**
 * HTML and markdown a shared notebook may put through the sanitiser: it runs in the hub's own
 * process (about 0.4 s per MB), so a notebook of 20 MB of HTML would hold every request for
 * seconds. 2 MB is many tables; larger outputs become a note.
 */
export const SHARE_HTML_CHARS = 2 * 1024 * 1024;
/** An instructor's look at a student's copy is kept this long, then forgotten (snapshot included). */
export const COPY_TTL_MS = 60 * 60_000;

export interface ShareServiceOptions {
  repo: ShareRepo;
  courses: CourseService;
  users: { get(name: string): Promise<UserRecord | null> };
  /** Whether an admin disabled this account (a disabled owner's links stop working). */
  isDisabled(name: string): Promise<boolean>;
  /** The proxy's route to a running server (its address and secret). */
  routeOf(escapedName: string): Route | undefined;
  origin: ShareOrigin;
  /** dataDir/shares: snapshots and their rendered pages. */
  dir: string;
  /** The hub's cookie secret: view URLs are signed with a key derived from it. */
  secret: string;
  /** Largest notebook a snapshot may be (bytes). */
  maxBytes: number;
  /** ms to wait for the server's contents API. */
  readTimeoutMs: number;
  /** How long a signed view URL works (shareViewUrlTtlS): a leaked one soon stops working. */
  viewUrlTtlMs: number;
  /** Most live shares per user (shareMaxPerUser). */
  maxPerUser: number;
  /** The page around a rendered notebook (share-page.ts). */
  page(rec: ShareRecord, html: string, note: string | null): string;
  audit: AuditLog;
  log: Logger;
  now?: () => number;
}

export interface ShareView {
  rec: ShareRecord;
  /** The hub-origin link to give people: /hub/share/ID. */
  link: string;
}

/** A signed view URL's parts, as the content origin reads them. */
export interface ViewTicket {
  id: string;
  expires: number;
  sig: string;
}

/**
 * Read-only sharing (issue 11): snapshots of one notebook, rendered and sanitised once, shown
 * on the share origin (share-origin.ts) to the audience the owner chose. Snapshots live in the
 * hub's data folder (dataDir/shares/ID/), not the store: a notebook with outputs may be tens
 * of MB, and course versions already live there; the store keeps only the small record.
 * Every check of who may see what is here.
 */
export class ShareService {
  private readonly key: Buffer;
  private readonly now: () => number;

  constructor(private readonly o: ShareServiceOptions) {
    this.key = createHmac('sha256', o.secret).update('oerhub share view urls').digest();
    this.now = o.now ?? Date.now;
  }

  get available(): boolean {
    return this.o.origin.available;
  }

  /** The course notebooks a user may share: the latest version's notebooks of courses they are in or teach. */
  async shareable(user: UserRecord): Promise<{ course: CourseRecord; notebooks: string[]; allowsAnyone: boolean }[]> {
    const out = [];
    for (const course of await this.o.courses.list()) {
      if (!this.o.courses.canManage(user, course) && !(await this.o.courses.isMember(user, course))) continue;
      const latest = await this.o.courses.latest(course.code);
      const notebooks = Object.keys(latest?.files ?? {}).filter((p) => p.endsWith('.ipynb')).sort();
      out.push({ course, notebooks, allowsAnyone: course.shareWithAnyone === true });
    }
    return out;
  }

  /** Snapshot `~/COURSE/PATH` of the user's running server and share it. */
  async create(user: UserRecord, input: { course?: unknown; path?: unknown; audience?: unknown }): Promise<ShareRecord> {
    if (!this.available) throw new SharingUnavailable();
    if (user.source === 'anonymous') throw new Forbidden('Temporary workspaces can\'t share notebooks. Sign in with an account.');
    const course = await this.o.courses.get(typeof input.course === 'string' ? input.course : '');
    if (!this.o.courses.canManage(user, course) && !(await this.o.courses.isMember(user, course))) throw new Forbidden('You can share notebooks only of courses you are in.', `${user.name} on ${course.code}`);
    const audience = AUDIENCES.find((a) => a === input.audience);
    if (!audience) throw new BadRequest('Choose who may see it: your classmates, your instructors, or anyone with the link.');
    if (audience === 'anyone' && course.shareWithAnyone !== true) throw new BadRequest('This course does not allow sharing with anyone outside it: choose classmates or instructors.');
    const rel = notebookPath(input.path);
    const live = (await this.o.repo.listOf(user.name)).filter((s) => !s.revokedAt).length;
    if (live >= this.o.maxPerUser) throw new HubError('TOO_MANY_SHARES', 409, `You have ${live} shared links, the most allowed. Revoke one you no longer need, then share again.`);
    const data = await this.snapshot(user, course, rel, `Your server is not running, so the hub can't read ${rel} now. Start it (open the notebook from the course), then share again.`);
    const rec: ShareRecord = { id: newId(), kind: 'share', owner: user.name, createdBy: user.name, course: course.code, path: rel, audience, title: '', createdAt: this.now() };
    await this.keep(rec, data, path.join(this.o.dir, rec.id));
    await this.o.repo.create(rec);
    this.o.log.info({ share: rec.id, user: user.name, course: course.code, path: rel, audience }, 'notebook shared');
    return rec;
  }

  /** Revoke one of the user's shares: its link says so from now on, its snapshot is deleted. Repeating it is safe. */
  async revoke(user: UserRecord, id: string): Promise<ShareRecord> {
    const rec = SHARE_ID_RE.test(id) ? await this.o.repo.get(id) : null;
    if (!rec || rec.kind !== 'share') throw new ShareNotFound(id.slice(0, 40));
    if (rec.owner !== user.name && !user.roles.includes('admin')) throw new Forbidden('Only the person who shared this notebook can revoke it.', `${user.name} on share of ${rec.owner}`);
    if (rec.revokedAt) return rec;
    const revoked = { ...rec, revokedAt: this.now() };
    await this.o.repo.put(revoked);
    await fs.rm(path.join(this.o.dir, rec.id), { recursive: true, force: true });
    this.o.log.info({ share: rec.id, user: user.name, owner: rec.owner }, 'share revoked');
    return revoked;
  }

  /** A deleted account's shares: every one revoked, every snapshot deleted (AdminService.deleteUser calls it). */
  async forgetUser(name: string): Promise<void> {
    for (const rec of await this.o.repo.listOf(name)) await this.forget(rec);
    this.o.log.info({ user: name }, 'shares of a deleted account revoked');
  }

  /** Revoke a record and delete its snapshot. Safe to repeat. */
  private async forget(rec: ShareRecord): Promise<void> {
    if (rec.kind === 'share' && !rec.revokedAt) await this.o.repo.put({ ...rec, revokedAt: this.now() });
    await fs.rm(this.dirOf(rec), { recursive: true, force: true });
  }

  private dirOf(rec: ShareRecord): string {
    return rec.kind === 'copy' ? path.join(this.o.dir, 'copies', rec.id) : path.join(this.o.dir, rec.id);
  }

  async listOf(user: UserRecord): Promise<ShareRecord[]> {
    return this.o.repo.listOf(user.name);
  }

  /**
   * "View this student's copy" (the dashboard): snapshot the student's copy of a course
   * notebook now, for the course's instructors only, and write an audit line.
   */
  async viewCopy(instructor: UserRecord, code: string, studentName: string, rawPath: unknown, address: string): Promise<ShareRecord> {
    if (!this.available) throw new SharingUnavailable();
    const course = await this.o.courses.managed(instructor, code);
    const students = await this.o.courses.students(course.code);
    const student = students.includes(studentName) ? await this.o.users.get(studentName) : null;
    if (!student) throw new ShareNotFound(`${studentName} is not a student of ${course.code}`);
    const rel = notebookPath(rawPath);
    const data = await this.snapshot(student, course, rel, `${student.name}'s server is not running, so their copy of ${rel} can't be read now. It can be viewed while they work (their server is running).`);
    const rec: ShareRecord = { id: newId(), kind: 'copy', owner: student.name, createdBy: instructor.name, course: course.code, path: rel, audience: 'instructors', title: '', createdAt: this.now(), expiresAt: this.now() + COPY_TTL_MS };
    await this.sweepCopies();
    await this.keep(rec, data, path.join(this.o.dir, 'copies', rec.id));
    await this.o.repo.create(rec, COPY_TTL_MS);
    await this.o.audit.record({ actor: instructor.name, action: 'course.view-copy', target: student.name, details: { course: course.code, path: rel }, address });
    return rec;
  }

  /**
   * A viewer opens /hub/share/ID: the signed view URL on the share origin, when they are in
   * the audience. Throws ShareNotFound, ShareGone (revoked, expired), ShareNeedsSignIn, ShareForbidden.
   */
  async open(viewer: UserRecord | null, id: string): Promise<string> {
    if (!this.available) throw new SharingUnavailable();
    const rec = await this.live(id);
    const course = await this.o.courses.get(rec.course).catch(() => null);
    if (!course) throw new ShareGone('The course this notebook was shared in no longer exists.', rec.course);
    await this.checkAudience(viewer, rec, course);
    this.o.log.info({ share: rec.id, viewer: viewer?.name ?? null, owner: rec.owner, kind: rec.kind }, 'shared notebook opened');
    return this.viewUrl(rec.id);
  }

  private async checkAudience(viewer: UserRecord | null, rec: ShareRecord, course: CourseRecord): Promise<void> {
    // A share speaks for a member of the course: once its owner has left it (dropped from the
    // roster, no longer an instructor), it shows nothing. live() made sure the owner exists.
    const owner = await this.o.users.get(rec.owner);
    if (rec.kind === 'share' && (!owner || (!this.o.courses.canManage(owner, course) && !(await this.o.courses.isMember(owner, course))))) {
      throw new ShareGone(`${rec.owner} is no longer in ${course.code}, so this notebook is not shared any more.`, `owner ${rec.owner} left ${course.code}`);
    }
    // A course that stops allowing public links makes its "anyone" links classmates-only.
    if (rec.kind === 'share' && rec.audience === 'anyone' && course.shareWithAnyone === true) return;
    if (!viewer || viewer.source === 'anonymous') throw new ShareNeedsSignIn();
    const manage = this.o.courses.canManage(viewer, course);
    if (rec.kind === 'copy') {
      if (manage) return;
      throw new ShareForbidden('This view of a student\'s copy is for the course\'s instructors only.', `${viewer.name} on copy of ${rec.owner}`);
    }
    if (viewer.name === rec.owner || manage) return;
    if (rec.audience === 'instructors') throw new ShareForbidden(`${rec.owner} shared this notebook with the instructors of ${course.code} only.`, `${viewer.name} on share of ${rec.owner}`);
    // Enrolled in THAT course now (a student dropped from its roster is not any more).
    if (!(await this.o.courses.isMember(viewer, course))) throw new ShareForbidden(`${rec.owner} shared this notebook with the students of ${course.code} only, and you are not in that course.`, `${viewer.name} on share of ${rec.owner}`);
  }

  /** The record of a share that still works; ShareNotFound or ShareGone otherwise. */
  private async live(id: string): Promise<ShareRecord> {
    const rec = SHARE_ID_RE.test(id) ? await this.o.repo.get(id) : null;
    if (!rec) throw new ShareNotFound(id.slice(0, 40));
    if (rec.revokedAt) throw new ShareGone(`${rec.owner} has revoked this link: the notebook is not shared any more.`, rec.id);
    if (rec.expiresAt !== undefined && rec.expiresAt <= this.now()) throw new ShareGone('This view of a student\'s copy has expired. Open it again from the dashboard.', rec.id);
    // The owner's account must still be the one that shared: not disabled, not deleted (nor
    // deleted and made again under the same name, which would bring old links back to life).
    const owner = await this.o.users.get(rec.owner);
    if (!owner || owner.createdAt > rec.createdAt) {
      await this.forget(rec);
      throw new ShareGone('The account that shared this notebook no longer exists.', `owner ${rec.owner} gone`);
    }
    if (await this.o.isDisabled(rec.owner)) throw new ShareGone('The account that shared this notebook is disabled, so its links show nothing.', `owner ${rec.owner} disabled`);
    return rec;
  }

  /** The share origin's URL of a share's page, signed and short-lived. */
  viewUrl(id: string): string {
    const expires = this.now() + this.o.viewUrlTtlMs;
    return `${this.o.origin.base()}${id}?e=${expires}&s=${this.sign(id, expires)}`;
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}.${expires}`).digest('base64url');
  }

  /**
   * The page of a signed view URL (the share origin): checks the signature, the expiry and,
   * again, that the share still works. Throws ShareForbidden (bad signature), ShareGone, ShareNotFound.
   */
  async viewPage(ticket: ViewTicket): Promise<{ rec: ShareRecord; html: Buffer }> {
    const want = Buffer.from(this.sign(ticket.id, ticket.expires));
    const got = Buffer.from(ticket.sig);
    if (!SHARE_ID_RE.test(ticket.id) || !Number.isSafeInteger(ticket.expires) || got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new ShareForbidden('This view link is not valid. Open the shared link again.', 'bad signature');
    }
    if (ticket.expires <= this.now()) throw new ShareGone('This view link has expired. Open the shared link again to get a fresh one.', 'view URL expired');
    const rec = await this.live(ticket.id);
    const file = path.join(this.dirOf(rec), 'view.html');
    const html = await fs.readFile(file).catch(() => null);
    if (!html) throw new ShareNotFound(`no snapshot for ${rec.id}`);
    return { rec, html };
  }

  /** The notebook's bytes from the owner's running server, through its contents API. */
  private async snapshot(owner: UserRecord, course: CourseRecord, rel: string, notRunning: string): Promise<Buffer> {
    const route = this.o.routeOf(owner.escapedName);
    if (!route || route.user !== owner.name) throw new ServerNotRunning(notRunning, owner.name);
    const folder = new JupyterFolder(route, course.code, AbortSignal.timeout(this.o.readTimeoutMs));
    let data: Buffer | null;
    try {
      data = await folder.read(rel, this.o.maxBytes);
    } catch (err) {
      if (err instanceof SyncFailed && /larger than/.test(err.message)) throw new BadRequest(`${rel} is too large to share (more than ${Math.round(this.o.maxBytes / 1024 / 1024)} MB).`, err.message);
      // Jupyter answers 403 for a file its account can't read (e.g. a symlink to someone else's file).
      if (err instanceof SyncFailed && /answered 403/.test(err.message)) throw new Forbidden(`The server may not read ${rel} (its account has no permission to read that file).`, err.message);
      throw new ServerNotRunning('The server did not answer when the hub read the notebook. Please try again in a moment.', (err as Error).message);
    }
    if (!data) throw new ShareNotFound(`${owner.name} has no ${course.code}/${rel}`);
    return data;
  }

  /** Render once and keep the snapshot and its page (0600, in a 0700 folder). */
  private async keep(rec: ShareRecord, data: Buffer, dir: string): Promise<void> {
    let rendered;
    try {
      rendered = renderNotebook(data, { vendorBase: '', frames: false, maxHtmlChars: SHARE_HTML_CHARS });
    } catch (err) {
      if (err instanceof NotebookInvalid) throw new BadRequest(`${rec.path} is not a notebook the hub can show (nbformat 4 JSON expected).`, err.detail);
      throw err;
    }
    rec.title = (rendered.title || path.posix.basename(rec.path)).slice(0, 200);
    const note = rendered.bokeh.length ? 'This notebook has interactive plots, which a shared view does not draw: open the notebook to see them.' : null;
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(dir, 'notebook.ipynb'), data, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'view.html'), this.o.page(rec, rendered.html, note), { mode: 0o600 });
  }

  /** Delete copy views past their time (their records expire by themselves). */
  private async sweepCopies(): Promise<void> {
    const dir = path.join(this.o.dir, 'copies');
    const entries = await fs.readdir(dir).catch(() => [] as string[]);
    for (const name of entries) {
      const stat = await fs.stat(path.join(dir, name)).catch(() => null);
      if (stat && stat.mtimeMs + COPY_TTL_MS < this.now()) await fs.rm(path.join(dir, name), { recursive: true, force: true });
    }
  }
}

function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** A notebook inside the course folder: no `..`, absolute paths, backslashes or hidden names. */
export function notebookPath(raw: unknown): string {
  let rel: string;
  try {
    rel = checkCoursePath(typeof raw === 'string' ? raw : '');
  } catch {
    throw new BadRequest('That is not a notebook inside the course folder (no "..", absolute paths or hidden names).', String(raw).slice(0, 200));
  }
  if (!rel.endsWith('.ipynb')) throw new BadRequest('Only notebooks (.ipynb) can be shared.');
  return rel;
}
