/**
 * The merge rules for bringing a new course version into a student's folder: a pure function,
 * so every case is a row of a table test (test/unit/course-merge.test.ts). Nothing here reads
 * or writes files; course-sync.ts carries the decisions out.
 *
 * Per path, three hashes decide:
 * - `base`: what the student last received from the course at that path (none if never);
 * - `upstream`: what the new version has there (none if the instructor removed it);
 * - `local`: what the student's folder has there now (none if missing).
 * A student's copy is never overwritten or deleted: when theirs differs from what they last
 * received, the course's new file lands beside it (`lab1.v2-from-course.ipynb`).
 */

export type MergeAction =
  /** New in the course, nothing at that path: the file arrives. */
  | 'add'
  /** Untouched by the student, changed by the instructor: the new version replaces it. */
  | 'update'
  /** Nothing to do: the student has what the course has. */
  | 'same'
  /** Untouched and unchanged. */
  | 'keep'
  /** Edited by the student, unchanged upstream: it stays theirs, nothing to say. */
  | 'keep-edited'
  /** Deleted by the student, unchanged upstream: it stays deleted. */
  | 'stay-deleted'
  /** Renamed by the student (their copy lives on under another name), unchanged upstream: nothing comes back. */
  | 'stay-renamed'
  /** Deleted (or renamed) by the student, but the instructor changed it: the new version comes back at its path. */
  | 'restore'
  /** Edited by the student and changed upstream (or a file of the student's own at a new course path): the new version lands beside it. */
  | 'conflict'
  /** Removed upstream, untouched: the student's copy stays (it is only the old course file), no longer tracked. */
  | 'untrack'
  /** Removed upstream, edited by the student: it stays theirs, and they are told the course no longer has it. */
  | 'removed-upstream-edited'
  /** Removed upstream and already gone locally. */
  | 'gone';

export interface MergeDecision {
  path: string;
  action: MergeAction;
  /** For 'conflict': where the course's version is written, beside the student's. */
  besidePath?: string;
  /** What the student has received at `path` after this decision (the next merge's base); none: untracked. */
  received?: string;
}

export interface MergeInput {
  /** Hashes the student last received, by path (their sync record). */
  base: Readonly<Record<string, string>>;
  /** Hashes of the new version, by path (its manifest). */
  upstream: Readonly<Record<string, string>>;
  /** Hashes of the files in the student's course folder now, by path (every file, tracked or not). */
  local: Readonly<Record<string, string>>;
  /** The new version's number, for names of files written beside a student's copy. */
  version: number;
}

/** The decision for every path the student received or the new version has, sorted by path. */
export function planMerge(input: MergeInput): MergeDecision[] {
  const { base, upstream, local, version } = input;
  const own = (o: Readonly<Record<string, string>>, k: string): string | undefined => (Object.hasOwn(o, k) ? o[k] : undefined);
  const paths = [...new Set([...Object.keys(base), ...Object.keys(upstream)])].sort();
  // Names in use, so a file written beside never replaces another (a second conflict, a student's own file).
  const taken = new Set([...Object.keys(local), ...Object.keys(upstream)]);
  const localHashes = new Set(Object.values(local));
  const out: MergeDecision[] = [];
  for (const path of paths) {
    const b = own(base, path);
    const u = own(upstream, path);
    const l = own(local, path);
    out.push(decide(path, b, u, l));
  }
  return out;

  function decide(path: string, b: string | undefined, u: string | undefined, l: string | undefined): MergeDecision {
    if (u === undefined) {
      // The instructor removed it. Nothing of the student's is ever deleted.
      if (l === undefined) return { path, action: 'gone' };
      return { path, action: l === b ? 'untrack' : 'removed-upstream-edited' };
    }
    if (l !== undefined && l === b && u === b) return { path, action: 'keep', received: u };
    if (l === u) return { path, action: 'same', received: u };
    if (l === undefined) {
      if (b === undefined) return { path, action: 'add', received: u };
      if (u !== b) return { path, action: 'restore', received: u };
      // Renamed: the file the student received is still in their folder under another name.
      return { path, action: localHashes.has(b) ? 'stay-renamed' : 'stay-deleted', received: b };
    }
    if (l === b) return { path, action: u === b ? 'keep' : 'update', received: u };
    // The student's own content at this path: edited, or a file of theirs the course now also has.
    if (u === b) return { path, action: 'keep-edited', received: b };
    return { path, action: 'conflict', besidePath: besideName(path, version, taken), received: u };
  }
}

/** `lab1.ipynb` -> `lab1.v2-from-course.ipynb` (then `-2`, `-3` while that name is taken); reserves the name in `taken`. */
export function besideName(path: string, version: number, taken: Set<string>): string {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash + 1);
  const file = path.slice(slash + 1);
  const dot = file.lastIndexOf('.');
  const stem = dot > 0 ? file.slice(0, dot) : file;
  const ext = dot > 0 ? file.slice(dot) : '';
  for (let i = 1; ; i++) {
    const candidate = `${dir}${stem}.v${version}-from-course${i === 1 ? '' : `-${i}`}${ext}`;
    if (!taken.has(candidate)) {
      taken.add(candidate);
      return candidate;
    }
  }
}

/** Where a student's copy is kept aside when they reset a notebook to the course version: `lab1.mine-20261201-2130.ipynb`. */
export function asideName(path: string, at: Date, taken: ReadonlySet<string>): string {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash + 1);
  const file = path.slice(slash + 1);
  const dot = file.lastIndexOf('.');
  const stem = dot > 0 ? file.slice(0, dot) : file;
  const ext = dot > 0 ? file.slice(dot) : '';
  const stamp = at.toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  for (let i = 1; ; i++) {
    const candidate = `${dir}${stem}.mine-${stamp}${i === 1 ? '' : `-${i}`}${ext}`;
    if (!taken.has(candidate)) return candidate;
  }
}
