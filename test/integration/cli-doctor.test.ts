import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runOerhub } from '../helpers/cli.js';
import { tempDataDir } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { notebookVenv } from '../helpers/venv.js';

/*
 * `oerhub doctor` run for real on this machine: its Docker engine (started by .ci/docker.sh with
 * live-restore and without the userland proxy), the built images, the notebook venv, nginx and
 * Redis. Broken things are made for real too: an image nobody built, an expired certificate,
 * one for another host, an nginx config with an error, a Redis without a password.
 */

const REPO = path.resolve(__dirname, '../..');

/** A certificate for `name` valid only in January 2020 (openssl ca can back-date; req -x509 can't). */
function expiredCert(dir: string, name: string): string {
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'serial'), '01\n');
  fs.writeFileSync(path.join(dir, 'ca.cnf'), `[ca]\ndefault_ca=c\n[c]\ndir=${dir}\ndatabase=${dir}/index.txt\nnew_certs_dir=${dir}\nserial=${dir}/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n`);
  execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', path.join(dir, 'old-key.pem'), '-out', path.join(dir, 'old.csr')], { stdio: 'ignore' });
  execFileSync('openssl', ['ca', '-batch', '-config', path.join(dir, 'ca.cnf'), '-selfsign', '-keyfile', path.join(dir, 'old-key.pem'), '-in', path.join(dir, 'old.csr'), '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-out', path.join(dir, 'old.pem')], { stdio: 'ignore' });
  return path.join(dir, 'old.pem');
}

function line(output: string, name: string): string {
  const found = output.split('\n').find((l) => l.slice(6).startsWith(`${name}:`));
  assert.ok(found, `no "${name}" line in:\n${output}`);
  return found;
}

