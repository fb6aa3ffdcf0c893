import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { escapeName, normalizeUsername } from '../../server/names.js';
import { HubClient } from '../helpers/client.js';
import {
  TEST_IMAGE,
  TEST_R_IMAGE,
  cleanupInstance,
  containersOf,
  docker,
  dockerExec,
  dockerHubConfig,
  requireDockerImage,
  testInstance,
  volumesOf,
} from '../helpers/docker.js';
import { createUsers, signInAndStart, startTestHub, waitForReady } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';

/** Run one cell in a fresh kernel of the user's server, through the hub's proxy. */
async function runCell(client: HubClient, escapedName: string, code: string, timeoutMs = 60_000): Promise<string> {
  const kernelId = await startKernel(client, escapedName);
  const kernel = await KernelSocket.open(client, escapedName, kernelId);
  try {
    return await kernel.execute(code, timeoutMs);
  } finally {
    kernel.close();
  }
}

function containerOf(instance: string, escapedName: string): string {
  return `${instance}-nb-${escapedName}`;
}

async function imageIdOf(ref: string): Promise<string> {
  return (await docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
}

describe('students in their own Docker containers, through the hub', function () {
  this.timeout(300_000);

  const instance = testInstance('hub');
  // The profile's image is a tag of the shared test image, so the test can "rebuild" it.
  const image = `${instance}-img:current`;
  const datasetVolume = `${instance}-course-data`;
  const hostDataset = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-dataset-'));
  const hubs: Hub[] = [];
  let hub: Hub;
  let failed = false;

  async function startHub(): Promise<Hub> {
    const h = await startTestHub(
      'docker-hub',
      dockerHubConfig(instance, {
        dockerProfiles: [{ name: 'python', displayName: 'Python', image, description: '' }],
        dockerDatasets: [
          { source: datasetVolume, name: 'course' },
          { source: hostDataset, name: 'shared' },
        ],
        dockerMemLimitMb: 512,
      }),
    );
    hubs.push(h);
    return h;
  }

  before(async () => {
    await requireDockerImage();
    assert.equal((await docker(['tag', TEST_IMAGE, image])).code, 0);
    // A dataset volume with one file, filled the way an admin would (as root, once).
    assert.equal((await docker(['volume', 'create', '--label', `org.oerhub.instance=${instance}`, datasetVolume])).code, 0);
    const fill = await docker(['run', '--rm', '-u', '0', '--network', 'none', '-v', `${datasetVolume}:/d`, TEST_IMAGE, 'sh', '-c', 'echo "rainfall,2024" > /d/rain.csv']);
    assert.equal(fill.code, 0, fill.stderr);
    fs.writeFileSync(path.join(hostDataset, 'syllabus.txt'), 'week 1: notebooks\n');
    fs.chmodSync(hostDataset, 0o755);
    hub = await startHub();
    await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    for (const h of hubs) await h.close().catch(() => undefined);
    await cleanupInstance(instance, { printLogs: failed, extraVolumes: [datasetVolume], extraImages: [image] });
    fs.rmSync(hostDataset, { recursive: true, force: true });
  });

  it("a student's container serves JupyterLab, and a kernel runs code over the proxied WebSocket", async () => {
    const alice = await signInAndStart(hub, 'alice', 'alice-password');
    const lab = await alice.get('/user/alice/lab');
    assert.equal(lab.status, 200);
    assert.match(lab.body, /JupyterLab/);
    assert.equal(await runCell(alice, 'alice', 'import pandas, bokeh, folium; print(6*7)'), '42\n');
    assert.deepEqual(await containersOf(instance), [containerOf(instance, 'alice')]);
  });

  it('a file in the home survives stop, container removal, an image rebuild and a hub restart; datasets are read-only', async () => {
    let alice = await signInAndStart(hub, 'alice', 'alice-password');
    const written = await runCell(
      alice,
      'alice',
      [
        "open('/home/student/notes.txt', 'w').write('my homework')",
        "print(open('/home/student/datasets/course/rain.csv').read().strip())",
        "print(open('/home/student/datasets/shared/syllabus.txt').read().strip())",
        'for p in ("/home/student/datasets/course/x.txt", "/home/student/datasets/shared/x.txt"):',
        '    try:',
        '        open(p, "w")',
        '    except OSError as e:',
        '        print(e.errno, e.strerror)',
      ].join('\n'),
    );
    assert.equal(written, 'rainfall,2024\nweek 1: notebooks\n30 Read-only file system\n30 Read-only file system\n');

    const user = await hub.users.get('alice');
    assert.ok(user);
    await hub.manager.stop(user);
    assert.deepEqual(await containersOf(instance), [], 'stop removes the container');
    assert.ok((await volumesOf(instance)).includes(`${instance}-home-alice`), 'the home volume stays');

    // Rebuild the image: a new image id under the same tag.
    const before = await imageIdOf(image);
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-rebuild-'));
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${TEST_IMAGE}\nLABEL org.oerhub.test-rebuild="${Date.now()}"\n`);
    const build = await docker(['build', '-q', '-t', image, ctx]);
    fs.rmSync(ctx, { recursive: true, force: true });
    assert.equal(build.code, 0, build.stderr);
    const rebuilt = await imageIdOf(image);
    assert.notEqual(rebuilt, before);

    // Restart the hub (memory store: the restarted hub knows nothing but its configuration).
    await hub.close();
    hub = await startHub();
    await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
    alice = await signInAndStart(hub, 'alice', 'alice-password');
    assert.equal(await runCell(alice, 'alice', "print(open('/home/student/notes.txt').read())"), 'my homework\n');
    const running = (await docker(['inspect', '--format', '{{.Image}}', containerOf(instance, 'alice')])).stdout.trim();
    assert.equal(running, rebuilt, 'the new container runs the rebuilt image');
  });

  it('users whose names escape alike get distinct containers and volumes', async () => {
    const names = ['a.b', 'a-b', 'josé', 'jose', 'müller'];
    await createUsers(hub, Object.fromEntries(names.map((n) => [n, `${n}-password-123`])));
    const escaped = names.map((n) => escapeName(normalizeUsername(n)));
    assert.equal(new Set(escaped).size, names.length);
    for (const n of names) {
      const client = await signInAndStart(hub, n, `${n}-password-123`);
      await runCell(client, escapeName(normalizeUsername(n)), `open('/home/student/me.txt', 'w').write(${JSON.stringify(n)})`);
    }
    const containers = await containersOf(instance);
    const volumes = await volumesOf(instance);
    for (const [i, n] of names.entries()) {
      const container = containerOf(instance, escaped[i]!);
      assert.ok(containers.includes(container), `${n}: no container ${container}`);
      assert.ok(volumes.includes(`${instance}-home-${escaped[i]}`), `${n}: no volume`);
      const mine = await dockerExec(container, ['cat', '/home/student/me.txt']);
      assert.equal(mine.stdout, n, `${n} sees someone else's home`);
    }
    // Upper case is the same person (names are normalised), not a second container.
    const upper = new HubClient(hub.url);
    assert.equal((await upper.login('A.B', 'a.b-password-123')).status, 303);
    const { hub: r, handoff } = await upper.openServer('/lab');
    assert.equal(r.status, 302);
    assert.equal(handoff?.location, `/user/${escapeName('a.b')}/lab`);
    assert.equal((await containersOf(instance)).length, containers.length);
  });

  it("from inside one student's container, another student's container, the hub and the Docker API are out of reach", async () => {
    await signInAndStart(hub, 'bob', 'bob-password');
    const alice = containerOf(instance, 'alice');
    const bob = containerOf(instance, 'bob');
    const network = `${instance}-notebooks`;
    const bobIp = (await docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, bob])).stdout.trim();
    const gateway = (await docker(['network', 'inspect', '--format', '{{(index .IPAM.Config 0).Gateway}}', network])).stdout.trim();
    assert.match(bobIp, /^\d+\.\d+\.\d+\.\d+$/);
    const hubPort = new URL(hub.url).port;
    // Addresses of this test's own network only: bob's container and the network's gateway.
    const probe = [
      'import socket',
      `for host, port in [(${JSON.stringify(bobIp)}, 8888), (${JSON.stringify(gateway)}, ${hubPort}), (${JSON.stringify(gateway)}, 2375), (${JSON.stringify(gateway)}, 2376)]:`,
      '    try:',
      '        socket.create_connection((host, port), timeout=3).close()',
      '        print(host, port, "open")',
      '    except OSError:',
      '        print(host, port, "closed")',
    ].join('\n');
    const reach = await dockerExec(alice, ['python3', '-c', probe]);
    assert.equal(reach.code, 0, reach.stderr);
    for (const line of reach.stdout.trim().split('\n')) assert.match(line, / closed$/, line);
    // Sanity check that the probe can succeed: bob reaches his own server.
    const self = await dockerExec(bob, ['python3', '-c', 'import socket; socket.create_connection(("127.0.0.1", 8888), timeout=3); print("ok")']);
    assert.equal(self.stdout.trim(), 'ok');

    const socketThere = await dockerExec(alice, ['sh', '-c', 'ls /var/run/docker.sock /run/docker.sock 2>/dev/null | wc -l']);
    assert.equal(socketThere.stdout.trim(), '0');
    const who = await dockerExec(alice, ['sh', '-c', 'id -u; grep -E "^(NoNewPrivs|CapEff):" /proc/self/status']);
    assert.match(who.stdout, /^1000\n/);
    assert.match(who.stdout, /NoNewPrivs:\s+1\n/);
    assert.match(who.stdout, /CapEff:\s+0+\n/);
  });

  it('a cell that allocates past the memory limit kills the kernel, not the server or the hub', async () => {
    const alice = await signInAndStart(hub, 'alice', 'alice-password');
    const kernelId = await startKernel(alice, 'alice');
    const kernel = await KernelSocket.open(alice, 'alice', kernelId);
    try {
      assert.equal(await kernel.execute('marker = 1\nprint("set")'), 'set\n');
      // 1 GiB of written bytes against a 512 MiB limit (swap included).
      await kernel.execute('import numpy as np\nhog = np.ones(1024**3 // 8)\nprint("survived")', 20_000).then(
        (out) => assert.doesNotMatch(out, /survived/),
        () => undefined,
      );
    } finally {
      kernel.close();
    }
    // Jupyter restarts the killed kernel: same id, fresh interpreter.
    let state = '';
    for (let i = 0; i < 60 && state !== 'idle'; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const k = await alice.get(`/user/alice/api/kernels/${kernelId}`, { accept: 'application/json' });
      state = k.status === 200 ? (JSON.parse(k.body) as { execution_state: string }).execution_state : `http ${k.status}`;
    }
    const again = await KernelSocket.open(alice, 'alice', kernelId);
    try {
      assert.equal(await again.execute('print("marker" in globals())'), 'False\n', 'the kernel was not restarted');
    } finally {
      again.close();
    }
    assert.equal((await alice.get('/hub/health', { accept: 'application/json' })).status, 200);
    assert.equal((await alice.get('/user/alice/api/status', { accept: 'application/json' })).status, 200);
    const running = (await docker(['inspect', '--format', '{{.State.Running}}', containerOf(instance, 'alice')])).stdout.trim();
    assert.equal(running, 'true');
  });
});

