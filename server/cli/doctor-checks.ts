import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import Redis from 'ioredis';
import type { HubConfig } from '../config/index.js';
import { isRedisSocketPath, redisUrlHasPassword } from '../config/store-schema.js';
import { DockerEngine } from '../spawner/docker-engine.js';

/** One line of `oerhub doctor`: what was checked, how it went, and what to do about it. */
export interface CheckResult {
  readonly name: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly message: string;
  readonly fix?: string;
}

/** What the operator pointed the doctor at, besides the hub's config. */
export interface DoctorInputs {
  config: HubConfig;
  /** A main nginx config to test with `nginx -t -c` (its ssl_certificate files are checked too). */
  nginxConf?: string;
  /** Certificate files to check. */
  certs: string[];
  /** The checkout the hub runs from (for fixes that name its scripts). */
  repoRoot: string;
}

const TIMEOUT_MS = 10_000;
const GIB = 1024 ** 3;

function run(cmd: string, args: string[], timeoutMs = TIMEOUT_MS): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

const ok = (name: string, message: string): CheckResult => ({ name, status: 'ok', message });
const warn = (name: string, message: string, fix?: string): CheckResult => ({ name, status: 'warn', message, fix });
const fail = (name: string, message: string, fix?: string): CheckResult => ({ name, status: 'fail', message, fix });

/** The daemon.json a running dockerd reads: its --config-file, else Debian's default. */
function dockerdSettings(): { file: string; flags: string[]; settings: Record<string, unknown> | undefined } {
  let flags: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (args[0] && path.basename(args[0]) === 'dockerd') {
        flags = args.slice(1);
        break;
      }
    } catch {
      // A process that ended meanwhile.
    }
  }
  const at = flags.findIndex((f) => f === '--config-file' || f.startsWith('--config-file='));
  const file = at < 0 ? '/etc/docker/daemon.json' : flags[at].includes('=') ? flags[at].split('=')[1] : flags[at + 1];
  try {
    return { file, flags, settings: JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> };
  } catch {
    return { file, flags, settings: undefined };
  }
}

/** Docker engine: answers, live-restore on, userland proxy off; then the profiles' images. */
export async function checkDocker(inputs: DoctorInputs): Promise<CheckResult[]> {
  const { config } = inputs;
  const needed = config.spawner === 'docker';
  const bad = needed ? fail : warn;
  const engine = new DockerEngine(config.dockerSocket, 5_000);
  let info: Awaited<ReturnType<DockerEngine['info']>>;
  try {
    info = await engine.info();
  } catch (err) {
    return [bad('docker', `the engine at ${config.dockerSocket} does not answer (${(err as Error).message})${needed ? '' : '; spawner=local does not need it'}`, 'install and start it: apt-get install -y docker.io, then systemctl start docker (or bash .ci/docker.sh daemon-start)')];
  }
  const out: CheckResult[] = [];
  const daemon = dockerdSettings();
  const proxyOff = daemon.flags.includes('--userland-proxy=false') || daemon.settings?.['userland-proxy'] === false;
  const problems: string[] = [];
  if (!info.liveRestore) problems.push('live-restore is off (a dockerd restart would stop every student\'s container)');
  if (!proxyOff) problems.push(`userland-proxy is not false in ${daemon.file} (published ports would go away while dockerd restarts)`);
  if (problems.length) out.push(bad('docker', `engine ${info.version} answers, but ${problems.join('; ')}`, `put {"live-restore": true, "userland-proxy": false} in ${daemon.file} and restart dockerd (oerhub install does this)`));
  else out.push(ok('docker', `engine ${info.version} answers at ${config.dockerSocket}; live-restore on, userland-proxy off (${daemon.file})`));

  const images = [...new Set(config.dockerProfiles.map((p) => p.image))];
  const missing: string[] = [];
  for (const image of images) if (!(await engine.inspectImage(image).catch(() => undefined))) missing.push(image);
  if (missing.length) out.push(bad('images', `missing on the engine: ${missing.join(', ')}${needed ? '' : ' (spawner=local does not use them)'}`, `build them: bash ${path.join(inputs.repoRoot, 'images/build.sh')} (or change dockerProfiles)`));
  else out.push(ok('images', `present: ${images.join(', ')}`));
  return out;
}

