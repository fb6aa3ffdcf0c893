import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import { BadRequest, Conflict, Forbidden, HubError, NotFound } from '../errors.js';
import { emptySync, type CourseRecord, type CourseRepo, type Enrolment, type ManifestEntry, type SyncRecord, type VersionRecord } from './course-repo.js';
import type { CourseFiles } from './course-files.js';
import { parseUpload, UploadRefused, type UploadLimits } from './upload.js';
import { asideName, planMerge, type MergeDecision } from './merge.js';
import type { StudentFolder } from './course-sync.js';

/** The local spawner has one kind of server; courses name it so. */
export const LOCAL_PROFILE = 'default';
const CODE_RE = /^[a-z0-9][a-z0-9-]{1,31}$/;
const LOCK_WAIT_MS = 30_000;
const MB = 1024 * 1024;

export interface CourseInput {
  code?: unknown;
  title?: unknown;
  term?: unknown;
  description?: unknown;
  profiles?: unknown;
  datasets?: unknown;
  coInstructors?: unknown;
  anonymousAllowed?: unknown;
  shareWithAnyone?: unknown;
  enrolment?: unknown;
}

export interface DiffSummary {
  added: string[];
  changed: string[];
  removed: string[];
}

export interface VersionView extends VersionRecord {
  diff: DiffSummary;
}

export interface SyncResult {
  version: number;
  decisions: MergeDecision[];
}

/** A course a signed-in user can see, with what they may do. */
export interface CourseAccess {
  course: CourseRecord;
  manage: boolean;
  enrolled: boolean;
  /** Whether they may open its links (enrolled, or allowed to enrol now). */
  mayOpen: boolean;
}

export interface CourseServiceOptions {
  config: HubConfig;
  repo: CourseRepo;
  files: CourseFiles;
  log: Logger;
  /** Profile names a course may allow (dockerProfiles, or the local spawner's one). */
  profileNames: readonly string[];
  /** Dataset names a course may use (dockerDatasets, or localDatasets); its students' servers mount them besides the profile's. */
  datasetNames: readonly string[];
}

export function diffOf(before: Readonly<Record<string, ManifestEntry>>, after: Readonly<Record<string, ManifestEntry>>): DiffSummary {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const p of Object.keys(after).sort()) {
    if (!Object.hasOwn(before, p)) added.push(p);
    else if (before[p].sha256 !== after[p].sha256) changed.push(p);
  }
  for (const p of Object.keys(before).sort()) if (!Object.hasOwn(after, p)) removed.push(p);
  return { added, changed, removed };
}

const str = (v: unknown, max: number): string => (typeof v === 'string' ? v.trim().slice(0, max) : '');
const names = (v: unknown): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[\s,;]+/) : []).filter((s): s is string => typeof s === 'string' && s.trim() !== '').map((s) => s.trim().toLowerCase());

/**
 * Courses: who may do what, publishing versioned snapshots, rollback, enrolment, and the
 * merge of a version into a student's folder. Every check of who may act is here, so the
 * routes only translate HTTP.
 */
export class CourseService {
  /** Syncs running in this process, per course and student: a double click waits for the first. */
  private readonly syncing = new Map<string, Promise<unknown>>();

  constructor(private readonly o: CourseServiceOptions) {}

  get limits(): UploadLimits {
    const c = this.o.config;
    return { maxFileBytes: c.courseMaxFileMb * MB, maxTotalBytes: c.courseMaxUploadMb * MB, maxFiles: c.courseMaxFiles, maxOutputBytes: c.courseMaxOutputMb * MB };
  }

  get profileNames(): readonly string[] {
    return this.o.profileNames;
  }

  get datasetNames(): readonly string[] {
    return this.o.datasetNames;
  }

  static isInstructor(user: UserRecord): boolean {
    return user.roles.includes('instructor') || user.roles.includes('admin');
  }

  canManage(user: UserRecord, course: CourseRecord): boolean {
    return user.roles.includes('admin') || course.instructors.includes(user.name);
  }

  async get(code: string): Promise<CourseRecord> {
    if (!CODE_RE.test(code)) throw new NotFound('There is no such course.');
    const course = await this.o.repo.get(code);
    if (!course) throw new NotFound('There is no such course.');
    return course;
  }

  async list(): Promise<CourseRecord[]> {
    return this.o.repo.list();
  }