describe('a student choosing among the admin\'s image profiles', function () {
  this.timeout(300_000);

  const instance = testInstance('prof');
  let hub: Hub;
  let failed = false;

  before(async () => {
    await requireDockerImage(TEST_IMAGE);
    await requireDockerImage(TEST_R_IMAGE);
    hub = await startTestHub(
      'docker-profiles',
      dockerHubConfig(instance, {
        dockerProfiles: [
          { name: 'python', displayName: 'Python', image: TEST_IMAGE, description: 'pandas and friends' },
          { name: 'r', displayName: 'R', image: TEST_R_IMAGE, description: 'the R kernel' },
        ],
      }),
    );
    await createUsers(hub, { carol: 'carol-password' });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await hub?.close();
    await cleanupInstance(instance, { printLogs: failed });
  });

  it('sees the profiles by name only, cannot pick an image or anything else, and gets the R kernel when choosing R', async () => {
    const carol = new HubClient(hub.url);
    assert.equal((await carol.login('carol', 'carol-password')).status, 303);
    const options = await carol.get('/hub/spawn');
    assert.equal(options.status, 200);
    assert.match(options.body, /value="python"/);
    assert.match(options.body, /value="r"/);
    assert.ok(!options.body.includes(TEST_R_IMAGE) && !options.body.includes(TEST_IMAGE), 'image names are not shown');
    const home = await carol.get('/hub/home');
    assert.match(home.body, /name="profile" value="r"/);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(home.body)?.[1];
    assert.ok(csrf);

    for (const profile of ['__proto__', 'oerhub/r:latest', TEST_IMAGE, 'R ']) {
      const refused = await carol.request('POST', '/hub/spawn', { form: { _csrf: csrf, profile } });
      assert.equal(refused.status, 400, `profile ${profile}`);
    }
    const viaQuery = await carol.get(`/hub/spawn?profile=${encodeURIComponent('../evil')}`);
    assert.equal(viaQuery.status, 400);
    assert.deepEqual(await containersOf(instance), []);

    // Extra fields are ignored: only the profile name is read.
    const start = await carol.request('POST', '/hub/spawn', {
      form: { _csrf: csrf, profile: 'r', image: 'evil:latest', env: 'EVIL=1', volume: '/var/run/docker.sock:/x' },
    });
    assert.equal(start.status, 303);
    await waitForReady(carol, 'carol');
    const container = `${instance}-nb-carol`;
    const inspect = JSON.parse((await docker(['inspect', container])).stdout)[0] as { Config: { Image: string; Env: string[] }; Mounts: { Source: string }[] };
    assert.equal(inspect.Config.Image, TEST_R_IMAGE);
    assert.ok(!inspect.Config.Env.some((e) => e.startsWith('EVIL')));
    assert.ok(inspect.Mounts.every((m) => !m.Source.includes('docker.sock')));
    const { handoff } = await carol.openServer('/lab');
    assert.equal(handoff?.status, 302);
    const specs = await carol.get('/user/carol/api/kernelspecs', { accept: 'application/json' });
    assert.equal(specs.status, 200);
    assert.ok('ir' in (JSON.parse(specs.body) as { kernelspecs: Record<string, unknown> }).kernelspecs, specs.body.slice(0, 300));
  });
});