/** Redis (store=redis): reachable with the configured password, and refusing clients without one. */
export async function checkRedis({ config }: DoctorInputs): Promise<CheckResult[]> {
  if (config.store !== 'redis') return [ok('redis', `not used (store=${config.store})`)];
  const connect = (withPassword: boolean): Redis => {
    const url = withPassword ? config.redisUrl : stripPassword(config.redisUrl);
    return new Redis(url, { lazyConnect: true, connectTimeout: 3_000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, ...(withPassword && config.redisPassword ? { password: config.redisPassword } : {}) });
  };
  const ping = async (client: Redis): Promise<string> => {
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.ping();
    } catch (err) {
      return `error: ${(err as Error).message}`;
    } finally {
      client.disconnect();
    }
  };
  const where = isRedisSocketPath(config.redisUrl) ? config.redisUrl.split('?')[0] : new URL(config.redisUrl).host;
  const withPw = await ping(connect(true));
  if (withPw !== 'PONG') return [fail('redis', `Redis at ${where} does not answer: ${redact(withPw)}`, 'start Redis (systemctl start oerhub-redis or redis-server) and check redisUrl and redisPassword')];
  const hasPassword = Boolean(config.redisPassword) || redisUrlHasPassword(config.redisUrl);
  if (!hasPassword && isRedisSocketPath(config.redisUrl)) {
    // Without a password only the socket's permissions keep other programs (students' kernels) out.
    const socket = config.redisUrl.split('?')[0];
    const mode = fs.statSync(socket).mode & 0o777;
    if (mode & 0o006) return [fail('redis', `Redis' socket ${socket} has mode ${mode.toString(8)} and no password is configured: any program on this machine can rewrite the hub's state`, `set unixsocketperm 700 (or 770 with the hub's group) in Redis' config, or requirepass and redisPassword`)];
    return [ok('redis', `Redis at ${socket} answers; no password, the socket's mode ${mode.toString(8)} keeps other users out`)];
  }
  const without = await ping(connect(false));
  if (without === 'PONG') return [fail('redis', `Redis at ${where} answers clients without a password: any program on this machine, a student's kernel included, can rewrite the hub's state`, 'set requirepass in Redis\' config and the same password as redisPassword')];
  return [ok('redis', `Redis at ${where} answers${hasPassword ? ' with the configured password and refuses clients without it' : ' and refuses clients without a password'}`)];
}

function stripPassword(url: string): string {
  if (isRedisSocketPath(url)) return url.split('?')[0];
  const u = new URL(url);
  u.password = '';
  u.username = '';
  u.searchParams.delete('password');
  return u.toString();
}

function redact(text: string): string {
  return text.replace(/(rediss?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
}

/** nginx: installed; the operator's config passes `nginx -t`. */
export async function checkNginx(inputs: DoctorInputs): Promise<CheckResult[]> {
  const needed = Boolean(inputs.nginxConf || inputs.config.frontDoorSocket);
  const version = await run('nginx', ['-v']);
  if (version.code !== 0) {
    const msg = 'nginx is not installed (or not on PATH)';
    return [needed ? fail('nginx', msg, 'apt-get install -y nginx') : warn('nginx', `${msg}; a trial on 127.0.0.1 runs without it`, 'apt-get install -y nginx, for TLS in production')];
  }
  const args = inputs.nginxConf ? ['-t', '-c', path.resolve(inputs.nginxConf)] : ['-t'];
  const test = await run('nginx', args);
  const which = inputs.nginxConf ? path.resolve(inputs.nginxConf) : "nginx's default config";
  const v = version.out.replace(/^nginx version:\s*/, '');
  if (test.code !== 0) return [(needed ? fail : warn)('nginx', `${v}; \`nginx ${args.join(' ')}\` fails: ${lastLine(test.out)}`, `fix ${which} (nginx -t says where), then systemctl reload nginx`)];
  return [ok('nginx', `${v}; \`nginx ${args.join(' ')}\` passes`)];
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => !/test failed|syntax is ok/.test(l));
  // nginx's "2026/12/01 21:15:37 [emerg] 4478#4478: " prefix says nothing the operator needs.
  return (lines.at(-1) ?? text).replace(/^nginx: /, '').replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: /, '');
}

