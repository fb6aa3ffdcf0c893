import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { HubClient, CookieJar } from '../helpers/client.js';
import { runOerhub } from '../helpers/cli.js';
import { ADMIN_PASSWORD } from '../helpers/hub.js';
import { eventually, startHubProcess, stopHubProcess, type HubProcess } from '../helpers/hub-process.js';
import { freePort } from '../helpers/ports.js';
import { TestIdp } from '../helpers/saml-idp.js';

/*
 * `oerhub install` for real, as far as this machine allows: no systemd here, so it runs with
 * --root (every file under a temporary folder, nothing started). Debian's packages are
 * checked (they are installed: .ci/run does that), the images are built by images/build.sh on
 * the real engine, and the test then starts what the installer configured the way systemd
 * would: redis-server with its config, nginx with its config, the hub with its config file,
 * and reaches the hub over TLS through nginx and the front-door socket. A second run must
 * change nothing.
 */

const HOST = 'hub.cli.test';

/** Every file under dir with its mode and content hash, to compare two runs. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      if (e.isDirectory()) {
        out.set(p, `dir ${st.mode & 0o777} ${st.uid}`);
        walk(p);
      } else if (e.isFile()) out.set(p, `${st.mode & 0o777} ${st.uid} ${st.mtimeMs} ${fs.readFileSync(p).toString('base64').length}`);
    }
  };
  walk(dir);
  return out;
}

describe('oerhub install on this machine (--root, no systemd): the hub it configures answers over TLS', function () {
  this.timeout(3_600_000);
  let root: string;
  let idp: TestIdp;
  const children: ChildProcess[] = [];
  let hub: HubProcess | undefined;
  const instance = `cli-inst-${randomBytes(3).toString('hex')}`;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-cli-install-'));
    // nginx's workers (www-data) pass through it to the front-door socket, as through / on a real machine.
    fs.chmodSync(root, 0o755);
    idp = await TestIdp.start();
  });
  after(async () => {
    if (hub) await stopHubProcess(hub, 'SIGTERM');
    for (const c of children) if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGTERM');
      await exited;
    }
    await idp.close();
    // The hub made its notebook network on the shared engine; nothing else of this instance exists.
    execFileSync('bash', ['-c', `docker network rm ${instance}-notebooks >/dev/null 2>&1 || true`]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('installs, a second run changes nothing, and Redis, nginx and the hub it configured work together: sign-in over TLS, SAML metadata, doctor all ok', async () => {
    const [httpsPort, httpPort, hubPort] = [await freePort(), await freePort(), await freePort()];
    const args = ['install', '--host', HOST, '--root', root, '--https-port', String(httpsPort), '--http-port', String(httpPort), '--hub-port', String(hubPort),
      '--docker-instance', instance, '--saml-idp-metadata', idp.metadataFile(), '--no-systemd'];

    const dry = await runOerhub([...args, '--dry-run'], {});
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /would change +hub config/);
    assert.deepEqual(fs.readdirSync(root), [], 'a dry run writes nothing');

    const t0 = Date.now();
    const first = await runOerhub(args, {});
    const firstS = (Date.now() - t0) / 1000;
    assert.equal(first.code, 0, first.stdout + first.stderr);
    for (const step of ['docker', 'redis', 'tls', 'nginx', 'hub config', 'systemd unit']) assert.match(first.stdout, new RegExp(`^changed +${step}:`, 'm'), first.stdout);
    assert.match(first.stdout, /^(changed|unchanged) +images:/m);
    assert.match(first.stdout, /services: not started \(--no-systemd\); start them yourself: docker, oerhub-redis, nginx, oerhub/);
    assert.match(first.stdout, new RegExp(`SAML: register this hub at your IdP with its metadata: https://${HOST.replace(/\./g, '\\.')}:${httpsPort}/hub/saml/metadata`));
    const before = snapshot(root);

    const t1 = Date.now();
    const second = await runOerhub(args, {});
    const secondS = (Date.now() - t1) / 1000;
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.doesNotMatch(second.stdout, /^changed/m, second.stdout);
    assert.match(second.stdout, /^no changes, 8 unchanged/m);
    assert.deepEqual(snapshot(root), before, 'the second run rewrote nothing');
    // Reported for BENCHMARKS.md, never asserted.
    console.log(`      install: first run ${firstS.toFixed(1)} s, second run ${secondS.toFixed(1)} s`);

    const etc = path.join(root, 'etc');
    const configFile = path.join(etc, 'oerhub', 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    assert.equal(fs.statSync(configFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(etc, 'oerhub', 'redis.conf')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(etc, 'oerhub', 'tls', 'key.pem')).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(etc, 'docker', 'daemon.json'), 'utf8')), { 'live-restore': true, 'userland-proxy': false });
    const redisConf = fs.readFileSync(path.join(etc, 'oerhub', 'redis.conf'), 'utf8');
    assert.match(redisConf, /^port 0$/m, 'Redis has no TCP port');
    assert.equal(/^requirepass (\S+)$/m.exec(redisConf)?.[1], config.redisPassword);
    const unit = fs.readFileSync(path.join(etc, 'systemd', 'system', 'oerhub.service'), 'utf8');
    assert.match(unit, new RegExp(`ExecStart=\\S+node \\S+/dist/server/main\\.js --config ${configFile}`));
    assert.match(unit, /KillMode=process/);

    // What systemd would start: Redis, nginx, the hub.
    const redis = spawn('redis-server', [path.join(etc, 'oerhub', 'redis.conf')], { stdio: 'ignore' });
    children.push(redis);
    await eventually('Redis makes its socket', () => fs.existsSync(config.redisUrl as string), 10_000);
    const nginxConf = path.join(etc, 'nginx', 'nginx.conf');
    execFileSync('nginx', ['-t', '-c', nginxConf], { stdio: 'pipe' });
    const nginx = spawn('nginx', ['-c', nginxConf, '-g', 'daemon off;'], { stdio: 'ignore' });
    children.push(nginx);
    hub = await startHubProcess('cli-install-hub', { OERHUB_CONFIG: configFile, OERHUB_POOL_SIZE: '0', OERHUB_STOP_SERVERS_ON_EXIT: 'true', OERHUB_ADMIN_PASSWORD: ADMIN_PASSWORD, OERHUB_LOG_LEVEL: 'info' });

    // Over TLS, by name, through nginx and the front-door socket.
    const ca = fs.readFileSync(path.join(etc, 'oerhub', 'tls', 'cert.pem'), 'utf8');
    const jar = new CookieJar();
    const request = (method: string, p: string, form?: Record<string, string>, port = httpsPort, tls = true): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> =>
      new Promise((resolve, reject) => {
        const body = form ? new URLSearchParams(form).toString() : undefined;
        const headers: Record<string, string> = { host: `${HOST}:${port}`, accept: 'text/html', cookie: jar.header(p, HOST) };
        if (body) Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) });
        const mod = tls ? https : http;
        const req = mod.request({ host: '127.0.0.1', port, path: p, method, headers, ca, servername: HOST, agent: false }, (res) => {
          for (const line of res.headers['set-cookie'] ?? []) jar.store(line, p.split('?')[0], HOST);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
        });
        req.on('error', reject);
        req.end(body);
      });
    await eventually('nginx answers over TLS', async () => (await request('GET', '/hub/login').catch(() => ({ status: 0 }))).status === 200, 30_000, 200);
    const login = await request('GET', '/hub/login');
    assert.match(login.body, /Sign in with your institution/, 'SAML is wired: its button is on the sign-in page');
    const signedIn = await request('POST', '/hub/login', { _csrf: HubClient.csrfFrom(login.body), username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(signedIn.status, 303, signedIn.body);
    assert.ok([signedIn.headers['set-cookie'] ?? []].flat().some((c) => /; Secure/i.test(c)), 'the session cookie is Secure behind TLS');
    const me = JSON.parse((await request('GET', '/hub/api/user')).body) as { name: string };
    assert.equal(me.name, 'admin');
    const metadata = await request('GET', '/hub/saml/metadata');
    assert.equal(metadata.status, 200);
    assert.match(metadata.body, new RegExp(`https://${HOST.replace(/\./g, '\\.')}:${httpsPort}/hub/saml/acs`));
    const plain = await request('GET', '/hub/login', undefined, httpPort, false);
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.location, `https://${HOST}:${httpsPort}/hub/login`);
    assert.match(hub.output(), /"store":"redis","spawner":"docker"/);

    // The doctor on the installed hub: nothing fails.
    const doctor = await runOerhub(['doctor', '--nginx-conf', nginxConf], { OERHUB_CONFIG: configFile });
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /^ok {4}redis: Redis at \S+redis\.sock answers with the configured password and refuses clients without it/m);
    assert.match(doctor.stdout, new RegExp(`^ok {4}tls \\S+cert\\.pem: names ${HOST.replace(/\./g, '\\.')} and oerhub-doctor\\.users\\.${HOST.replace(/\./g, '\\.')}`, 'm'));
    assert.match(doctor.stdout, /^ok {4}front door: \S+hub\.sock: the hub answers on it/m);
    assert.match(doctor.stdout, /^ok {4}nginx: .*`nginx -t -c \S+` passes/m);
  });
});