  /** The course, for someone who manages it; Forbidden otherwise. */
  async managed(user: UserRecord, code: string): Promise<CourseRecord> {
    const course = await this.get(code);
    if (!this.canManage(user, course)) throw new Forbidden('Only the instructors of this course can do that.', `${user.name} on ${code}`);
    return course;
  }

  async access(user: UserRecord, course: CourseRecord): Promise<CourseAccess> {
    const manage = this.canManage(user, course);
    const enrolled = (await this.o.repo.coursesOf(user.name)).includes(course.code);
    const mayOpen = manage || enrolled || (await this.mayEnrol(user, course));
    return { course, manage, enrolled, mayOpen };
  }

  /**
   * Enrolled and still allowed in now: a student dropped from a roster course's roster is not
   * a member any more, though their enrolment stays on record (read-only shares ask this).
   */
  async isMember(user: UserRecord, course: CourseRecord): Promise<boolean> {
    return (await this.o.repo.coursesOf(user.name)).includes(course.code) && (await this.mayEnrol(user, course));
  }

  private async mayEnrol(user: UserRecord, course: CourseRecord): Promise<boolean> {
    if (user.source === 'anonymous') return false;
    if (course.enrolment === 'open') return true;
    const roster = new Set(await this.o.repo.roster(course.code));
    return roster.has(user.name.toLowerCase()) || (user.email !== undefined && roster.has(user.email.toLowerCase()));
  }

  /** Enrol the user if they may join (open course or on the roster); Forbidden otherwise. Instructors are never enrolled as students. */
  async enrol(user: UserRecord, course: CourseRecord): Promise<void> {
    if (this.canManage(user, course)) return;
    if ((await this.o.repo.coursesOf(user.name)).includes(course.code)) return;
    if (!(await this.mayEnrol(user, course))) {
      throw new Forbidden(user.source === 'anonymous' ? 'This course is for signed-in students only. Please sign in.' : 'This course is open to its roster only, and you are not on it. Ask your instructor to add you.', `${user.name} on ${course.code}`);
    }
    await this.o.repo.enrol(course.code, user.name);
    this.o.log.info({ course: course.code, user: user.name }, 'student enrolled');
  }

  private parseSettings(input: CourseInput, existing?: CourseRecord): Omit<CourseRecord, 'code' | 'instructors' | 'createdAt'> & { coInstructors: string[] } {
    const title = str(input.title, 200);
    if (!title) throw new BadRequest('Give the course a title.');
    const profiles = names(input.profiles).filter((p, i, a) => a.indexOf(p) === i);
    const unknownProfile = profiles.find((p) => !this.o.profileNames.includes(p));
    if (unknownProfile) throw new BadRequest(`There is no kind of server named ${JSON.stringify(unknownProfile)}.`);
    const datasets = names(input.datasets).filter((p, i, a) => a.indexOf(p) === i);
    const unknownDataset = datasets.find((d) => !this.o.datasetNames.includes(d));
    if (unknownDataset) throw new BadRequest(`There is no dataset named ${JSON.stringify(unknownDataset)}.`);
    const enrolment: Enrolment = input.enrolment === 'roster' ? 'roster' : 'open';
    const chosen = profiles.length ? profiles : (existing?.profiles ?? [this.o.profileNames[0]]);
    // A course's datasets are mounted read-only in its students' servers besides the profile's
    // (the hub passes them at start), so any configured dataset will do.
    return {
      title,
      term: str(input.term, 60),
      description: str(input.description, 4000),
      profiles: chosen,
      datasets,
      anonymousAllowed: input.anonymousAllowed === true || input.anonymousAllowed === 'on' || input.anonymousAllowed === 'true',
      shareWithAnyone: input.shareWithAnyone === true || input.shareWithAnyone === 'on' || input.shareWithAnyone === 'true',
      enrolment,
      coInstructors: names(input.coInstructors),
    };
  }

  /** Create a course; the creator is its first instructor. Only instructors and admins. */
  async create(user: UserRecord, input: CourseInput): Promise<CourseRecord> {
    if (!CourseService.isInstructor(user)) throw new Forbidden('Only instructors can create courses.', user.name);
    const code = str(input.code, 40).toLowerCase();
    if (!CODE_RE.test(code)) throw new BadRequest('A course code is 2 to 32 lower-case letters, digits or "-", starting with a letter or digit (e.g. cs101).');
    const { coInstructors, ...settings } = this.parseSettings(input);
    const course: CourseRecord = { code, ...settings, instructors: [user.name, ...coInstructors.filter((n) => n !== user.name)], createdAt: Date.now() };
    if (!(await this.o.repo.create(course))) throw new Conflict(`A course with the code ${code} exists already.`);
    this.o.log.info({ course: code, user: user.name }, 'course created');
    return course;
  }

