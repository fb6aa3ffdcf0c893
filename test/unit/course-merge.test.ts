import assert from 'node:assert/strict';
import { asideName, besideName, planMerge, type MergeAction } from '../../server/courses/merge.js';

/**
 * The merge rules, one row per case. Hashes are letters: A is what the student received (v1),
 * B the instructor's new version, E the student's own edit. `local` lists every file in the
 * student's course folder; `-` means missing.
 */
interface Row {
  story: string;
  base?: string;
  upstream?: string;
  local?: string;
  /** Other files in the student's folder (path -> hash), e.g. a renamed copy. */
  others?: Record<string, string>;
  action: MergeAction;
  /** What the student has received at the path afterwards (undefined: untracked). */
  received?: string;
  beside?: string;
  /** Whether the student's file at the path is replaced by the course's. */
  writesOverTheirs?: boolean;
}

const P = 'lab1.ipynb';
const rows: Row[] = [
  { story: 'untouched, unchanged upstream: nothing happens', base: 'A', upstream: 'A', local: 'A', action: 'keep', received: 'A' },
  { story: 'untouched, changed upstream: the new version arrives', base: 'A', upstream: 'B', local: 'A', action: 'update', received: 'B', writesOverTheirs: true },
  { story: 'a new file of the course arrives', upstream: 'B', action: 'add', received: 'B' },
  { story: "a new course file whose name the student already uses lands beside the student's", upstream: 'B', local: 'E', action: 'conflict', received: 'B', beside: 'lab1.v2-from-course.ipynb' },
  { story: 'edited, unchanged upstream: it stays theirs, silently', base: 'A', upstream: 'A', local: 'E', action: 'keep-edited', received: 'A' },
  { story: 'edited, changed upstream: theirs stays, the new version lands beside it', base: 'A', upstream: 'B', local: 'E', action: 'conflict', received: 'B', beside: 'lab1.v2-from-course.ipynb' },
  { story: 'edited to exactly the new version: nothing to do', base: 'A', upstream: 'B', local: 'B', action: 'same', received: 'B' },
  { story: 'deleted, unchanged upstream: it stays deleted', base: 'A', upstream: 'A', action: 'stay-deleted', received: 'A' },
  { story: 'deleted, changed upstream: the new version comes back', base: 'A', upstream: 'B', action: 'restore', received: 'B' },
  { story: 'renamed, unchanged upstream: nothing comes back, the renamed copy is theirs', base: 'A', upstream: 'A', others: { 'my-lab1.ipynb': 'A' }, action: 'stay-renamed', received: 'A' },
  { story: 'renamed, changed upstream: the new version arrives at the old name, the renamed copy is untouched', base: 'A', upstream: 'B', others: { 'my-lab1.ipynb': 'A' }, action: 'restore', received: 'B' },
  { story: 'edited and deleted upstream: it stays theirs, and they are told', base: 'A', local: 'E', action: 'removed-upstream-edited' },
  { story: 'untouched and deleted upstream: their copy stays, untracked', base: 'A', local: 'A', action: 'untrack' },
  { story: 'deleted by both: nothing', base: 'A', action: 'gone' },
];

describe('course merge rules: a new version never clobbers a student\'s work', () => {
  for (const row of rows) {
    it(row.story, () => {
      const local: Record<string, string> = { ...(row.others ?? {}) };
      if (row.local) local[P] = row.local;
      const [d, ...rest] = planMerge({ base: row.base ? { [P]: row.base } : {}, upstream: row.upstream ? { [P]: row.upstream } : {}, local, version: 2 });
      assert.equal(rest.length, 0, 'only the tracked path is decided (the renamed copy is not the course\'s)');
      assert.equal(d.path, P);
      assert.equal(d.action, row.action);
      assert.equal(d.received, row.received);
      assert.equal(d.besidePath, row.beside);
      // The only action that replaces the file at the path is an update of an untouched file
      // (or add/restore where nothing is): never a file whose content differs from what the student received.
      const replaces = ['update', 'add', 'restore'].includes(d.action);
      if (replaces) assert.ok(row.local === undefined || row.local === row.base, 'writes only over an untouched or missing file');
      if (row.writesOverTheirs) assert.equal(d.action, 'update');
    });
  }

  it('decides every path of a whole folder at once, sorted, and never over a student\'s own untracked file', () => {
    const plan = planMerge({
      base: { 'a.ipynb': 'A1', 'b.ipynb': 'B1', 'data/x.csv': 'X1' },
      upstream: { 'a.ipynb': 'A2', 'b.ipynb': 'B1', 'data/x.csv': 'X2', 'c.ipynb': 'C1' },
      local: { 'a.ipynb': 'mine', 'b.ipynb': 'B1', 'notes.txt': 'N', 'a.v3-from-course.ipynb': 'old' },
      version: 3,
    });
    assert.deepEqual(
      plan.map((d) => [d.path, d.action, d.besidePath ?? '']),
      [
        ['a.ipynb', 'conflict', 'a.v3-from-course-2.ipynb'],
        ['b.ipynb', 'keep', ''],
        ['c.ipynb', 'add', ''],
        ['data/x.csv', 'restore', ''],
      ],
    );
  });

  it('names files beside and aside clearly, in the same folder, without taking a used name', () => {
    const taken = new Set(['week1/lab.v2-from-course.ipynb']);
    assert.equal(besideName('week1/lab.ipynb', 2, taken), 'week1/lab.v2-from-course-2.ipynb');
    assert.equal(besideName('README', 4, new Set()), 'README.v4-from-course');
    assert.equal(asideName('lab1.ipynb', new Date('2026-12-01T21:30:00Z'), new Set()), 'lab1.mine-20261201-2130.ipynb');
    assert.equal(asideName('lab1.ipynb', new Date('2026-12-01T21:30:00Z'), new Set(['lab1.mine-20261201-2130.ipynb'])), 'lab1.mine-20261201-2130-2.ipynb');
  });

  it('ignores hostile path names like __proto__ as plain paths', () => {
    const plan = planMerge({ base: {}, upstream: { __proto__x: 'A', constructor: 'B' }, local: { constructor: 'B' }, version: 1 });
    assert.deepEqual(plan.map((d) => [d.path, d.action]), [['__proto__x', 'add'], ['constructor', 'same']]);
  });
});