/** ssl_certificate files named in an nginx config and the files it includes (`*` in a file name too), a few levels deep. */
export function certificatesOf(nginxConf: string, depth = 0): string[] {
  let text: string;
  try {
    text = fs.readFileSync(nginxConf, 'utf8');
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const m of text.matchAll(/^\s*ssl_certificate\s+([^;\s]+)\s*;/gm)) out.add(m[1]);
  if (depth < 4) {
    for (const m of text.matchAll(/^\s*include\s+([^;\s]+)\s*;/gm)) {
      const target = path.resolve(path.dirname(nginxConf), m[1]);
      const base = path.basename(target);
      let files = [target];
      if (base.includes('*')) {
        const re = new RegExp(`^${base.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
        try {
          files = fs.readdirSync(path.dirname(target)).filter((f) => re.test(f)).map((f) => path.join(path.dirname(target), f));
        } catch {
          files = [];
        }
      }
      for (const f of files) for (const c of certificatesOf(f, depth + 1)) out.add(c);
    }
  }
  return [...out];
}

/** TLS certificates: readable, not expired (warn within 14 days), naming the hub's or the user-content host. */
export function checkCertificates(inputs: DoctorInputs): CheckResult[] {
  const files = [...new Set([...inputs.certs, ...(inputs.nginxConf ? certificatesOf(inputs.nginxConf) : [])])];
  if (!files.length) return [ok('tls', 'no certificate to check (give --cert FILE or --nginx-conf FILE)')];
  const { config } = inputs;
  const hubHost = config.publicUrl ? new URL(config.publicUrl).hostname : undefined;
  // A server on the user-content domain: a wildcard certificate for it names any such host.
  const userHost = config.originMode === 'subdomain' ? `oerhub-doctor.${config.userContentDomain}` : config.originMode === 'shared-host' ? config.userContentHost : undefined;
  const out: CheckResult[] = [];
  for (const file of files) {
    const name = `tls ${file}`;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(fs.readFileSync(file));
    } catch (err) {
      out.push(fail(name, `cannot be read as a PEM certificate: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'point ssl_certificate / --cert at the certificate (PEM), readable by root'));
      continue;
    }
    const until = new Date(cert.validTo);
    const days = Math.floor((until.getTime() - Date.now()) / 86_400_000);
    if (until.getTime() <= Date.now()) {
      out.push(fail(name, `expired on ${until.toISOString()}`, 'renew it (certbot renew, or your CA), then systemctl reload nginx'));
      continue;
    }
    if (new Date(cert.validFrom).getTime() > Date.now()) {
      out.push(fail(name, `not valid before ${cert.validFrom} (is the clock right?)`, 'check the clock, or issue the certificate again'));
      continue;
    }
    const matches = [hubHost, userHost].filter((h): h is string => Boolean(h) && cert.checkHost(h as string) !== undefined);
    if (!hubHost) out.push(warn(name, `valid for ${days} more days; publicUrl is unset, so its name is not checked`, 'set publicUrl (e.g. https://hub.example.edu)'));
    else if (!matches.length) out.push(fail(name, `does not name ${hubHost}${userHost ? ` or ${userHost}` : ''} (it names ${cert.subjectAltName ?? cert.subject})`, `use a certificate for ${hubHost} (and *.${config.userContentDomain} for user servers)`));
    else if (days < 14) out.push(warn(name, `names ${matches.join(', ')} but expires in ${days} days`, 'renew it soon (certbot renew)'));
    else out.push(ok(name, `names ${matches.join(' and ')}; valid for ${days} more days`));
  }
  return out;
}

/**
 * The clock, from local sources only (no network time query): systemd's timedatectl, chrony,
 * systemd-timesyncd's flag file. SAML checks assertion times against it (samlClockSkewS).
 */
export async function checkClock({ config }: DoctorInputs): Promise<CheckResult[]> {
  const tried: string[] = [];
  const td = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], 5_000);
  if (td.code === 0 && /^(yes|no)$/.test(td.out)) {
    if (td.out === 'yes') return [ok('clock', 'synchronised (timedatectl: NTPSynchronized=yes)')];
    return [warn('clock', 'not synchronised (timedatectl: NTPSynchronized=no)', 'timedatectl set-ntp true, or apt-get install -y chrony')];
  }
  tried.push(td.code === 127 ? 'timedatectl (missing)' : 'timedatectl (no answer: systemd not running)');
  const chrony = await run('chronyc', ['-n', 'tracking'], 5_000);
  if (chrony.code === 0) {
    const leap = /Leap status\s*:\s*(.+)/.exec(chrony.out)?.[1]?.trim();
    const offset = /System time\s*:\s*([\d.]+) seconds (fast|slow)/.exec(chrony.out);
    const seconds = offset ? Number(offset[1]) : NaN;
    if (leap === 'Normal' && seconds < config.samlClockSkewS / 2) return [ok('clock', `synchronised (chronyc tracking: ${seconds} s ${offset?.[2]})`)];
    return [warn('clock', `chrony is not synchronised (leap status ${leap ?? 'unknown'}${offset ? `, ${offset[1]} s ${offset[2]}` : ''})`, 'check chronyc sources')];
  }
  tried.push(chrony.code === 127 ? 'chronyc (missing)' : 'chronyc (no answer)');
  if (fs.existsSync('/run/systemd/timesync/synchronized')) return [ok('clock', 'synchronised (systemd-timesyncd)')];
  tried.push('/run/systemd/timesync/synchronized (absent)');
  return [warn('clock', `no local time synchronisation found (checked ${tried.join(', ')}); SAML sign-ins fail if the clock is more than samlClockSkewS (${config.samlClockSkewS} s) off`, 'apt-get install -y chrony (or enable systemd-timesyncd)')];
}

/** The nearest existing folder at or above dir (statfs needs one). */
function existingAncestor(dir: string): string {
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) d = path.dirname(d);
  return d;
}

