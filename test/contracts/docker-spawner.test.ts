import assert from 'node:assert/strict';
import { SpawnFailed } from '../../server/errors.js';
import type { DockerSpawner, ProgressEvent, SpawnSpec, StartedServer } from '../../server/spawner/index.js';
import {
  TEST_IMAGE,
  cleanupInstance,
  containersOf,
  docker,
  dockerExec,
  makeDockerSpawner,
  requireDockerImage,
  testInstance,
  volumesOf,
} from '../helpers/docker.js';
import { auth, makeSpec, request, spawnerContract, startOptions } from './spawner.contract.js';

spawnerContract('DockerSpawner', async () => {
  await requireDockerImage();
  const instance = testInstance('contract');
  return { spawner: makeDockerSpawner(instance), cleanup: () => cleanupInstance(instance) };
});

describe('DockerSpawner', function () {
  this.timeout(180_000);

  const instance = testInstance('spawner');
  let spawner: DockerSpawner;
  const started: { spec: SpawnSpec; server: StartedServer }[] = [];

  async function startServer(spec: SpawnSpec, events: ProgressEvent[] = []): Promise<StartedServer> {
    const server = await spawner.start(spec, startOptions(undefined, events));
    started.push({ spec, server });
    return server;
  }

  before(async () => {
    await requireDockerImage();
    spawner = makeDockerSpawner(instance);
  });

  afterEach(async () => {
    for (const { spec, server } of started.splice(0)) await spawner.stop(spec, server.state);
  });

  after(async function () {
    // this.currentTest is unset in after(); print logs if any test of the suite failed.
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await spawner?.close();
    await cleanupInstance(instance, { printLogs: failed });
  });

  it("a student's container runs hardened: non-root, no capabilities, no new privileges, limits, ports on 127.0.0.1 only", async () => {
    const spec = makeSpec();
    await startServer(spec);
    const name = spawner.containerName(spec.escapedName);
    const inspect = JSON.parse((await docker(['inspect', name])).stdout)[0] as {
      Config: { User: string; Labels: Record<string, string>; Env: string[] };
      HostConfig: Record<string, unknown> & { PortBindings: Record<string, { HostIp: string }[]>; Mounts?: { Source: string; Target: string }[] };
      Mounts: { Source: string; Destination: string; Name?: string; RW: boolean }[];
    };
    const host = inspect.HostConfig;
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(host.Init, true);
    assert.equal(host.Memory, 1024 * 1024 * 1024);
    assert.equal(host.MemorySwap, host.Memory, 'swap is part of the memory limit');
    assert.equal(host.NanoCpus, 1e9);
    assert.equal(host.PidsLimit, 256);
    assert.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '5m' } });
    assert.equal(host.Privileged, false);
    for (const bindings of Object.values(host.PortBindings)) for (const b of bindings) assert.equal(b.HostIp, '127.0.0.1');
    for (const m of inspect.Mounts) assert.ok(!/docker\.sock/.test(m.Source) && !/docker\.sock/.test(m.Destination), `docker socket mounted: ${JSON.stringify(m)}`);
    assert.equal(inspect.Config.Labels['org.oerhub.instance'], instance);
    assert.equal(inspect.Config.Labels['org.oerhub.user'], spec.escapedName);

    const id = await dockerExec(name, ['id', '-u']);
    assert.equal(id.stdout.trim(), '1000');
    const status = await dockerExec(name, ['grep', '-E', '^(NoNewPrivs|CapEff|CapBnd):', '/proc/self/status']);
    assert.match(status.stdout, /NoNewPrivs:\s+1/);
    assert.match(status.stdout, /CapEff:\s+0+\n/);
    assert.match(status.stdout, /CapBnd:\s+0+\n/);
  });

  it('a new home volume and the datasets folder belong to the notebook user, not root', async () => {
    const spec = makeSpec();
    await startServer(spec);
    const name = spawner.containerName(spec.escapedName);
    const owners = await dockerExec(name, ['stat', '-c', '%u:%g %n', '/home/student', '/home/student/datasets']);
    assert.equal(owners.code, 0, owners.stderr);
    assert.deepEqual(owners.stdout.trim().split('\n'), ['1000:1000 /home/student', '1000:1000 /home/student/datasets']);
    const volume = spawner.volumeName(spec.escapedName);
    assert.ok((await volumesOf(instance)).includes(volume));
  });

  it('progress says what is happening, with detail', async () => {
    const events: ProgressEvent[] = [];
    await startServer(makeSpec(), events);
    const messages = events.map((e) => e.message);
    assert.ok(messages.some((m) => m.includes(TEST_IMAGE)), `no image in ${JSON.stringify(messages)}`);
    assert.ok(messages.some((m) => /Creating your home folder \(volume /.test(m)), JSON.stringify(messages));
    assert.ok(messages.some((m) => /Waiting for Jupyter/.test(m)), JSON.stringify(messages));
  });

  it('a container name left in use by a crash is cleared and the start succeeds', async () => {
    const spec = makeSpec();
    const name = spawner.containerName(spec.escapedName);
    // What a hub that died between "create" and "record" leaves behind.
    const leftover = await docker(['create', '--name', name, '--label', `org.oerhub.instance=${instance}`, TEST_IMAGE, 'sleep', '600']);
    assert.equal(leftover.code, 0, leftover.stderr);
    const { endpoint } = await startServer(spec);
    const reply = await request(endpoint, 'GET', `${spec.baseUrl}api/status`, auth(spec));
    assert.equal(reply.status, 200);
    assert.deepEqual(await containersOf(instance), [name]);
  });

  it('a throwaway (ephemeral) server gets no volume and leaves nothing behind', async () => {
    const spec = makeSpec({ ephemeral: true });
    const { state } = await spawner.start(spec, startOptions());
    assert.equal((await volumesOf(instance)).includes(spawner.volumeName(spec.escapedName)), false);
    await spawner.stop(spec, state);
    assert.equal((await containersOf(instance)).includes(spawner.containerName(spec.escapedName)), false);
    assert.equal((await volumesOf(instance)).includes(spawner.volumeName(spec.escapedName)), false);
  });

  it('a missing image or an unknown profile fails with a message a student understands', async () => {
    const missing = makeDockerSpawner(instance, { profiles: [{ name: 'gone', displayName: 'Gone', image: `${instance}-no-such-image:1`, description: '' }] });
    await assert.rejects(missing.start(makeSpec(), startOptions()), (err) => {
      assert.ok(err instanceof SpawnFailed);
      assert.match(err.userMessage, /image is not installed/);
      assert.match(err.detail ?? '', /images\/build\.sh/);
      return true;
    });
    await assert.rejects(spawner.start(makeSpec({ profile: 'not-configured' }), startOptions()), SpawnFailed);
    assert.deepEqual(await containersOf(instance), []);
  });
});
