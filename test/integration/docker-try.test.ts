import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { NORMAL_CPU_SHARES } from '../../server/spawner/spawner.js';
import { HubClient } from '../helpers/client.js';
import { cleanupInstance, containersOf, docker, dockerHubConfig, requireDockerImage, testInstance, volumesOf } from '../helpers/docker.js';
import { ADMIN_PASSWORD, startTestHub } from '../helpers/hub.js';
import { VisitorClient, poolStatus, waitFor, waitForReadyPool } from '../helpers/try.js';

/**
 * "Try it" with the Docker spawner: the warm pool's ephemeral servers are containers of the
 * test instance with no home volume and only the public datasets; "End session" removes the
 * container and leaves nothing.
 */

/** A host folder dataset with one file, readable by the image's user. */
function hostDataset(label: string, file: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `oerhub-${label}-`));
  fs.writeFileSync(path.join(dir, file), text, { mode: 0o644 });
  fs.chmodSync(dir, 0o755);
  return dir;
}

const NOTEBOOK_HOME = '/home/student';

interface ContainerInspect {
  State: { Running: boolean };
  Config: { Labels: Record<string, string> };
  Mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[];
}

async function inspectContainer(name: string): Promise<ContainerInspect> {
  const r = await docker(['inspect', name]);
  assert.equal(r.code, 0, `docker inspect ${name}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as ContainerInspect[])[0]!;
}

describe('Try it with the Docker spawner', function () {
  this.timeout(300_000);

  const instance = testInstance('try');
  const containerOf = (escapedName: string): string => `${instance}-nb-${escapedName}`;
  const homeVolumeOf = (escapedName: string): string => `${instance}-home-${escapedName}`;
  let hub: Hub | undefined;
  let admin: HubClient | undefined;
  let failed = false;

  let visitor: VisitorClient | undefined;
  let taken: { name: string; escapedName: string } | undefined;
  // A course's grades (students only) and an open dataset (visitors too).
  const grades = hostDataset('grades', 'grades.csv', 'student,grade\nbob,B\n');
  const open = hostDataset('open-data', 'places.csv', 'place,lat\nOslo,59.9\n');

  before(async () => {
    await requireDockerImage();
    const dockerDatasets = [
      { source: grades, name: 'course-grades' },
      { source: open, name: 'open-data', public: true },
    ];
    hub = await startTestHub('docker-try', dockerHubConfig(instance, { poolSize: 1, tryMaxServers: 2, dockerDatasets }));
    admin = new HubClient(hub.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 303);
    // A container start plus the samples copied in through Jupyter's contents API.
    await waitForReadyPool(hub, 1, 180_000);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await hub?.close().catch(() => undefined);
    await cleanupInstance(instance, { printLogs: failed });
    for (const dir of [grades, open]) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a visitor clicking "Try it" gets a warm container at once, with the samples and no home volume', async () => {
    assert.ok(hub && admin);
    const before = await poolStatus(admin);
    assert.deepEqual({ ready: before.ready, inUse: before.inUse, starting: before.starting, size: before.size }, { ready: 1, inUse: 0, starting: 0, size: 1 });
    const [warmName] = await hub.pool.readyNames();
    assert.ok(warmName);
    const warmUser = await hub.users.get(warmName);
    assert.ok(warmUser);
    assert.ok((await containersOf(instance)).includes(containerOf(warmUser.escapedName)), 'the warm server is a container of the instance');

    visitor = new VisitorClient(hub.url, '10.0.0.1');
    const page = await visitor.get('/hub/try');
    assert.equal(page.status, 200);
    const r = await visitor.request('POST', '/hub/try', { form: { _csrf: HubClient.csrfFrom(page.body) } });
    // Straight to the workspace: no progress page, no container start to wait for.
    assert.equal(r.status, 303, `"Try it" answered ${r.status}: ${r.body.slice(0, 300)}`);
    assert.equal(r.location, '/hub/try/workspace');
    const me = await visitor.me();
    assert.deepEqual(me.roles, ['anonymous']);
    assert.equal(me.name, warmName, 'the visitor got the warm server');
    taken = { name: me.name, escapedName: me.escaped_name };

    // Handed over to the visitor's own origin, which serves the workspace page.
    const workspace = await visitor.openWorkspace();
    assert.equal(workspace.status, 200);
    assert.equal(workspace.path, `/user/${me.escaped_name}/oerhub/workspace`);
    const lab = await visitor.openLab();
    assert.equal(lab.status, 200, `JupyterLab answered ${lab.status}`);
    assert.equal(lab.path, `/user/${me.escaped_name}/lab/tree/samples/index.ipynb`);

    // The samples are in the container's workspace, as the visitor's Jupyter sees it.
    const index = await visitor.get(`/user/${me.escaped_name}/api/contents/samples/index.ipynb?content=0`, { accept: 'application/json' });
    assert.equal(index.status, 200, `samples/index.ipynb: ${index.status} ${index.body.slice(0, 200)}`);
    const data = await visitor.get(`/user/${me.escaped_name}/api/contents/samples/data`, { accept: 'application/json' });
    assert.equal(data.status, 200);
    const names = (JSON.parse(data.body) as { content: { name: string }[] }).content.map((e) => e.name);
    assert.ok(names.includes('places.csv'), `samples/data holds ${names.join(', ')}`);

    // An ephemeral container: labelled so, running, and nothing persistent mounted at (or under) the home.
    const container = containerOf(me.escaped_name);
    const info = await inspectContainer(container);
    assert.equal(info.State.Running, true);
    assert.equal(info.Config.Labels['org.oerhub.ephemeral'], 'true');
    assert.equal(info.Config.Labels['org.oerhub.instance'], instance);
    // Warmed up as a refill at low CPU weight; the visitor's container is back at the normal one (issue 14).
    const shares = await waitFor(
      'normal CpuShares after the claim',
      async () => Number((await docker(['inspect', '--format', '{{.HostConfig.CpuShares}}', container])).stdout.trim()),
      (n) => n === NORMAL_CPU_SHARES,
      15_000,
    );
    assert.equal(shares, NORMAL_CPU_SHARES);
    const datasetMount = (m: ContainerInspect['Mounts'][number]): boolean => !m.RW && m.Destination.startsWith(`${NOTEBOOK_HOME}/datasets/`);
    assert.deepEqual(
      info.Mounts.filter((m) => !datasetMount(m) && (m.Type === 'volume' || m.Destination === NOTEBOOK_HOME || m.Destination.startsWith(`${NOTEBOOK_HOME}/`))),
      [],
      'no volume or home mount',
    );
    // Only the public dataset is there, read-only; the course's grades are not mounted at all.
    assert.deepEqual(info.Mounts.filter(datasetMount).map((m) => m.Destination), [`${NOTEBOOK_HOME}/datasets/open-data`]);
    const openData = await visitor.get(`/user/${me.escaped_name}/api/contents/datasets/open-data/places.csv?content=0`, { accept: 'application/json' });
    assert.equal(openData.status, 200, 'the public dataset is visible');
    const gradesDir = await visitor.get(`/user/${me.escaped_name}/api/contents/datasets/course-grades`, { accept: 'application/json' });
    assert.equal(gradesDir.status, 404, "the course's grades are not in a visitor's server");
    const listing = await visitor.get(`/user/${me.escaped_name}/api/contents/datasets`, { accept: 'application/json' });
    assert.deepEqual((JSON.parse(listing.body) as { content: { name: string }[] }).content.map((e) => e.name), ['open-data']);
    const volumes = await volumesOf(instance);
    assert.ok(!volumes.includes(homeVolumeOf(me.escaped_name)), `no home volume for ${me.escaped_name}`);
    assert.deepEqual(volumes, [], 'the instance has no volume at all');

    // The pool refills behind the visitor: 1 in use + 1 ready = the cap of 2.
    const after = await waitFor('the pool back to 1 ready', () => poolStatus(admin!), (s) => s.ready === 1 && s.starting === 0, 180_000, 500);
    assert.equal(after.inUse, 1);
    assert.equal((await containersOf(instance)).length, 2);
  });

  it('"End session" removes the container and leaves no volume; the pool stays at 1 ready', async () => {
    assert.ok(hub && admin && visitor && taken);
    const container = containerOf(taken.escapedName);
    assert.ok((await containersOf(instance)).includes(container));

    const r = await visitor.endSession();
    // A visitor's sign-out lands on "Your session ended" (issue 10).
    assert.equal(r.status, 303);
    assert.equal(r.location, '/hub/try/ended');
    // The sign-out waits for the server to be destroyed: the container is gone when the page shows.
    const left = await containersOf(instance);
    assert.ok(!left.includes(container), `container ${container} still listed: ${left.join(', ')}`);
    assert.equal((await docker(['inspect', container])).code !== 0, true, 'docker inspect no longer finds it');
    assert.deepEqual(await volumesOf(instance), [], 'no volume left');
    assert.equal(await hub.users.get(taken.name), null, 'the anonymous user is forgotten');
    assert.equal(hub.routes.get(taken.escapedName), undefined, 'no route left');
    // Signed out: its old address no longer reaches a server; it says the session ended (issue 10).
    const old = await visitor.get(`/user/${taken.escapedName}/api/contents/samples`);
    assert.equal(old.status, 410);
    assert.match(old.body, /Your session ended/);

    const status = await waitFor('the pool at 1 ready, none in use', () => poolStatus(admin!), (s) => s.ready === 1 && s.starting === 0 && s.inUse === 0, 180_000, 500);
    assert.equal(status.size, 1);
    const [warmName] = await hub.pool.readyNames();
    const warm = await hub.users.get(warmName!);
    assert.ok(warm);
    assert.deepEqual(await containersOf(instance), [containerOf(warm.escapedName)], 'only the warm container is left');
  });
});