  async update(user: UserRecord, code: string, input: CourseInput): Promise<CourseRecord> {
    const course = await this.managed(user, code);
    const { coInstructors, ...settings } = this.parseSettings(input, course);
    const owner = course.instructors[0];
    const next: CourseRecord = { ...course, ...settings, instructors: [owner, ...coInstructors.filter((n) => n !== owner)] };
    // A co-instructor can't drop themselves by accident and lose the page they are on; admins can.
    if (!this.canManage(user, next) && !user.roles.includes('admin')) next.instructors.push(user.name);
    await this.o.repo.put(next);
    this.o.log.info({ course: code, user: user.name }, 'course settings changed');
    return next;
  }

  /** Replace the roster from CSV text: one username or e-mail address per line, first column; a header line is skipped. */
  async setRoster(user: UserRecord, code: string, csv: string): Promise<string[]> {
    await this.managed(user, code);
    if (csv.length > 1_000_000) throw new BadRequest('The roster is too long (at most 1 MB).');
    const entries = new Set<string>();
    for (const line of csv.split(/\r?\n/)) {
      const first = line.split(/[,;\t]/)[0]?.trim().replace(/^"|"$/g, '').toLowerCase() ?? '';
      if (!first || /^(user(name)?|e-?mail|login|name)$/.test(first)) continue;
      if (!/^[^\s<>"']{1,254}$/.test(first)) throw new BadRequest(`The roster line ${JSON.stringify(line.slice(0, 80))} does not start with a username or e-mail address.`);
      entries.add(first);
    }
    await this.o.repo.setRoster(code, [...entries]);
    this.o.log.info({ course: code, user: user.name, entries: entries.size }, 'roster replaced');
    return [...entries].sort();
  }

  async roster(code: string): Promise<string[]> {
    return this.o.repo.roster(code);
  }

  async students(code: string): Promise<string[]> {
    return this.o.repo.students(code);
  }

  async coursesOf(user: string): Promise<string[]> {
    return this.o.repo.coursesOf(user);
  }

  async latest(code: string): Promise<VersionRecord | null> {
    const n = await this.o.repo.latest(code);
    return n ? this.o.repo.version(code, n) : null;
  }

  /** Every version, newest first, each with what changed from the one before. */
  async history(code: string): Promise<VersionView[]> {
    const n = await this.o.repo.latest(code);
    const out: VersionView[] = [];
    let after: VersionRecord | null = null;
    for (let i = n; i >= 1; i--) {
      const v = await this.o.repo.version(code, i);
      if (!v) continue;
      if (after) out[out.length - 1].diff = diffOf(v.files, after.files);
      out.push({ ...v, diff: { added: Object.keys(v.files).sort(), changed: [], removed: [] } });
      after = v;
    }
    return out;
  }

  /**
   * Publish an upload (multipart, see parseUpload) as the next version. With `replace` off the
   * files of the latest version that the upload does not hold are kept. Everything is written
   * to a staging folder and checked before a single rename makes the version; a refused upload
   * leaves nothing behind. Throws UploadRefused with a message for the instructor.
   */
  async publish(user: UserRecord, code: string, req: IncomingMessage): Promise<VersionRecord> {
    await this.managed(user, code);
    const staging = await this.o.files.staging(code);
    try {
      const upload = await parseUpload(req, staging, this.limits);
      if (!upload.files.length) throw new UploadRefused('Choose at least one notebook, data file or zip to publish.');
      const replace = upload.fields.replace === 'on' || upload.fields.replace === 'true';
      return await this.commitStaging(user, code, staging, { replace, uploaded: upload.files });
    } catch (err) {
      await this.o.files.discard(staging);
      if (!(err instanceof HubError)) this.o.log.error({ course: code, err: (err as Error).message }, 'publishing failed');
      else this.o.log.warn({ course: code, user: user.name, reason: err.message }, 'upload refused');
      throw err;
    }
  }

  /**
   * Publish a folder of the instructor's own running server as the next version: `copy` fills
   * the staging folder (copyServerFolder: through the server's contents API, with the upload
   * limits), then the same checks and commit as an upload. With `replace` the version is the
   * folder; without it files of the latest version not in the folder are kept. Bad content:
   * UploadRefused, and nothing changes.
   */
  async publishFromServer(user: UserRecord, code: string, folder: string, replace: boolean, copy: (staging: string, limits: UploadLimits) => Promise<string[]>): Promise<VersionRecord> {
    await this.managed(user, code);
    const staging = await this.o.files.staging(code);
    try {
      const uploaded = await copy(staging, this.limits);
      return await this.commitStaging(user, code, staging, { replace, uploaded });
    } catch (err) {
      await this.o.files.discard(staging);
      if (!(err instanceof HubError)) this.o.log.warn({ course: code, user: user.name, folder, err: (err as Error).message }, 'publishing from a server failed');
      else this.o.log.warn({ course: code, user: user.name, folder, reason: err.message }, 'folder from a server refused');
      throw err;
    }
  }

  /** A new version equal to version `n` (history stays: nothing is ever deleted). */
  async rollback(user: UserRecord, code: string, n: number): Promise<VersionRecord> {
    await this.managed(user, code);
    const old = Number.isInteger(n) ? await this.o.repo.version(code, n) : null;
    if (!old) throw new NotFound(`Version ${n} of ${code} does not exist.`);
    const staging = await this.o.files.staging(code);
    try {
      await this.o.files.copyAll(code, n, Object.keys(old.files), staging);
      return await this.commitStaging(user, code, staging, { replace: true, uploaded: Object.keys(old.files), rollbackOf: n });
    } catch (err) {
      await this.o.files.discard(staging);
      throw err;
    }
  }

  private async commitStaging(user: UserRecord, code: string, staging: string, opts: { replace: boolean; uploaded: readonly string[]; rollbackOf?: number }): Promise<VersionRecord> {
    const owner = await this.lock(code);
    try {
      const latestN = await this.o.repo.latest(code);
      const latest = latestN ? await this.o.repo.version(code, latestN) : null;
      if (latest && !opts.replace) {
        const uploaded = new Set(opts.uploaded);
        await this.o.files.carryOver(code, latestN, Object.keys(latest.files).filter((p) => !uploaded.has(p)), staging);
      }
      const files = await this.o.files.manifest(staging, this.limits.maxOutputBytes);
      if (Object.keys(files).length > this.o.config.courseMaxFiles) throw new UploadRefused(`A version may hold at most ${this.o.config.courseMaxFiles} files (courseMaxFiles).`, 413);
      if (latest) {
        const d = diffOf(latest.files, files);
        if (!d.added.length && !d.changed.length && !d.removed.length) throw new UploadRefused(`Nothing changed: these files are exactly version ${latestN}. Nothing was published.`);
      }
      const record: VersionRecord = { n: latestN + 1, publishedAt: Date.now(), publishedBy: user.name, files, ...(opts.rollbackOf ? { rollbackOf: opts.rollbackOf } : {}) };
      await this.o.files.commit(code, record.n, staging, files);
      if (!(await this.o.repo.addVersion(code, record))) {
        // Only if the lock expired under us: the store's numbering still keeps versions whole.
        await this.o.files.removeVersion(code, record.n);
        throw new Conflict('Another publication of this course finished first. Please publish again.');
      }
      this.o.log.info({ course: code, user: user.name, version: record.n, files: Object.keys(files).length, rollbackOf: opts.rollbackOf }, 'course version published');
      return record;
    } finally {
      await this.o.repo.unlock(code, owner);
    }
  }

  private async lock(code: string): Promise<string> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      const owner = await this.o.repo.tryLock(code);
      if (owner) return owner;
      if (Date.now() > deadline) throw new Conflict('Another publication of this course is still running. Please try again in a minute.');
      await sleep(100);
    }
  }

