import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { startTestHub, waitForReady } from '../helpers/hub.js';
import { HubClient } from '../helpers/client.js';
import { xsrfToken } from '../helpers/kernel.js';
import { escapeName } from '../../server/names.js';
import { createUsersWithRoles, notebook, signedIn, upload } from '../helpers/courses.js';

type Who = { client: HubClient; csrf: string };

/**
 * Read-only sharing and "view this student's copy" (issue 11) against a real hub: real
 * JupyterLab servers (local spawner, one Unix account each), the real proxy and origins.
 * The authorization matrix: who may open which share, through which URL.
 */
describe('sharing: read-only notebook links and the instructor\'s view of a student\'s copy', function () {
  this.timeout(240_000);
  let hub: Hub;
  let prof: Who; // instructor of shr101
  let prof2: Who; // instructor of shr202
  let ann: Who; // student of shr101 and shr202, with a running server
  let bob: Who; // student of shr101, no server
  let cy: Who; // student of shr202 only
  let dan: Who; // in no course
  const annEsc = escapeName('shr-ann');
  let classmatesShare = '';
  let instructorsShare = '';
  let copyView = '';

  const annWrites = async (rel: string, content: string): Promise<void> => {
    const xsrf = await xsrfToken(ann.client, annEsc);
    const r = await ann.client.request('PUT', `/user/${annEsc}/api/contents/${rel}`, {
      headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf, accept: 'application/json' },
      body: JSON.stringify({ type: 'file', format: 'text', content }),
    });
    assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.body}`);
  };
  const share = (who: Who, fields: Record<string, string>) => who.client.request('POST', '/hub/shares', { form: { _csrf: who.csrf, ...fields }, headers: { accept: 'application/json' } });
  const shareId = (r: { status: number; body: string }): string => {
    assert.equal(r.status, 201, r.body);
    return (JSON.parse(r.body) as { id: string }).id;
  };
  /** /hub/share/ID for this client: the hub's answer and, when it redirects to the share origin, that page. */
  const open = async (who: HubClient, id: string) => {
    const hubReply = await who.get(`/hub/share/${id}`);
    const view = hubReply.status === 303 && hubReply.location ? await who.get(hubReply.location) : null;
    return { hub: hubReply, view };
  };
  const viewCopy = (who: Who, code: string, student: string, p: string) =>
    who.client.request('POST', `/hub/courses/${code}/students/${student}/view`, { form: { _csrf: who.csrf, path: p }, headers: { accept: 'application/json' } });
  const logText = (): string => fs.readFileSync(path.resolve(__dirname, '../../test-output/sharing.log'), 'utf8');

  before(async () => {
    // At most 4 live links each: ann makes 3 before the limit is tried.
    hub = await startTestHub('sharing', { shareMaxPerUser: 4 });
    await createUsersWithRoles(hub, {
      'shr-prof': { password: 'shr-prof-password', roles: ['instructor'] },
      'shr-prof2': { password: 'shr-prof2-password', roles: ['instructor'] },
      'shr-ann': { password: 'shr-ann-password', roles: ['student'] },
      'shr-bob': { password: 'shr-bob-password', roles: ['student'] },
      'shr-cy': { password: 'shr-cy-password', roles: ['student'] },
      'shr-dan': { password: 'shr-dan-password', roles: ['student'] },
      'shv-co': { password: 'shv-co-password', roles: ['instructor'] },
    });
    [prof, prof2, ann, bob, cy, dan] = await Promise.all(['prof', 'prof2', 'ann', 'bob', 'cy', 'dan'].map((n) => signedIn(hub, `shr-${n}`, `shr-${n}-password`)));
    for (const [who, code] of [[prof, 'shr101'], [prof2, 'shr202']] as const) {
      assert.equal((await who.client.request('POST', '/hub/courses', { form: { _csrf: who.csrf, code, title: `Course ${code}` } })).status, 303);
      const r = await upload(who.client, who.csrf, `/hub/courses/${code}/publish`, [{ name: 'lab1.ipynb', data: notebook(`print("${code} course version")`) }]);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    for (const [who, code] of [[bob, 'shr101'], [cy, 'shr202'], [ann, 'shr202']] as const) {
      assert.equal((await who.client.request('POST', `/hub/courses/${code}/join`, { form: { _csrf: who.csrf } })).status, 303);
    }
    // Ann opens the course link: her server starts and gets her copy; then she works on it.
    const first = await ann.client.get('/hub/courses/shr101/open/lab1.ipynb');
    assert.equal(first.status, 302);
    await waitForReady(ann.client, annEsc);
    assert.match((await ann.client.follow('/hub/courses/shr101/open/lab1.ipynb')).path, /\/lab\/tree\/shr101\/lab1\.ipynb$/);
    assert.match((await ann.client.follow('/hub/courses/shr202/open/lab1.ipynb')).path, /\/lab\/tree\/shr202\/lab1\.ipynb$/);
    await annWrites('shr101/lab1.ipynb', notebook('answer = 42', [{ output_type: 'stream', name: 'stdout', text: 'ann-s answer 42\n' }]));
  });

  after(async () => {
    await hub?.close();
  });

  it('a student shares her own copy (a snapshot of it) and the classmate sees it on the share origin, sanitised and sandboxed', async () => {
    classmatesShare = shareId(await share(ann, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' }));
    const { hub: h, view } = await open(bob.client, classmatesShare);
    assert.equal(h.status, 303);
    const url = new URL(h.location ?? '');
    assert.equal(url.origin, `http://oerhub-share.localhost:${new URL(hub.url).port}`);
    assert.notEqual(url.origin, new URL(hub.url).origin);
    assert.equal(view?.status, 200, view?.body);
    assert.match(view?.body ?? '', /ann-s answer 42/);
    assert.doesNotMatch(view?.body ?? '', /course version/);
    const csp = view?.headers.get('content-security-policy') ?? '';
    assert.match(csp, /(^|; )sandbox(;|$)/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /allow-scripts|script-src/);
    assert.equal(view?.headers.get('set-cookie'), null);
    // The snapshot is kept in the hub's data folder; later edits are not in it.
    assert.ok(fs.existsSync(path.join(hub.config.dataDir, 'shares', classmatesShare, 'notebook.ipynb')));
    // Only the hub's account reads it (no student's account can, whatever their server runs).
    for (const f of ['notebook.ipynb', 'view.html']) assert.equal(fs.statSync(path.join(hub.config.dataDir, 'shares', classmatesShare, f)).mode & 0o777, 0o600, f);
    for (const d of ['shares', `shares/${classmatesShare}`]) assert.equal(fs.statSync(path.join(hub.config.dataDir, d)).mode & 0o777, 0o700, d);
    await annWrites('shr101/lab1.ipynb', notebook('answer = 43', [{ output_type: 'stream', name: 'stdout', text: 'ann changed it\n' }]));
    assert.match((await open(bob.client, classmatesShare)).view?.body ?? '', /ann-s answer 42/);
    // The owner sees it in her list, with its link.
    const list = await ann.client.get('/hub/shares');
    assert.match(list.body, new RegExp(`data-share="${classmatesShare}"[\\s\\S]*?/hub/share/${classmatesShare}`));
  });

  it('a classmates share is refused to someone not in the course, and signed-out viewers go through sign-in and back', async () => {
    for (const who of [dan, cy]) {
      const { hub: h, view } = await open(who.client, classmatesShare);
      assert.equal(h.status, 403, h.body);
      assert.match(h.body, /students of shr101 only/);
      assert.equal(view, null);
    }
    const anon = new HubClient(hub.url);
    const r = await anon.get(`/hub/share/${classmatesShare}`);
    assert.equal(r.status, 302);
    assert.equal(r.location, `/hub/login?next=${encodeURIComponent(`/hub/share/${classmatesShare}`)}`);
    const login = await anon.login('shr-bob', 'shr-bob-password', `/hub/share/${classmatesShare}`);
    assert.equal(login.location, `/hub/share/${classmatesShare}`);
    assert.equal((await open(anon, classmatesShare)).view?.status, 200);
  });

  it('an instructors-only share is refused to a classmate; the course\'s instructor sees it, another course\'s does not', async () => {
    instructorsShare = shareId(await share(ann, { course: 'shr101', path: 'lab1.ipynb', audience: 'instructors' }));
    const asBob = await open(bob.client, instructorsShare);
    assert.equal(asBob.hub.status, 403);
    assert.match(asBob.hub.body, /instructors of shr101 only/);
    assert.equal((await open(prof.client, instructorsShare)).view?.status, 200);
    assert.equal((await open(prof2.client, instructorsShare)).hub.status, 403);
  });

  it('"anyone" needs the course\'s setting; then a link opens without an account', async () => {
    const refused = await share(ann, { notebook: 'shr101/lab1.ipynb', audience: 'anyone' });
    assert.equal(refused.status, 400);
    assert.match(refused.body, /does not allow sharing with anyone/);
    const settings = await prof.client.request('POST', '/hub/courses/shr101/settings', { form: { _csrf: prof.csrf, title: 'Course shr101', shareWithAnyone: 'on' } });
    assert.equal(settings.status, 303);
    const id = shareId(await share(ann, { notebook: 'shr101/lab1.ipynb', audience: 'anyone' }));
    const { hub: h, view } = await open(new HubClient(hub.url), id);
    assert.equal(h.status, 303);
    assert.equal(view?.status, 200);
    // The course turns it off again: the link is classmates-only from then on.
    await prof.client.request('POST', '/hub/courses/shr101/settings', { form: { _csrf: prof.csrf, title: 'Course shr101' } });
    assert.equal((await new HubClient(hub.url).get(`/hub/share/${id}`)).status, 302);
    assert.equal((await open(dan.client, id)).hub.status, 403);
  });

  it('sharing needs the XSRF token, a course the sharer is in, and a notebook path inside the course folder', async () => {
    assert.equal((await ann.client.request('POST', '/hub/shares', { form: { notebook: 'shr101/lab1.ipynb', audience: 'classmates' } })).status, 403);
    const dans = await share(dan, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' });
    assert.equal(dans.status, 403);
    for (const bad of ['../shr202/lab1.ipynb', '/etc/passwd.ipynb', 'sub/../../x.ipynb', '.ipynb_checkpoints/lab1.ipynb', 'lab1.txt']) {
      const r = await share(ann, { course: 'shr101', path: bad, audience: 'classmates' });
      assert.equal(r.status, 400, `${bad}: ${r.body}`);
    }
    const missing = await share(ann, { course: 'shr101', path: 'nope.ipynb', audience: 'classmates' });
    assert.equal(missing.status, 404);
    // A student whose server is not running is told so.
    const noServer = await share(bob, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' });
    assert.equal(noServer.status, 409);
    assert.match(noServer.body, /server is not running/);
    // Instructors share from their own copy too (the same check, then the same snapshot).
    const profs = await share(prof, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' });
    assert.equal(profs.status, 409);
    assert.match(profs.body, /server is not running/);
    assert.equal((await share(prof2, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' })).status, 403);
    // The course page offers it beside each notebook, and the share page comes with it chosen.
    assert.match((await ann.client.get('/hub/courses/shr101')).body, /href="\/hub\/shares\?course=shr101&amp;path=lab1\.ipynb"/);
    assert.match((await ann.client.get('/hub/shares?course=shr101&path=lab1.ipynb')).body, /value="shr101\/lab1\.ipynb" selected/);
    // A cap on live links (each keeps a snapshot on the hub's disk).
    shareId(await share(ann, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' }));
    const fifth = await share(ann, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' });
    assert.equal(fifth.status, 409);
    assert.match(fifth.body, /the most allowed/);
  });

  it('the instructor views a student\'s copy from the dashboard, with an audit line; nobody else can', async () => {
    const dash = await prof.client.get('/hub/courses/shr101/dashboard');
    assert.match(dash.body, /action="\/hub\/courses\/shr101\/students\/shr-ann\/view"/);
    const made = await viewCopy(prof, 'shr101', 'shr-ann', 'lab1.ipynb');
    assert.equal(made.status, 201, made.body);
    copyView = (JSON.parse(made.body) as { id: string }).id;
    const { hub: h, view } = await open(prof.client, copyView);
    assert.equal(h.status, 303);
    assert.match(view?.body ?? '', /ann changed it/);
    assert.match(view?.body ?? '', /shr-ann&#39;s copy|shr-ann's copy/);
    const audit = await hub.audit.list({ action: 'course.view-copy' });
    assert.ok(audit.some((e) => e.actor === 'shr-prof' && e.target === 'shr-ann' && e.details.path === 'lab1.ipynb' && e.details.course === 'shr101'), JSON.stringify(audit));
    // The dashboard's form needs its XSRF token (a page elsewhere can't make an instructor snapshot a copy).
    assert.equal((await prof.client.request('POST', '/hub/courses/shr101/students/shr-ann/view', { form: { path: 'lab1.ipynb' }, headers: { accept: 'application/json' } })).status, 403);
    // Another student: neither the dashboard's action nor its view URL.
    assert.equal((await viewCopy(bob, 'shr101', 'shr-ann', 'lab1.ipynb')).status, 403);
    assert.equal((await open(bob.client, copyView)).hub.status, 403);
    // Ann herself doesn't get the instructor's view either (it is for the course's instructors).
    assert.equal((await open(ann.client, copyView)).hub.status, 403);
    // An instructor of course B: not of course A's students, not through A's view URL.
    assert.equal((await viewCopy(prof2, 'shr101', 'shr-ann', 'lab1.ipynb')).status, 403);
    assert.equal((await open(prof2.client, copyView)).hub.status, 403);
    // ... but ann's copy in course B, yes: the positive control.
    const inB = await viewCopy(prof2, 'shr202', 'shr-ann', 'lab1.ipynb');
    assert.equal(inB.status, 201, inB.body);
    assert.match((await open(prof2.client, (JSON.parse(inB.body) as { id: string }).id)).view?.body ?? '', /shr202 course version/);
    // Course A's instructor can't view a course-B-only student through course A, nor through B.
    assert.equal((await viewCopy(prof, 'shr101', 'shr-cy', 'lab1.ipynb')).status, 404);
    assert.equal((await viewCopy(prof, 'shr202', 'shr-cy', 'lab1.ipynb')).status, 403);
    // Paths that leave the course folder, and a student whose server is off.
    for (const bad of ['../../.bashrc.ipynb', '/etc/x.ipynb', 'a/../../b.ipynb']) assert.equal((await viewCopy(prof, 'shr101', 'shr-ann', bad)).status, 400, bad);
    const off = await viewCopy(prof, 'shr101', 'shr-bob', 'lab1.ipynb');
    assert.equal(off.status, 409);
    assert.match(off.body, /shr-bob's server is not running/);
  });

  it('a revoked link is dead: a 410 page, and its view URL already handed out stops working', async () => {
    const before = await open(bob.client, classmatesShare);
    assert.equal(before.view?.status, 200);
    const issued = before.hub.location ?? '';
    assert.equal((await bob.client.request('POST', `/hub/shares/${classmatesShare}/revoke`, { form: { _csrf: bob.csrf } })).status, 403);
    const revoke = await ann.client.request('POST', `/hub/shares/${classmatesShare}/revoke`, { form: { _csrf: ann.csrf } });
    assert.equal(revoke.status, 303);
    const dead = await bob.client.get(`/hub/share/${classmatesShare}`);
    assert.equal(dead.status, 410);
    assert.match(dead.body, /revoked this link/);
    const late = await bob.client.get(issued);
    assert.equal(late.status, 410);
    assert.match(late.body, /revoked/);
    assert.doesNotMatch(late.body, /ann-s answer/);
    assert.ok(!fs.existsSync(path.join(hub.config.dataDir, 'shares', classmatesShare)), 'the snapshot is deleted');
    assert.match((await ann.client.get('/hub/shares')).body, new RegExp(`data-share="${classmatesShare}"[\\s\\S]*?revoked`));
    assert.match(logText(), /share revoked/);
  });

  it('tampered, expired and unknown links get clear pages with the right status, and a log line', async () => {
    const { hub: h } = await open(prof.client, instructorsShare);
    const good = new URL(h.location ?? '');
    const sig = good.searchParams.get('s') ?? '';
    const tamper = async (mutate: (u: URL) => void) => {
      const u = new URL(good.href);
      mutate(u);
      return new HubClient(hub.url).get(u.href);
    };
    const flipped = await tamper((u) => u.searchParams.set('s', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1)));
    assert.equal(flipped.status, 403);
    assert.match(flipped.body, /not valid/);
    assert.equal((await tamper((u) => u.searchParams.set('e', String(Number(u.searchParams.get('e')) + 3_600_000)))).status, 403);
    assert.equal((await tamper((u) => (u.pathname = `/oerhub-share/${classmatesShare}`))).status, 403);
    assert.equal((await tamper((u) => u.searchParams.delete('s'))).status, 403);
    // A correctly signed URL whose time has passed (signed here with the hub's own key).
    const secret = fs.readFileSync(path.join(hub.config.dataDir, 'cookie-secret'), 'utf8').trim();
    const key = createHmac('sha256', secret).update('oerhub share view urls').digest();
    const past = Date.now() - 1000;
    const expired = await tamper((u) => {
      u.searchParams.set('e', String(past));
      u.searchParams.set('s', createHmac('sha256', key).update(`${instructorsShare}.${past}`).digest('base64url'));
    });
    assert.equal(expired.status, 410);
    assert.match(expired.body, /expired/);
    // Unknown ids, odd paths, other methods, a WebSocket: nothing but refusals.
    assert.equal((await prof.client.get('/hub/share/AAAAAAAAAAAAAAAAAAAAAA')).status, 404);
    assert.equal((await prof.client.get('/hub/share/..%2F..%2Fetc')).status, 404);
    assert.equal((await tamper((u) => (u.pathname = '/user/shr-ann/lab'))).status, 404);
    assert.equal((await tamper((u) => (u.pathname = '/oerhub-share/../hub/home'))).status, 404);
    const post = await new HubClient(hub.url).request('POST', good.href, { body: '' });
    assert.equal(post.status, 405);
    // Every answer of the share origin comes under its CSP, with nosniff: errors and the favicon's 404 too.
    const favicon = await tamper((u) => ((u.pathname = '/favicon.ico'), (u.search = '')));
    for (const r of [flipped, expired, post, favicon, await tamper((u) => (u.pathname = '/nothing'))]) {
      assert.match(r.headers.get('content-security-policy') ?? '', /^sandbox; default-src 'none'/, `${r.status} ${r.body.slice(0, 80)}`);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', `${r.status} ${r.body.slice(0, 80)}`);
    }
    assert.equal(favicon.status, 404);
    const text = logText();
    assert.match(text, /refused a request on the share origin/);
    assert.match(text, /"reason":"bad signature"/);
    assert.match(text, /"reason":"view URL expired"/);
    // The signature never lands in the log.
    assert.ok(!text.includes(sig), 'signature logged');
  });

  it('a notebook past shareMaxMb (a 50 MB one) is refused with a message, and nothing is kept; one with more HTML than the hub sanitises shows a note', async () => {
    const course = path.join(hub.config.dataDir, 'homes', annEsc, 'shr101');
    const big = notebook('x = 1', [{ output_type: 'stream', name: 'stdout', text: 'y'.repeat(50 * 1024 * 1024) }]);
    fs.writeFileSync(path.join(course, 'shv-big.ipynb'), big, { mode: 0o644 });
    const kept = fs.readdirSync(path.join(hub.config.dataDir, 'shares')).length;
    const r = await share(ann, { notebook: 'shr101/shv-big.ipynb', audience: 'classmates' });
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /too large to share \(more than 20 MB\)/);
    assert.equal(fs.readdirSync(path.join(hub.config.dataDir, 'shares')).length, kept);
    fs.rmSync(path.join(course, 'shv-big.ipynb'));
    // Under the cap but with 3 MB of HTML: the hub sanitises at most 2 MB of it (in its own process), the rest is a note.
    const html = '<table>' + '<tr><td>shv row</td></tr>'.repeat(140_000) + '</table>';
    fs.writeFileSync(path.join(course, 'shv-wide.ipynb'), notebook('df', [{ output_type: 'display_data', metadata: {}, data: { 'text/html': html } }, { output_type: 'stream', name: 'stdout', text: 'shv after the table\n' }]), { mode: 0o644 });
    try {
      const id = shareId(await share(ann, { notebook: 'shr101/shv-wide.ipynb', audience: 'classmates' }));
      const { view } = await open(bob.client, id);
      assert.equal(view?.status, 200);
      assert.match(view?.body ?? '', /A large output this view does not show/);
      assert.match(view?.body ?? '', /shv after the table/);
      assert.doesNotMatch(view?.body ?? '', /shv row/);
      assert.equal((await ann.client.request('POST', `/hub/shares/${id}/revoke`, { form: { _csrf: ann.csrf } })).status, 303);
    } finally {
      fs.rmSync(path.join(course, 'shv-wide.ipynb'));
    }
  });

  it('a symlink in the course folder reads only what the student\'s own account can: a root-only file is refused', async () => {
    const secret = path.join(hub.config.dataDir, 'shv-secret.ipynb');
    fs.writeFileSync(secret, notebook('"root only"', [{ output_type: 'stream', name: 'stdout', text: 'shv root-only secret\n' }]), { mode: 0o600 });
    const link = path.join(hub.config.dataDir, 'homes', annEsc, 'shr101', 'shv-link.ipynb');
    fs.symlinkSync(secret, link);
    try {
      const r = await share(ann, { notebook: 'shr101/shv-link.ipynb', audience: 'classmates' });
      assert.equal(r.status, 403, r.body);
      assert.match(r.body, /may not read shv-link\.ipynb/);
      assert.doesNotMatch(r.body, /root-only secret/);
      const copy = await viewCopy(prof, 'shr101', 'shr-ann', 'shv-link.ipynb');
      assert.equal(copy.status, 403, copy.body);
    } finally {
      fs.rmSync(link);
      fs.rmSync(secret);
    }
  });

  let rosterShare = '';
  it('classmates are members of THAT course when they open the link: dropped from the roster, no access; an owner dropped, no share', async () => {
    rosterShare = shareId(await share(ann, { notebook: 'shr101/lab1.ipynb', audience: 'classmates' }));
    assert.equal((await open(bob.client, rosterShare)).view?.status, 200);
    const settings = (enrolment: string) => prof.client.request('POST', '/hub/courses/shr101/settings', { form: { _csrf: prof.csrf, title: 'Course shr101', enrolment } });
    const roster = (csv: string) => prof.client.request('POST', '/hub/courses/shr101/roster', { form: { _csrf: prof.csrf, csv } });
    try {
      assert.equal((await settings('roster')).status, 303);
      assert.equal((await roster('shr-ann\n')).status, 303);
      // Bob joined while the course was open; now he is not on its roster.
      const dropped = await open(bob.client, rosterShare);
      assert.equal(dropped.hub.status, 403, dropped.hub.body);
      assert.match(dropped.hub.body, /students of shr101 only/);
      assert.equal((await roster('shr-ann\nshr-bob\n')).status, 303);
      assert.equal((await open(bob.client, rosterShare)).view?.status, 200);
      // The owner dropped: her link shows nothing, even to a classmate still on it.
      assert.equal((await roster('shr-bob\n')).status, 303);
      const ownerGone = await open(bob.client, rosterShare);
      assert.equal(ownerGone.hub.status, 410, ownerGone.hub.body);
      assert.match(ownerGone.hub.body, /shr-ann is no longer in shr101/);
    } finally {
      await roster('');
      await settings('open');
    }
    assert.equal((await open(bob.client, rosterShare)).view?.status, 200);
  });

  it('an instructor taken off the course loses the instructors-only link', async () => {
    const co = await signedIn(hub, 'shv-co', 'shv-co-password');
    const settings = (coInstructors: string) => prof.client.request('POST', '/hub/courses/shr101/settings', { form: { _csrf: prof.csrf, title: 'Course shr101', coInstructors } });
    assert.equal((await settings('shv-co')).status, 303);
    assert.equal((await open(co.client, instructorsShare)).view?.status, 200);
    assert.equal((await settings('')).status, 303);
    assert.equal((await open(co.client, instructorsShare)).hub.status, 403);
  });

  it('an admin disables the owner: her links stop working (the view URL already handed out too); enabled again, they work', async () => {
    const before = await open(bob.client, rosterShare);
    assert.equal(before.view?.status, 200);
    const actor = { name: 'shr-prof', address: '127.0.0.1' };
    const annUser = (await hub.users.get('shr-ann'))!;
    await hub.admin.disable(actor, annUser);
    try {
      const dead = await open(bob.client, rosterShare);
      assert.equal(dead.hub.status, 410, dead.hub.body);
      assert.match(dead.hub.body, /disabled/);
      const late = await bob.client.get(before.hub.location ?? '');
      assert.equal(late.status, 410);
      assert.doesNotMatch(late.body, /ann-s answer|ann changed it/);
    } finally {
      await hub.admin.enable(actor, annUser);
    }
    assert.equal((await open(bob.client, rosterShare)).view?.status, 200);
  });

  it('deleting the owner\'s account revokes her links and deletes their snapshots; a new account of that name doesn\'t bring them back', async () => {
    const ids = [rosterShare, instructorsShare];
    for (const id of ids) assert.ok(fs.existsSync(path.join(hub.config.dataDir, 'shares', id)));
    await hub.admin.deleteUser({ name: 'shr-prof', address: '127.0.0.1' }, (await hub.users.get('shr-ann'))!, true);
    for (const id of ids) assert.ok(!fs.existsSync(path.join(hub.config.dataDir, 'shares', id)), `snapshot of ${id} kept`);
    assert.equal((await open(bob.client, rosterShare)).hub.status, 410);
    await createUsersWithRoles(hub, { 'shr-ann': { password: 'shr-ann-password2', roles: ['student'] } });
    assert.equal((await open(bob.client, rosterShare)).hub.status, 410);
    assert.equal((await open(prof.client, instructorsShare)).hub.status, 410);
  });

  it('with one shared content host (originMode=shared-host), views are served there under /oerhub-share/ only', async () => {
    const shared = await startTestHub('sharing-shared-host', { originMode: 'shared-host', userContentHost: 'shr-content.localhost' });
    try {
      const port = new URL(shared.url).port;
      const view = await new HubClient(shared.url).get(`http://shr-content.localhost:${port}/oerhub-share/AAAAAAAAAAAAAAAAAAAAAA?e=1&s=x`);
      assert.equal(view.status, 403);
      assert.match(view.headers.get('content-security-policy') ?? '', /^sandbox; default-src 'none'/);
      // The rest of that host is still the user servers' (the proxy answers, not the share handler).
      const other = await new HubClient(shared.url).get(`http://shr-content.localhost:${port}/user/shr-x/lab`);
      assert.notEqual(other.headers.get('content-security-policy'), view.headers.get('content-security-policy'));
    } finally {
      await shared.close();
    }
  });

  it('a hub whose servers share its origin (originMode=single) refuses sharing with a message', async () => {
    const single = await startTestHub('sharing-single', { originMode: 'single' });
    try {
      const r = await new HubClient(single.url).get('/hub/share/AAAAAAAAAAAAAAAAAAAAAA');
      assert.equal(r.status, 409);
      assert.match(r.body, /sharing is off on this hub/);
    } finally {
      await single.close();
    }
  });
});
