import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config/index.js';
import { MemoryStore } from '../../server/store/memory-store.js';
import { CourseFiles, CourseRepo, CourseService, type StudentFolder } from '../../server/courses/index.js';
import type { UserRecord } from '../../server/store/repos.js';
import { BadRequest, Forbidden } from '../../server/errors.js';

const user = (name: string, roles: UserRecord['roles'], extra: Partial<UserRecord> = {}): UserRecord => ({ name, escapedName: name, roles, source: 'saml', createdAt: 0, ...extra });

/** A student's course folder in memory: what the contents API would hold. */
class MemoryFolder implements StudentFolder {
  readonly files = new Map<string, Buffer>();
  async hashes(): Promise<Record<string, string>> {
    const { createHash } = await import('node:crypto');
    return Object.fromEntries([...this.files].map(([p, d]) => [p, createHash('sha256').update(d).digest('hex')]));
  }
  async write(rel: string, data: Buffer): Promise<void> {
    this.files.set(rel, data);
  }
  async rename(from: string, to: string): Promise<void> {
    const d = this.files.get(from);
    if (!d) throw new Error('no such file');
    this.files.delete(from);
    this.files.set(to, d);
  }
}

describe('CourseService: who may join, what a course may use, and merges in a row', () => {
  let store: MemoryStore;
  let dir: string;
  let svc: CourseService;
  const prof = user('crs-prof', ['instructor']);

  beforeEach(() => {
    store = new MemoryStore();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-crs-unit-'));
    svc = new CourseService({
      config: loadConfig({ overrides: { dataDir: dir } }),
      repo: new CourseRepo(store),
      files: new CourseFiles(dir),
      log: pino({ level: 'silent' }),
      profileNames: ['python', 'r'],
      datasetNames: ['census', 'weather'],
    });
  });

  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accepts only configured profiles and datasets (a course mounts its datasets besides the profile\'s)', async () => {
    await assert.rejects(svc.create(prof, { code: 'crs1', title: 'T', profiles: 'gpu' }), BadRequest);
    await assert.rejects(svc.create(prof, { code: 'crs1', title: 'T', profiles: ['python'], datasets: ['gradez'] }), /no dataset named "gradez"/);
    const c = await svc.create(prof, { code: 'crs1', title: 'T', profiles: ['python'], datasets: ['weather'] });
    assert.deepEqual([c.profiles, c.datasets], [['python'], ['weather']]);
    await assert.rejects(svc.create(user('crs-stu', ['student']), { code: 'crs2', title: 'T' }), Forbidden);
  });

  it('lets a roster course be joined by username or e-mail address, and nobody else', async () => {
    const c = await svc.create(prof, { code: 'crs1', title: 'T', enrolment: 'roster' });
    assert.deepEqual(await svc.setRoster(prof, 'crs1', 'email\n"Ann@Uni.example",Ann\ncrs-bob;Bob\n\n'), ['ann@uni.example', 'crs-bob']);
    await svc.enrol(user('crs-ann', ['student'], { email: 'ann@uni.example' }), c);
    await svc.enrol(user('crs-bob', ['student']), c);
    await assert.rejects(svc.enrol(user('crs-eve', ['student'], { email: 'eve@uni.example' }), c), /roster only/);
    await assert.rejects(svc.enrol(user('crs-anon', ['anonymous'], { source: 'anonymous' }), c), /signed-in students only/);
    assert.deepEqual(await svc.students('crs1'), ['crs-ann', 'crs-bob']);
    await assert.rejects(svc.setRoster(user('crs-ann', ['student']), 'crs1', 'crs-eve'), Forbidden);
  });

  it('a conflict is reported once, a third version lands beside again, and a reset keeps the copy aside', async () => {
    const c = await svc.create(prof, { code: 'crs1', title: 'T' });
    const stu = user('crs-stu', ['student']);
    const publish = async (content: string): Promise<void> => {
      const staging = path.join(dir, 'src');
      fs.rmSync(staging, { recursive: true, force: true });
      fs.mkdirSync(path.join(staging, 'files'), { recursive: true });
      // Through the same commit path as an upload: the rollback of a version made by hand.
      fs.writeFileSync(path.join(staging, 'files', 'a.txt'), content);
      const files = await new CourseFiles(dir).manifest(staging, 1e9);
      const repo = new CourseRepo(store);
      const n = (await repo.latest('crs1')) + 1;
      await new CourseFiles(dir).commit('crs1', n, staging, files);
      assert.ok(await repo.addVersion('crs1', { n, publishedAt: Date.now(), publishedBy: prof.name, files }));
    };
    const folder = new MemoryFolder();
    await publish('v1');
    await svc.enrol(stu, c);
    await svc.syncInto(stu, c, folder, 'a.txt');
    folder.files.set('a.txt', Buffer.from('mine'));
    await publish('v2');
    const r2 = await svc.syncInto(stu, c, folder);
    assert.deepEqual(r2.decisions.map((d) => [d.action, d.besidePath]), [['conflict', 'a.v2-from-course.txt']]);
    assert.equal((await svc.syncInto(stu, c, folder)).decisions.length, 0, 'opening again changes nothing');
    await publish('v3');
    const r3 = await svc.syncInto(stu, c, folder);
    assert.deepEqual(r3.decisions.map((d) => [d.action, d.besidePath]), [['conflict', 'a.v3-from-course.txt']]);
    assert.deepEqual((await svc.syncRecord('crs1', stu.name)).conflicts, [{ path: 'a.txt', besidePath: 'a.v3-from-course.txt', version: 3 }]);
    const aside = await svc.reset(stu, c, folder, 'a.txt');
    assert.equal(folder.files.get('a.txt')?.toString(), 'v3');
    assert.equal(folder.files.get(aside ?? '')?.toString(), 'mine');
    assert.deepEqual((await svc.syncRecord('crs1', stu.name)).conflicts, []);
  });
});