  async readFile(code: string, n: number, rel: string): Promise<Buffer> {
    return this.o.files.read(code, n, rel);
  }

  async syncRecord(code: string, user: string): Promise<SyncRecord> {
    return this.o.repo.sync(code, user);
  }

  /**
   * Bring the latest version into the student's folder by the merge rules (merge.ts), and
   * record what they received. Repeating it is safe; concurrent calls for one student and
   * course in this process run one after the other. Throws SyncFailed when the server does not answer.
   */
  async syncInto(user: UserRecord, course: CourseRecord, folder: StudentFolder, opened?: string): Promise<SyncResult> {
    const key = `${course.code}\n${user.name}`;
    const previous = this.syncing.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.syncNow(user, course, folder, opened));
    this.syncing.set(key, run);
    try {
      return await run;
    } finally {
      if (this.syncing.get(key) === run) this.syncing.delete(key);
    }
  }

  private async syncNow(user: UserRecord, course: CourseRecord, folder: StudentFolder, opened?: string): Promise<SyncResult> {
    const latest = await this.latest(course.code);
    const record = await this.o.repo.sync(course.code, user.name);
    let decisions: MergeDecision[] = [];
    if (latest && latest.n !== record.version) {
      const local = await folder.hashes();
      const upstream = Object.fromEntries(Object.entries(latest.files).map(([p, e]) => [p, e.sha256]));
      decisions = planMerge({ base: record.received, upstream, local, version: latest.n });
      const received: Record<string, string> = {};
      const conflicts = record.conflicts.filter((c) => Object.hasOwn(latest.files, c.path));
      const removedEdited = new Set(record.removedEdited);
      for (const d of decisions) {
        if (d.action === 'add' || d.action === 'update' || d.action === 'restore') await folder.write(d.path, await this.readFile(course.code, latest.n, d.path));
        if (d.action === 'conflict' && d.besidePath) {
          await folder.write(d.besidePath, await this.readFile(course.code, latest.n, d.path));
          const at = conflicts.findIndex((c) => c.path === d.path);
          if (at >= 0) conflicts.splice(at, 1);
          conflicts.push({ path: d.path, besidePath: d.besidePath, version: latest.n });
        }
        if (d.action === 'same') {
          const at = conflicts.findIndex((c) => c.path === d.path);
          if (at >= 0) conflicts.splice(at, 1);
        }
        if (d.action === 'removed-upstream-edited') removedEdited.add(d.path);
        if (d.received !== undefined) received[d.path] = d.received;
      }
      record.version = latest.n;
      record.received = received;
      record.conflicts = conflicts;
      record.removedEdited = [...removedEdited].sort();
      this.o.log.info({ course: course.code, user: user.name, version: latest.n, actions: decisions.filter((d) => !['keep', 'same', 'gone'].includes(d.action)).map((d) => `${d.action}:${d.path}`) }, 'course files synced');
    }
    const now = Date.now();
    if (opened !== undefined) {
      record.opened[opened] = now;
      record.openedVersion[opened] = record.version;
    }
    record.lastActivity = now;
    // A visitor's workspace lives at most tryMaxAgeS; so does what the hub remembers of it.
    await this.o.repo.putSync(course.code, user.name, record, user.source === 'anonymous' ? this.o.config.tryMaxAgeS * 1000 : undefined);
    return { version: record.version, decisions };
  }

  /**
   * Reset one file to the course's latest version: the student's copy is renamed aside first
   * (`lab1.mine-20261201-2130.ipynb`), never deleted. Returns where their copy went, if anywhere.
   */
  async reset(user: UserRecord, course: CourseRecord, folder: StudentFolder, rel: string): Promise<string | undefined> {
    const latest = await this.latest(course.code);
    if (!latest || !Object.hasOwn(latest.files, rel)) throw new NotFound('The course has no such file.');
    const key = `${course.code}\n${user.name}`;
    const previous = this.syncing.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(async () => {
      const local = await folder.hashes();
      let aside: string | undefined;
      if (Object.hasOwn(local, rel) && local[rel] !== latest.files[rel].sha256) {
        aside = asideName(rel, new Date(), new Set(Object.keys(local)));
        await folder.rename(rel, aside);
      }
      await folder.write(rel, await this.readFile(course.code, latest.n, rel));
      const record = await this.o.repo.sync(course.code, user.name);
      record.received[rel] = latest.files[rel].sha256;
      record.conflicts = record.conflicts.filter((c) => c.path !== rel);
      await this.o.repo.putSync(course.code, user.name, record);
      this.o.log.info({ course: course.code, user: user.name, file: rel, aside }, 'file reset to the course version');
      return aside;
    });
    this.syncing.set(key, run);
    try {
      return await run;
    } finally {
      if (this.syncing.get(key) === run) this.syncing.delete(key);
    }
  }
}

export { emptySync };