/** Free space on one file system: fail under 1 GiB or 2 %, warn under 5 GiB or 10 %. */
function diskLine(name: string, dir: string, what: string): CheckResult {
  const at = existingAncestor(dir);
  const s = fs.statfsSync(at);
  const free = s.bavail * s.bsize;
  const share = s.blocks ? (s.bavail / s.blocks) * 100 : 0;
  const text = `${(free / GIB).toFixed(1)} GiB free (${share.toFixed(0)} %) for ${what} at ${at}`;
  if (free < GIB || share < 2) return fail(name, text, 'free some space (old images: docker image prune; logs), or move it to a larger disk');
  if (free < 5 * GIB || share < 10) return warn(name, text, 'free some space soon');
  return ok(name, text);
}

/** Free disk where the hub keeps its data and where Docker keeps images and volumes. */
export async function checkDisk({ config }: DoctorInputs): Promise<CheckResult[]> {
  const out = [diskLine('disk dataDir', config.dataDir, 'the hub\'s data')];
  const engine = new DockerEngine(config.dockerSocket, 5_000);
  const info = await engine.info().catch(() => undefined);
  if (info) out.push(diskLine('disk docker', info.rootDir, 'Docker\'s images and volumes'));
  return out;
}

/** The data folder: present (or creatable) and writable. */
export function checkDataDir({ config }: DoctorInputs): CheckResult[] {
  const dir = path.resolve(config.dataDir);
  if (!fs.existsSync(dir)) {
    const parent = existingAncestor(dir);
    try {
      fs.accessSync(parent, fs.constants.W_OK);
      return [ok('dataDir', `${dir} does not exist yet; the hub makes it at its first start`)];
    } catch {
      return [fail('dataDir', `${dir} does not exist and ${parent} is not writable`, 'create it (mkdir -p, owned by the hub\'s user) or set OERHUB_DATA_DIR')];
    }
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    return [fail('dataDir', `${dir} is not writable`, 'chown it to the hub\'s user, or set OERHUB_DATA_DIR')];
  }
  return [ok('dataDir', `${dir} is writable (store=${config.store})`)];
}

/** The notebook venv of the local spawner: jupyter and the hub's identity provider import. */
export async function checkVenv({ config, repoRoot }: DoctorInputs): Promise<CheckResult[]> {
  if (config.spawner !== 'local') return [ok('venv', `not used (spawner=${config.spawner})`)];
  const venv = path.resolve(config.notebookVenv);
  const python = path.join(venv, 'bin', 'python');
  const fix = `build it: npm run venv (in ${repoRoot}), or set notebookVenv`;
  if (!fs.existsSync(path.join(venv, 'bin', 'jupyter'))) return [fail('venv', `${venv} has no bin/jupyter`, fix)];
  const probe = await run(python, ['-c', 'import jupyterlab, jupyter_server, oerhub_singleuser; print(jupyterlab.__version__)'], 30_000);
  if (probe.code !== 0) return [fail('venv', `${venv} is incomplete: ${lastLine(probe.out)}`, fix)];
  return [ok('venv', `${venv}: JupyterLab ${probe.out.split('\n').at(-1)}`)];
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether an oerhub answers /hub/health at this address (or socket). */
function hubAnswers(options: { host?: string; port?: number; socketPath?: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ ...options, path: '/hub/health', timeout: 3_000, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(/"status"/.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The hub's port (and front-door socket): free, or taken by a hub that answers; not by another program. */
export async function checkPorts({ config }: DoctorInputs): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const where = `${config.bindHost}:${config.port}`;
  if (!(await tcpOpen(config.bindHost, config.port))) out.push(ok('port', `${where} is free for the hub`));
  else if (await hubAnswers({ host: config.bindHost, port: config.port })) out.push(ok('port', `${where}: the hub is running and answers /hub/health`));
  else out.push(fail('port', `${where} is taken by another program`, `stop it (ss -ltnp 'sport = :${config.port}' names it) or set OERHUB_PORT`));
  if (config.frontDoorSocket) {
    const sock = config.frontDoorSocket;
    if (!fs.existsSync(sock)) {
      const dir = path.dirname(sock);
      out.push(fs.existsSync(dir) ? ok('front door', `${sock} is free; the hub makes it at start`) : warn('front door', `${dir} does not exist`, `the hub's systemd unit makes it (RuntimeDirectory=oerhub); otherwise mkdir -p ${dir}`));
    } else if (await hubAnswers({ socketPath: sock })) out.push(ok('front door', `${sock}: the hub answers on it`));
    else out.push(warn('front door', `${sock} exists but nobody answers on it (left by a hub that stopped?)`, 'the hub replaces it at start; nothing to do unless another program owns it'));
  }
  return out;
}
