import { randomUUID } from 'node:crypto';
import type { Store } from '../store/store.js';
import { parseRecord } from '../store/repos.js';

/** How students join: by the course link (anyone signed in) or from the instructor's roster only. */
export type Enrolment = 'open' | 'roster';

export interface CourseRecord {
  /** Lower-case letters, digits and "-": the URL segment and the folder name in students' homes. */
  code: string;
  title: string;
  term: string;
  description: string;
  /** Image profiles its students may start (names of dockerProfiles; `default` with the local spawner). The first is used. */
  profiles: string[];
  /** Read-only datasets it uses (names of dockerDatasets). */
  datasets: string[];
  /** Usernames; the first created the course. */
  instructors: string[];
  anonymousAllowed: boolean;
  /** Whether its students may share a notebook read-only with anyone who has the link (server/sharing); unset: no. */
  shareWithAnyone?: boolean;
  enrolment: Enrolment;
  createdAt: number;
}

/** One file of a published version. */
export interface ManifestEntry {
  sha256: string;
  size: number;
}

export interface VersionRecord {
  n: number;
  publishedAt: number;
  publishedBy: string;
  /** path (relative, `/`-separated) -> entry. */
  files: Record<string, ManifestEntry>;
  /** Set when this version restores an older one. */
  rollbackOf?: number;
}

/** What one student last received from a course, and what they were told. */
export interface SyncRecord {
  /** The version they last received (0: none yet). */
  version: number;
  /** path -> sha256 they last received there. */
  received: Record<string, string>;
  /** Open conflicts: their copy at `path` was kept; the course's lives at `besidePath`. */
  conflicts: { path: string; besidePath: string; version: number }[];
  /** Files the course removed while they had edited them. */
  removedEdited: string[];
  /** path -> when they last opened it through a course link (ms). */
  opened: Record<string, number>;
  /** path -> the version they had when they last opened it. */
  openedVersion: Record<string, number>;
  lastActivity?: number;
}

export function emptySync(): SyncRecord {
  return { version: 0, received: {}, conflicts: [], removedEdited: [], opened: {}, openedVersion: {} };
}

const LOCK_TTL_MS = 120_000;

/**
 * Courses in the store. Owns every key it uses:
 * `course:CODE` (record), `courses` (set of codes), `course-latest:CODE` (latest version number),
 * `course-version:CODE:N` (a version's manifest), `course-roster:CODE` (set of usernames and
 * e-mail addresses), `course-students:CODE` (set of enrolled usernames), `user-courses:NAME`
 * (set of codes), `course-sync:CODE:NAME` (a student's sync record), `lock:course:CODE`.
 */
export class CourseRepo {
  constructor(private readonly store: Store) {}

  async get(code: string): Promise<CourseRecord | null> {
    return parseRecord<CourseRecord>(await this.store.get(`course:${code}`));
  }

  async list(): Promise<CourseRecord[]> {
    const codes = (await this.store.setMembers('courses')).sort();
    if (!codes.length) return [];
    const texts = await this.store.getMany(codes.map((c) => `course:${c}`));
    return texts.map((t) => parseRecord<CourseRecord>(t)).filter((c): c is CourseRecord => c !== null);
  }

  /** Create only if the code is free (with the catalog index, in one step). Returns false when taken. */
  async create(course: CourseRecord): Promise<boolean> {
    return this.store.atomic({
      if: [{ type: 'absent', key: `course:${course.code}` }],
      then: [
        { type: 'set', key: `course:${course.code}`, value: JSON.stringify(course) },
        { type: 'setAdd', key: 'courses', members: [course.code] },
        { type: 'set', key: `course-latest:${course.code}`, value: '0' },
      ],
    });
  }

  async put(course: CourseRecord): Promise<void> {
    await this.store.set(`course:${course.code}`, JSON.stringify(course));
  }

  /** The latest version's number (0 before the first publication). */
  async latest(code: string): Promise<number> {
    const n = Number(await this.store.get(`course-latest:${code}`));
    return Number.isInteger(n) && n > 0 ? n : 0;
  }

  async version(code: string, n: number): Promise<VersionRecord | null> {
    return parseRecord<VersionRecord>(await this.store.get(`course-version:${code}:${n}`));
  }

  /**
   * Record version `record.n` as the latest, only if the latest is still `record.n - 1`: of two
   * publishers who read the same latest number, exactly one wins. Returns false for the loser.
   */
  async addVersion(code: string, record: VersionRecord): Promise<boolean> {
    return this.store.atomic({
      if: [{ type: 'equals', key: `course-latest:${code}`, value: String(record.n - 1) }],
      then: [
        { type: 'set', key: `course-version:${code}:${record.n}`, value: JSON.stringify(record) },
        { type: 'set', key: `course-latest:${code}`, value: String(record.n) },
      ],
    });
  }

  /** The per-course publishing lock: an owner token, or null when another publish holds it. */
  async tryLock(code: string): Promise<string | null> {
    const owner = randomUUID();
    return (await this.store.setIfAbsent(`lock:course:${code}`, owner, LOCK_TTL_MS)) ? owner : null;
  }

  async unlock(code: string, owner: string): Promise<void> {
    await this.store.deleteIfEquals(`lock:course:${code}`, owner);
  }

  async roster(code: string): Promise<string[]> {
    return (await this.store.setMembers(`course-roster:${code}`)).sort();
  }

  /** Replace the roster with these lower-case usernames and e-mail addresses. */
  async setRoster(code: string, entries: readonly string[]): Promise<void> {
    const old = await this.store.setMembers(`course-roster:${code}`);
    await this.store.atomic({
      then: [
        ...(old.length ? [{ type: 'setRemove' as const, key: `course-roster:${code}`, members: old }] : []),
        ...(entries.length ? [{ type: 'setAdd' as const, key: `course-roster:${code}`, members: [...entries] }] : []),
      ],
    });
  }

  async students(code: string): Promise<string[]> {
    return (await this.store.setMembers(`course-students:${code}`)).sort();
  }

  async coursesOf(user: string): Promise<string[]> {
    return (await this.store.setMembers(`user-courses:${user}`)).sort();
  }

  /** Enrol a student (both indexes together). Safe to repeat. */
  async enrol(code: string, user: string): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'setAdd', key: `course-students:${code}`, members: [user] },
        { type: 'setAdd', key: `user-courses:${user}`, members: [code] },
      ],
    });
  }

  async sync(code: string, user: string): Promise<SyncRecord> {
    return { ...emptySync(), ...(parseRecord<SyncRecord>(await this.store.get(`course-sync:${code}:${user}`)) ?? {}) };
  }

  async putSync(code: string, user: string, record: SyncRecord, ttlMs?: number): Promise<void> {
    await this.store.set(`course-sync:${code}:${user}`, JSON.stringify(record), ttlMs);
  }
}
