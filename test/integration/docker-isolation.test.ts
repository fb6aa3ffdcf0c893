import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { cleanupInstance, docker, dockerHubConfig, requireDockerImage, testInstance } from '../helpers/docker.js';
import { TEST_COOKIE_SECRET, createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { frontDoorPath } from '../helpers/nginx.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import type { HubClient } from '../helpers/client.js';

/**
 * Issue 9, "What must be shown" 2, for the Docker spawner: from inside a student's container
 * (code run in a real kernel, as a student's cell would), the hub's data folder, a classmate's
 * home and server, other processes' environments, the hub's Redis and the hub's TCP port with
 * forged identity headers are all out of reach. The local-process half is
 * local-isolation.test.ts and front-door.test.ts.
 */

/** What one attempt ended in, as the student's code saw it. */
interface Outcome {
  /** 'ok', or the Python exception's name (FileNotFoundError, ConnectionRefusedError, TimeoutError...). */
  result: string;
  /** What came back once a connection opened: Redis' reply line or the HTTP status and cookie. */
  reply?: string;
}

/**
 * Python helpers the probes use. A connect that opens is taken further (an unauthenticated
 * Redis SET, or an HTTP request with forged headers) so a hole shows what it would give.
 */
const PRELUDE = [
  'import json, os, socket, http.client',
  'def _read(p):',
  '    try:',
  '        if os.path.isdir(p): os.listdir(p)',
  "        else: open(p, 'rb').read(1)",
  "        return {'result': 'ok'}",
  '    except Exception as e:',
  "        return {'result': type(e).__name__}",
  'def _tcp(host, port, send=None):',
  '    try:',
  '        s = socket.create_connection((host, port), timeout=5)',
  '    except Exception as e:',
  "        return {'result': type(e).__name__}",
  '    try:',
  '        if send is None: return {"result": "ok"}',
  '        s.sendall(send.encode())',
  "        return {'result': 'ok', 'reply': s.recv(200).decode(errors='replace').split('\\r\\n')[0]}",
  '    except Exception as e:',
  "        return {'result': 'ok', 'reply': type(e).__name__}",
  '    finally:',
  '        s.close()',
  'def _http(host, port):',
  '    try:',
  '        c = http.client.HTTPConnection(host, port, timeout=5)',
  '        c.request("GET", "/hub/api/user", headers={"X-Remote-User": "admin", "X-Remote-Groups": "faculty", "X-Forwarded-For": "203.0.113.9", "Accept": "application/json"})',
  '        r = c.getresponse()',
  "        return {'result': 'ok', 'reply': f'{r.status} cookie={r.getheader(\"Set-Cookie\") is not None}'}",
  '    except Exception as e:',
  "        return {'result': type(e).__name__}",
].join('\n');

async function runProbes(kernel: KernelSocket, probes: Record<string, string>): Promise<Record<string, Outcome>> {
  const body = Object.entries(probes)
    .map(([label, call]) => `${JSON.stringify(label)}: ${call},`)
    .join('\n');
  const out = await kernel.execute(`${PRELUDE}\nprint(json.dumps({\n${body}\n}))`, 90_000);
  assert.doesNotMatch(out, /ERROR:/, out);
  return JSON.parse(out) as Record<string, Outcome>;
}

async function inspect(format: string, ...objects: string[]): Promise<string> {
  const r = await docker(['inspect', '--format', format, ...objects]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function openKernel(client: HubClient, escapedName: string): Promise<KernelSocket> {
  return KernelSocket.open(client, escapedName, await startKernel(client, escapedName));
}

describe("Docker servers: a student's code can reach only the student's own container", function () {
  this.timeout(300_000);
  const instance = testInstance('iso');
  const door = frontDoorPath();
  let redis: TestRedis;
  let hub: Hub;
  let aliceKernel: KernelSocket;
  let bobKernel: KernelSocket;
  let failed = false;
  /** The notebook network's gateway (the host side of the bridge this test's instance made). */
  let gateway: string;
  let bobIp: string;

  before(async () => {
    await requireDockerImage();
    redis = await startRedis();
    // Redis with a password as the store, and trusted-header sign-on on (through the front door
    // socket only), so a forged X-Remote-User would have something to fool.
    hub = await startTestHub(
      'docker-isolation',
      dockerHubConfig(instance, { store: 'redis', redisUrl: redis.url, trustedHeader: 'X-Remote-User', trustedHeaderRoles: 'X-Remote-Groups', frontDoorSocket: door.socket }),
    );
    await createUsers(hub, { alice: 'alice-password', bob: 'bob-password' });
    const [alice, bob] = await Promise.all([signInAndStart(hub, 'alice', 'alice-password'), signInAndStart(hub, 'bob', 'bob-password')]);
    [aliceKernel, bobKernel] = await Promise.all([openKernel(alice, 'alice'), openKernel(bob, 'bob')]);
    // The network is per instance (`<instance>-notebooks`, docker-spawner.ts ensureNetwork) and this
    // instance name is fresh, so the network and its gateway were made by this test: the only
    // non-loopback addresses the probes below may send to (ENVIRONMENT.md, "Network rule").
    const network = `${instance}-notebooks`;
    assert.equal(await inspect('{{index .Labels "org.oerhub.instance"}}', network), instance, 'the notebook network is this test instance\'s own');
    gateway = await inspect('{{(index .IPAM.Config 0).Gateway}}', network);
    bobIp = await inspect(`{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, `${instance}-nb-bob`);
    assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
    assert.match(bobIp, /^\d+\.\d+\.\d+\.\d+$/);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    aliceKernel?.close();
    bobKernel?.close();
    await hub?.close();
    await cleanupInstance(instance, { printLogs: failed });
    await redis?.stop();
    door.remove();
  });

  it("a student's own home works: a file written there is read back", async () => {
    await aliceKernel.execute("open('/home/student/alice.txt', 'w').write('alice only')");
    assert.equal(await aliceKernel.execute("print(open('/home/student/alice.txt').read())"), 'alice only\n');
    assert.equal(await aliceKernel.execute("import os; print(sorted(f for f in os.listdir('/home/student') if f.endswith('.txt')))"), "['alice.txt']\n");
  });

  it("the hub's data folder and cookie secret are not in a student's container, nor are the hub's secrets in its environment", async () => {
    // The folder and everything in it (with this Docker spawner and store=redis, the hub may keep
    // nothing there yet), all of which exist on the host: a refusal below means "not in the
    // container", not "nowhere".
    assert.ok(fs.statSync(hub.config.dataDir).isDirectory());
    const hubPaths = [hub.config.dataDir, ...fs.readdirSync(hub.config.dataDir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(hub.config.dataDir, f))];
    // With store=redis the cookie secret comes from the config (the same on every hub), not from
    // dataDir/cookie-secret; its path is tried anyway, as that file holds the secret on a hub without cookieSecret.
    const cookieSecretFile = path.join(hub.config.dataDir, 'cookie-secret');
    const probes = Object.fromEntries([...hubPaths, cookieSecretFile].map((p) => [p, `_read(${JSON.stringify(p)})`]));
    const results = await runProbes(aliceKernel, probes);
    const reached = Object.entries(results).filter(([, r]) => r.result !== 'FileNotFoundError');
    assert.deepEqual(reached, []);
    // Nor do the hub's secrets travel into the container in its environment.
    const env = await aliceKernel.execute('import os, json; print(json.dumps(dict(os.environ)))');
    for (const secret of [TEST_COOKIE_SECRET, redis.password]) assert.ok(!env.includes(secret), "a hub secret is in the container's environment");
  });

  it("a classmate's home, files and server are out of reach: not mounted, and not connectable over the network", async () => {
    await bobKernel.execute("open('/home/student/answers.txt', 'w').write('bob only')");
    const bobVolume = await inspect('{{range .Mounts}}{{if eq .Destination "/home/student"}}{{.Source}}{{end}}{{end}}', `${instance}-nb-bob`);
    assert.match(bobVolume, new RegExp(`${instance}-home-bob/_data$`));
    const bobHostPort = await inspect('{{(index (index .NetworkSettings.Ports "8888/tcp") 0).HostPort}}', `${instance}-nb-bob`);
    const results = await runProbes(aliceKernel, {
      bobVolume: `_read(${JSON.stringify(bobVolume)})`,
      bobFileInVolume: `_read(${JSON.stringify(path.join(bobVolume, 'answers.txt'))})`,
      bobFileInOwnHome: "_read('/home/student/answers.txt')",
      // Inter-container traffic is off on the notebook network: the packets are dropped.
      bobJupyter: `_tcp(${JSON.stringify(bobIp)}, 8888)`,
      // Bob's port is published on the host's 127.0.0.1 only, which is not the container's.
      bobPublishedOnLoopback: `_tcp('127.0.0.1', ${bobHostPort})`,
      bobPublishedOnGateway: `_tcp(${JSON.stringify(gateway)}, ${bobHostPort})`,
      // The probe can succeed: Alice reaches her own Jupyter.
      ownJupyter: "_tcp('127.0.0.1', 8888)",
    });
    assert.deepEqual(results, {
      bobVolume: { result: 'FileNotFoundError' },
      bobFileInVolume: { result: 'FileNotFoundError' },
      bobFileInOwnHome: { result: 'FileNotFoundError' },
      bobJupyter: { result: 'TimeoutError' },
      bobPublishedOnLoopback: { result: 'ConnectionRefusedError' },
      bobPublishedOnGateway: { result: 'ConnectionRefusedError' },
      ownJupyter: { result: 'ok' },
    });
    // Bob still has his file: the probe above is about whose it is.
    assert.equal(await bobKernel.execute("print(open('/home/student/answers.txt').read())"), 'bob only\n');
  });

  it("/proc shows only the student's own container: the classmate's server and its environment are not there", async () => {
    const bobPid = Number(await inspect('{{.State.Pid}}', `${instance}-nb-bob`));
    const seen = JSON.parse(
      await aliceKernel.execute(
        [
          'import os, json',
          "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())",
          'users = set()',
          'for p in pids:',
          '    try:',
          "        env = open(f'/proc/{p}/environ', 'rb').read().split(b'\\0')",
          "        users |= {e.decode().split('=', 1)[1] for e in env if e.startswith(b'OERHUB_USER=')}",
          '    except (FileNotFoundError, ProcessLookupError):',
          '        pass',
          'def _environ(p):',
          '    try:',
          "        open(f'/proc/{p}/environ', 'rb').read(1); return 'ok'",
          '    except Exception as e:',
          '        return type(e).__name__',
          `print(json.dumps({'count': len(pids), 'users': sorted(users), 'bob': _environ(${bobPid}), 'hub': _environ(${process.pid})}))`,
        ].join('\n'),
      ),
    ) as { count: number; users: string[]; bob: string; hub: string };
    // Bob's server and the hub, as the host numbers them, do not exist in Alice's process namespace.
    assert.equal(seen.bob, 'FileNotFoundError');
    assert.equal(seen.hub, 'FileNotFoundError');
    assert.deepEqual(seen.users, ['alice'], "every process Alice can see is one of her own server's");
    // The init process, Jupyter and her kernel: nothing of the host or of Bob's container.
    const top = await docker(['top', `${instance}-nb-alice`, '-o', 'pid']);
    assert.equal(seen.count, top.stdout.trim().split('\n').length - 1, top.stdout);
  });

  it("the hub's Redis can't be reached from a student's container, on its loopback or on the bridge's gateway", async () => {
    const set = JSON.stringify('SET oerhub:user:admin x\r\n');
    const results = await runProbes(aliceKernel, {
      loopback: `_tcp('127.0.0.1', ${redis.port}, ${set})`,
      gateway: `_tcp(${JSON.stringify(gateway)}, ${redis.port}, ${set})`,
    });
    // The container's 127.0.0.1 is its own, and the host's Redis listens on the host's 127.0.0.1
    // only. Were a connection ever to open, the reply would have to be Redis' NOAUTH refusal.
    for (const [where, r] of Object.entries(results)) {
      if (r.result === 'ok') assert.match(r.reply ?? '', /^-NOAUTH/, `${where}: Redis answered ${r.reply}`);
      else assert.equal(r.result, 'ConnectionRefusedError', where);
    }
    assert.deepEqual(results, { loopback: { result: 'ConnectionRefusedError' }, gateway: { result: 'ConnectionRefusedError' } });
  });

  it("a forged X-Remote-User: admin and X-Forwarded-For sent from a student's container reach no hub that believes them", async () => {
    const port = Number(new URL(hub.url).port);
    const results = await runProbes(aliceKernel, {
      loopback: `_http('127.0.0.1', ${port})`,
      gateway: `_http(${JSON.stringify(gateway)}, ${port})`,
      // The probe can get an answer: Alice's own Jupyter replies (with whatever status).
      ownJupyter: "_http('127.0.0.1', 8888)",
    });
    assert.equal(results.ownJupyter?.result, 'ok', JSON.stringify(results.ownJupyter));
    delete results.ownJupyter;
    // The hub listens on the host's 127.0.0.1 (bindHost): from a container, nothing answers. Were
    // it reachable, the TCP port believes neither header (front-door.test.ts): 401, no cookie.
    for (const [where, r] of Object.entries(results)) {
      if (r.result === 'ok') assert.equal(r.reply, '401 cookie=false', where);
      else assert.equal(r.result, 'ConnectionRefusedError', where);
    }
    assert.deepEqual(results, { loopback: { result: 'ConnectionRefusedError' }, gateway: { result: 'ConnectionRefusedError' } });
    assert.equal((await hub.users.get('admin'))?.source, 'local', 'nobody was signed in as admin from a header');
  });
});