describe('oerhub doctor on this machine', function () {
  this.timeout(300_000);
  let dir: string;
  let dataDir: string;
  let redis: TestRedis | undefined;
  let openRedis: ChildProcess | undefined;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-cli-doctor-'));
    dataDir = tempDataDir('cli-doctor');
  });
  after(async () => {
    await redis?.stop();
    openRedis?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({ OERHUB_DATA_DIR: dataDir, OERHUB_NOTEBOOK_VENV: notebookVenv(), OERHUB_PORT: '0', ...extra });

  it('the machine as set up: Docker, its settings, the images, the venv and nginx pass; one line per check; exit 0', async () => {
    const run = await runOerhub(['doctor'], env({ OERHUB_SPAWNER: 'docker' }));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(line(run.stdout, 'docker'), /^ok {4}docker: engine \S+ answers at \/var\/run\/docker\.sock; live-restore on, userland-proxy off/);
    assert.match(line(run.stdout, 'images'), /^ok {4}images: present: oerhub\/python:latest, oerhub\/r:latest/);
    assert.match(line(run.stdout, 'nginx'), /^ok {4}nginx: nginx\/[\d.]+; `nginx -t` passes/);
    assert.match(line(run.stdout, 'disk dataDir'), /^ok {4}disk dataDir: [\d.]+ GiB free/);
    assert.match(line(run.stdout, 'disk docker'), /GiB free .* for Docker's images and volumes/);
    // Only local sources: here no time daemon runs, which the doctor says, naming what it looked at.
    assert.match(line(run.stdout, 'clock'), /^(ok|warn) {2,4}clock: .*(timedatectl|chronyc|timesyncd)/);
    assert.match(run.stdout, /\d+ checks: 0 failed/);
    const local = await runOerhub(['doctor'], env());
    assert.equal(local.code, 0, local.stdout);
    assert.match(line(local.stdout, 'venv'), /^ok {4}venv: .*JupyterLab \d/);
  });

  it('an image nobody built, an expired certificate, one for another host and a broken nginx config fail, each with its fix; exit 1', async () => {
    const profiles = JSON.stringify([{ name: 'ghost', displayName: 'Ghost', image: 'oerhub/cli-never-built:none' }]);
    execFileSync('bash', [path.join(REPO, 'nginx/make-cert.sh'), 'other.example.org', path.join(dir, 'other')], { stdio: 'ignore' });
    execFileSync('bash', [path.join(REPO, 'nginx/make-cert.sh'), 'hub.cli.test', path.join(dir, 'good')], { stdio: 'ignore' });
    const expired = expiredCert(dir, 'hub.cli.test');
    const nginxConf = path.join(dir, 'nginx.conf');
    fs.writeFileSync(nginxConf, `events {}\nhttp {\n  server {\n    listen 127.0.0.1:${await freePort()} ssl;\n    ssl_certificate ${path.join(dir, 'good/cert.pem')};\n    ssl_certificate_key ${path.join(dir, 'good/key.pem')};\n    proxy_pass_nonsense on;\n  }\n}\n`);
    const run = await runOerhub(['doctor', '--nginx-conf', nginxConf, '--cert', expired, '--cert', path.join(dir, 'other/cert.pem'), '--cert', path.join(dir, 'missing.pem')],
      env({ OERHUB_SPAWNER: 'docker', OERHUB_DOCKER_PROFILES: profiles, OERHUB_PUBLIC_URL: 'https://hub.cli.test', OERHUB_USER_CONTENT_DOMAIN: 'users.cli.test' }));
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /oerhub: \d+ checks failed/);
    assert.match(line(run.stdout, 'images'), /^FAIL {2}images: missing on the engine: oerhub\/cli-never-built:none — fix: build them: bash \S+images\/build\.sh/);
    assert.match(line(run.stdout, `tls ${expired}`), /^FAIL {2}tls .*: expired on 2020-02-01.* — fix: renew it/);
    assert.match(line(run.stdout, `tls ${path.join(dir, 'other/cert.pem')}`), /^FAIL {2}tls .*: does not name hub\.cli\.test or oerhub-doctor\.users\.cli\.test .*other\.example\.org.* — fix: use a certificate for hub\.cli\.test/);
    assert.match(line(run.stdout, `tls ${path.join(dir, 'missing.pem')}`), /^FAIL {2}tls .*: cannot be read as a PEM certificate: ENOENT/);
    // The certificate named in nginx's config is checked too, and it is fine.
    assert.match(line(run.stdout, `tls ${path.join(dir, 'good/cert.pem')}`), /^ok {4}tls .*: names hub\.cli\.test; valid for \d+ more days/);
    assert.match(line(run.stdout, 'nginx'), /^FAIL {2}nginx: .*`nginx -t -c \S+` fails: unknown directive "proxy_pass_nonsense".* — fix: fix \S+nginx\.conf/);
  });

  it('Redis: reachable with its password passes; a Redis that answers without one fails; one that is down fails', async () => {
    redis = await startRedis();
    const base = { OERHUB_STORE: 'redis', OERHUB_COOKIE_SECRET: 'cookie-secret-for-cli-doctor-0123456789' };
    const good = await runOerhub(['doctor'], env({ ...base, OERHUB_REDIS_URL: redis.url }));
    assert.match(line(good.stdout, 'redis'), /^ok {4}redis: Redis at 127\.0\.0\.1:\d+ answers with the configured password and refuses clients without it/);
    assert.doesNotMatch(good.stdout + good.stderr, new RegExp(redis.password), 'the password is never printed');

    const port = await freePort();
    openRedis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const open = await (async () => {
      for (let i = 0; i < 50; i++) {
        // A password in the URL that this Redis doesn't check: the doctor must still notice it needs none.
        const r = await runOerhub(['doctor'], env({ ...base, OERHUB_REDIS_URL: `redis://:whatever@127.0.0.1:${port}/0` }));
        if (!/does not answer/.test(r.stdout)) return r;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error('the password-less redis-server never answered');
    })();
    assert.equal(open.code, 1);
    assert.match(line(open.stdout, 'redis'), /^FAIL {2}redis: .* answers clients without a password.* — fix: set requirepass/);

    await redis.stop();
    const down = await runOerhub(['doctor'], env({ ...base, OERHUB_REDIS_URL: redis.url }));
    assert.equal(down.code, 1);
    assert.match(line(down.stdout, 'redis'), /^FAIL {2}redis: Redis at 127\.0\.0\.1:\d+ does not answer/);
  });
});
