import { randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CliError, type CliCommand, type CliContext } from './command.js';
import { account, ensureDir, ensureFile, sh, systemdRuns, under, type InstallTarget, type StepResult } from './install-files.js';
import { REPO_ROOT } from './repo-root.js';

/** What the operator asked for. */
export interface InstallOptions {
  host: string;
  userDomain?: string;
  cert?: string;
  key?: string;
  usersCert?: string;
  usersKey?: string;
  samlIdpMetadata?: string;
  root: string;
  dryRun?: boolean;
  systemd: boolean;
  packages: boolean;
  images: boolean;
  httpsPort: string;
  httpPort: string;
  hubPort: string;
  dockerInstance: string;
}

/** Debian packages a production hub needs. */
const PACKAGES = ['docker.io', 'redis-server', 'nginx', 'openssl'];
const IMAGES = ['oerhub/python:latest', 'oerhub/r:latest'];

/** Every path the installer writes, on the target machine (before the --root prefix). */
const PATHS = {
  daemonJson: '/etc/docker/daemon.json',
  etc: '/etc/oerhub',
  config: '/etc/oerhub/config.json',
  redisConf: '/etc/oerhub/redis.conf',
  redisDir: '/var/lib/oerhub-redis',
  redisRun: '/run/oerhub-redis',
  redisSocket: '/run/oerhub-redis/redis.sock',
  tls: '/etc/oerhub/tls',
  idpMetadata: '/etc/oerhub/idp-metadata.xml',
  site: '/etc/nginx/conf.d/oerhub.conf',
  nginxMain: '/etc/nginx/nginx.conf',
  nginxTemp: '/var/lib/oerhub-nginx',
  acme: '/var/www/letsencrypt',
  hubRun: '/run/oerhub',
  hubSocket: '/run/oerhub/hub.sock',
  dataDir: '/var/lib/oerhub',
  hubUnit: '/etc/systemd/system/oerhub.service',
  redisUnit: '/etc/systemd/system/oerhub-redis.service',
  wrapper: '/usr/local/bin/oerhub',
} as const;

class Installer {
  readonly results: StepResult[] = [];
  /** systemd units and services to act on at the end (only when systemd runs). */
  private readonly restart = new Set<string>();
  private unitsChanged = false;

  constructor(
    private readonly o: InstallOptions,
    private readonly t: InstallTarget,
    private readonly context: CliContext,
  ) {}

  private p(key: keyof typeof PATHS): string {
    return under(this.t, PATHS[key]);
  }

  private record(step: string, changed: boolean | string[], detail: string): void {
    const did = Array.isArray(changed) ? changed.length > 0 : changed;
    const r: StepResult = { step, outcome: did ? 'changed' : 'unchanged', detail: Array.isArray(changed) && changed.length ? `${detail}: ${changed.join(', ')}` : detail };
    this.results.push(r);
    this.context.out(`${did ? (this.t.dryRun ? 'would change' : 'changed  ') : 'unchanged'}  ${step}: ${r.detail}`);
  }

  private get userDomain(): string {
    return this.o.userDomain ?? `users.${this.o.host}`;
  }

  private get publicUrl(): string {
    return `https://${this.o.host}${this.o.httpsPort === '443' ? '' : `:${this.o.httpsPort}`}`;
  }

  async packages(): Promise<void> {
    if (!this.o.packages) return this.record('packages', false, 'skipped (--no-packages)');
    const missing: string[] = [];
    for (const pkg of PACKAGES) {
      const q = await sh('dpkg-query', ['-W', '-f=${Status}', pkg], { timeoutMs: 30_000 });
      if (!/install ok installed/.test(q.out)) missing.push(pkg);
    }
    if (missing.length && !this.t.dryRun) {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const update = await sh('apt-get', ['update', '-q'], { env });
      if (update.code !== 0) throw new CliError(`apt-get update failed:\n${update.out.slice(-2000)}`);
      const install = await sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
      if (install.code !== 0) throw new CliError(`apt-get install ${missing.join(' ')} failed:\n${install.out.slice(-2000)}`);
    }
    this.record('packages', missing, missing.length ? 'installed from Debian' : `${PACKAGES.join(', ')} installed`);
  }

  /** live-restore (containers survive a dockerd restart) and no userland proxy (ports survive it too). */
  docker(): void {
    const file = this.p('daemonJson');
    let current: Record<string, unknown> = {};
    try {
      current = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`${file} is not valid JSON (${(err as Error).message}): fix or remove it, then run again`);
    }
    const wanted = { ...current, 'live-restore': true, 'userland-proxy': false };
    const changed = ensureFile(this.t, file, JSON.stringify(wanted, null, 2) + '\n', 0o644);
    if (changed) this.restart.add('docker');
    this.record('docker', changed, `${file}: live-restore true, userland-proxy false${changed ? ' (dockerd restarts to apply them)' : ''}`);
  }

  async images(): Promise<void> {
    if (!this.o.images) return this.record('images', false, 'skipped (--no-images)');
    if (this.restart.has('docker') && systemdRuns() && this.o.systemd && !this.t.dryRun) await this.systemctl(['restart', 'docker']);
    const ids = async (): Promise<string> => (await Promise.all(IMAGES.map(async (i) => (await sh('docker', ['image', 'inspect', '-f', '{{.Id}}', i], { timeoutMs: 30_000 })).out))).join(' ');
    const info = await sh('docker', ['info'], { timeoutMs: 30_000 });
    if (info.code !== 0) {
      if (systemdRuns() && this.o.systemd && !this.t.dryRun) await this.systemctl(['start', 'docker']);
      else throw new CliError('the Docker engine does not answer: start dockerd (systemctl start docker), then run this again');
    }
    const before = await ids();
    if (this.t.dryRun) return this.record('images', before.includes('sha256:') ? false : IMAGES, 'built by images/build.sh');
    const build = await sh('bash', [path.join(REPO_ROOT, 'images', 'build.sh')], { timeoutMs: 3_600_000 });
    if (build.code !== 0) throw new CliError(`images/build.sh failed:\n${build.out.slice(-3000)}`);
    const after = await ids();
    this.record('images', before === after ? false : IMAGES, before === after ? `${IMAGES.join(', ')} up to date` : 'built by images/build.sh');
  }

  /** Redis of its own: a Unix socket only (no TCP port), a password, append-only persistence. */
  redis(): { password: string } {
    const conf = this.p('redisConf');
    const existing = fs.existsSync(conf) ? /^requirepass\s+(\S+)/m.exec(fs.readFileSync(conf, 'utf8'))?.[1] : undefined;
    const password = existing ?? randomBytes(24).toString('hex');
    const redisUser = account('redis');
    const changes: string[] = [];
    if (ensureDir(this.t, this.p('redisDir'), 0o750, redisUser)) changes.push(PATHS.redisDir);
    if (ensureDir(this.t, this.p('redisRun'), 0o750, redisUser)) changes.push(PATHS.redisRun);
    const text = [
      '# Written by `oerhub install`: the hub\'s own Redis, reachable only through its Unix socket.',
      'port 0',
      `unixsocket ${this.p('redisSocket')}`,
      'unixsocketperm 700',
      `requirepass ${password}`,
      `dir ${this.p('redisDir')}`,
      'appendonly yes',
      'appendfsync everysec',
      'save ""',
      'daemonize no',
      'protected-mode yes',
      '',
    ].join('\n');
    if (ensureFile(this.t, conf, text, 0o600, redisUser)) changes.push(PATHS.redisConf);
    const unit = [
      '[Unit]',
      'Description=Redis for oerhub (Unix socket only)',
      'After=network.target',
      '',
      '[Service]',
      `ExecStart=/usr/bin/redis-server ${this.p('redisConf')}`,
      ...(redisUser ? ['User=redis', 'Group=redis'] : []),
      'RuntimeDirectory=oerhub-redis',
      'RuntimeDirectoryMode=0750',
      'Restart=always',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n');
    if (ensureFile(this.t, this.p('redisUnit'), unit, 0o644)) {
      changes.push(PATHS.redisUnit);
      this.unitsChanged = true;
    }
    if (changes.length) this.restart.add('oerhub-redis');
    this.record('redis', changes, `socket ${PATHS.redisSocket}, password ${existing ? 'kept' : 'generated'} (in ${PATHS.redisConf} and the hub's config, both 0600)`);
    return { password };
  }

  /** The certificate nginx serves: the operator's, or a self-signed one for the hub and *.userDomain (a trial). */
  async tls(): Promise<{ cert: string; key: string; usersCert: string; usersKey: string }> {
    const dir = this.p('tls');
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    const changes: string[] = [];
    if (ensureDir(this.t, dir, 0o755)) changes.push(PATHS.tls);
    if (this.o.cert || this.o.key) {
      if (!this.o.cert || !this.o.key) throw new CliError('give --cert and --key together');
      const copy = (from: string, to: string, mode: number): void => {
        let data: Buffer;
        try {
          data = fs.readFileSync(from);
        } catch (err) {
          throw new CliError(`${from} can't be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
        if (ensureFile(this.t, to, data, mode)) changes.push(to);
      };
      copy(this.o.cert, cert, 0o644);
      copy(this.o.key, key, 0o600);
      const usersCert = path.join(dir, 'users-cert.pem');
      const usersKey = path.join(dir, 'users-key.pem');
      copy(this.o.usersCert ?? this.o.cert, usersCert, 0o644);
      copy(this.o.usersKey ?? this.o.key, usersKey, 0o600);
      this.record('tls', changes, `the given certificate${this.o.usersCert ? 's' : ''} in ${PATHS.tls}`);
      return { cert, key, usersCert, usersKey };
    }
    // A trial certificate stays as long as it names the hosts and has a month left.
    let keep = false;
    try {
      const x = new X509Certificate(fs.readFileSync(cert));
      keep = fs.existsSync(key) && x.checkHost(this.o.host) !== undefined && x.checkHost(`a.${this.userDomain}`) !== undefined && new Date(x.validTo).getTime() > Date.now() + 30 * 86_400_000;
    } catch {
      keep = false;
    }
    if (!keep) {
      changes.push('self-signed certificate');
      if (!this.t.dryRun) {
        const made = await sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '365', '-subj', `/CN=${this.o.host}`,
          '-addext', `subjectAltName=DNS:${this.o.host},DNS:*.${this.userDomain}`, '-addext', 'basicConstraints=critical,CA:FALSE',
          '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment', '-addext', 'extendedKeyUsage=serverAuth', '-keyout', key, '-out', cert], { timeoutMs: 60_000 });
        if (made.code !== 0) throw new CliError(`openssl could not make a certificate: ${made.out}`);
        fs.chmodSync(key, 0o600);
        fs.chmodSync(cert, 0o644);
      }
    }
    this.record('tls', changes, `self-signed for ${this.o.host} and *.${this.userDomain} (a trial: browsers warn; give --cert/--key for production)`);
    return { cert, key, usersCert: cert, usersKey: key };
  }

  /** nginx/oerhub.conf for this host: TLS, HTTP to HTTPS, the front-door socket, user content on *.userDomain. */
  nginx(tls: { cert: string; key: string; usersCert: string; usersKey: string }): void {
    let site = fs.readFileSync(path.join(REPO_ROOT, 'nginx', 'oerhub.conf'), 'utf8');
    const replace = (from: string | RegExp, to: string): void => {
      const next = site.replace(from, to);
      if (next === site) throw new Error(`nginx/oerhub.conf no longer contains ${String(from)}; update server/cli/install.ts`);
      site = next;
    };
    replace(/listen 443 ssl http2;/g, `listen ${this.o.httpsPort} ssl http2;`);
    replace(/listen \[::\]:443 ssl http2;/g, `listen [::]:${this.o.httpsPort} ssl http2;`);
    replace(/listen 80;/g, `listen ${this.o.httpPort};`);
    replace(/listen \[::\]:80;/g, `listen [::]:${this.o.httpPort};`);
    replace(/hub\.example\.edu/g, this.o.host);
    replace(/users\.example\.edu/g, this.userDomain);
    replace('server unix:/run/oerhub/hub.sock;', `server unix:${this.p('hubSocket')};`);
    replace('/etc/oerhub/tls/cert.pem', tls.cert);
    replace('/etc/oerhub/tls/key.pem', tls.key);
    replace('/etc/oerhub/tls/users-cert.pem', tls.usersCert);
    replace('/etc/oerhub/tls/users-key.pem', tls.usersKey);
    replace(/\/var\/www\/letsencrypt/g, this.p('acme'));
    if (this.o.httpsPort !== '443') replace('return 301 https://$host$request_uri;', `return 301 https://$host:${this.o.httpsPort}$request_uri;`);
    const changes: string[] = [];
    if (ensureFile(this.t, this.p('site'), `# Written by \`oerhub install\` from nginx/oerhub.conf; running it again rewrites this file.\n${site}`, 0o644)) changes.push(PATHS.site);
    // Under --root the tree stands alone: a main config that includes the site (nginx -c), with its own temp and log files.
    if (this.t.root !== '/') {
      const www = account('www-data');
      const temp = this.p('nginxTemp');
      if (ensureDir(this.t, temp, 0o750, www)) changes.push(PATHS.nginxTemp);
      const main = [
        '# Written by `oerhub install --root`: a stand-alone nginx for this tree (nginx -c THIS).',
        ...(www ? ['user www-data;'] : []),
        'worker_processes auto;',
        `pid ${path.join(temp, 'nginx.pid')};`,
        `error_log ${path.join(temp, 'error.log')};`,
        'events { worker_connections 768; }',
        'http {',
        '  include /etc/nginx/mime.types;',
        '  default_type application/octet-stream;',
        `  access_log ${path.join(temp, 'access.log')};`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((d) => `  ${d}_temp_path ${path.join(temp, d)};`),
        `  include ${this.p('site')};`,
        '}',
        '',
      ].join('\n');
      if (ensureFile(this.t, this.p('nginxMain'), main, 0o644)) changes.push(PATHS.nginxMain);
    }
    if (changes.length) this.restart.add('nginx');
    this.record('nginx', changes, `${this.o.host} and *.${this.userDomain} on ${this.o.httpsPort} (TLS) and ${this.o.httpPort} (to HTTPS), to the hub's socket ${PATHS.hubSocket}`);
  }

  /** The hub's config file: Redis, Docker, the front door, the public URL, SAML. Secrets are generated once and kept. */
  hubConfig(redisPassword: string): string {
    const file = this.p('config');
    let current: Record<string, unknown> = {};
    try {
      current = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`${file} is not valid JSON (${(err as Error).message}): fix or remove it, then run again`);
    }
    const changes: string[] = [];
    const saml: Record<string, unknown> = {};
    if (this.o.samlIdpMetadata) {
      let xml: Buffer;
      try {
        xml = fs.readFileSync(this.o.samlIdpMetadata);
      } catch (err) {
        throw new CliError(`${this.o.samlIdpMetadata} can't be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      if (!/EntityDescriptor/.test(xml.toString('utf8'))) throw new CliError(`${this.o.samlIdpMetadata} is not SAML metadata (no EntityDescriptor)`);
      if (ensureFile(this.t, this.p('idpMetadata'), xml, 0o644)) changes.push(PATHS.idpMetadata);
      Object.assign(saml, { samlEnabled: true, samlIdpMetadataFile: this.p('idpMetadata') });
    }
    // The operator's own keys stay; the installer's own are set from the options each run.
    const config: Record<string, unknown> = {
      ...current,
      port: Number(this.o.hubPort),
      publicUrl: this.publicUrl,
      userContentDomain: this.userDomain,
      dataDir: this.p('dataDir'),
      store: 'redis',
      redisUrl: this.p('redisSocket'),
      redisPassword,
      cookieSecret: typeof current.cookieSecret === 'string' ? current.cookieSecret : randomBytes(32).toString('base64url'),
      spawner: 'docker',
      dockerInstance: this.o.dockerInstance,
      frontDoorSocket: this.p('hubSocket'),
      frontDoorSocketGroup: account('www-data') ? 'www-data' : undefined,
      ...saml,
    };
    for (const k of Object.keys(config)) if (config[k] === undefined) delete config[k];
    if (ensureFile(this.t, file, JSON.stringify(config, null, 2) + '\n', 0o600)) changes.push(PATHS.config);
    if (changes.length) this.restart.add('oerhub');
    this.record('hub config', changes, `${PATHS.config}: store=redis, spawner=docker, publicUrl ${this.publicUrl}, front door ${PATHS.hubSocket}${this.o.samlIdpMetadata ? ', SAML on' : ''}`);
    return file;
  }

  /** The hub's systemd unit (and the `oerhub` command on PATH with this config). */
  hubUnit(configFile: string): void {
    const node = process.execPath;
    const unit = [
      '[Unit]',
      'Description=oerhub notebook hub',
      'After=network-online.target docker.service oerhub-redis.service',
      'Wants=network-online.target',
      'Requires=docker.service oerhub-redis.service',
      '',
      '[Service]',
      `ExecStart=${node} ${path.join(REPO_ROOT, 'dist', 'server', 'main.js')} --config ${configFile}`,
      `WorkingDirectory=${REPO_ROOT}`,
      // The front-door socket's folder; kept across restarts so nginx's upstream path stays.
      'RuntimeDirectory=oerhub',
      'RuntimeDirectoryPreserve=yes',
      // SIGTERM to the hub only: students' servers keep running and the next start adopts them.
      'KillMode=process',
      'Restart=on-failure',
      'RestartSec=2',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n');
    const changes: string[] = [];
    if (ensureFile(this.t, this.p('hubUnit'), unit, 0o644)) {
      changes.push(PATHS.hubUnit);
      this.unitsChanged = true;
      this.restart.add('oerhub');
    }
    if (ensureDir(this.t, this.p('hubRun'), 0o755)) changes.push(PATHS.hubRun);
    const wrapper = `#!/bin/sh\n# Written by \`oerhub install\`: the oerhub command with this hub's config.\nOERHUB_CONFIG=${configFile} exec ${node} ${path.join(REPO_ROOT, 'dist', 'server', 'cli', 'main.js')} "$@"\n`;
    if (ensureFile(this.t, this.p('wrapper'), wrapper, 0o755)) changes.push(PATHS.wrapper);
    this.record('systemd unit', changes, `${PATHS.hubUnit} (KillMode=process: a restart keeps students' servers) and ${PATHS.wrapper}`);
  }

  private async systemctl(args: string[]): Promise<void> {
    const r = await sh('systemctl', args, { timeoutMs: 300_000 });
    if (r.code !== 0) throw new CliError(`systemctl ${args.join(' ')} failed: ${r.out}`);
  }

  /** Starts what changed, only where systemd runs (and not with --no-systemd or --root). */
  async services(): Promise<void> {
    const can = systemdRuns() && this.o.systemd && this.t.root === '/';
    const why = !this.o.systemd ? '--no-systemd' : this.t.root !== '/' ? '--root' : 'systemd does not run here';
    if (!can || this.t.dryRun) {
      if (this.t.dryRun || !this.restart.size) return;
      this.context.out(`note       services: not started (${why}); start them yourself: ${[...this.restart].join(', ')}`);
      return;
    }
    const done: string[] = [];
    if (this.unitsChanged) await this.systemctl(['daemon-reload']);
    if (this.restart.has('docker')) done.push('docker');
    for (const unit of ['oerhub-redis', 'oerhub']) {
      const enabled = await sh('systemctl', ['is-enabled', unit], { timeoutMs: 30_000 });
      if (enabled.out !== 'enabled') {
        await this.systemctl(['enable', unit]);
        done.push(`enabled ${unit}`);
      }
    }
    if (this.restart.has('nginx')) {
      const test = await sh('nginx', ['-t']);
      if (test.code !== 0) throw new CliError(`nginx -t fails after writing ${PATHS.site}:\n${test.out}`);
      await this.systemctl(['reload-or-restart', 'nginx']);
      done.push('nginx reloaded');
    }
    for (const unit of ['oerhub-redis', 'oerhub']) {
      const active = (await sh('systemctl', ['is-active', unit], { timeoutMs: 30_000 })).out === 'active';
      if (!active || this.restart.has(unit)) {
        await this.systemctl([active ? 'restart' : 'start', unit]);
        done.push(`${active ? 'restarted' : 'started'} ${unit}`);
      }
    }
    this.record('services', done, 'systemd');
  }

  saml(): void {
    const sp = `${this.publicUrl}/hub/saml/metadata`;
    if (this.o.samlIdpMetadata) this.context.out(`note       SAML: register this hub at your IdP with its metadata: ${sp} (ACS ${this.publicUrl}/hub/saml/acs); the IdP's metadata is ${PATHS.idpMetadata}`);
    else this.context.out(`note       SAML: not set up; run again with --saml-idp-metadata FILE (your IdP's metadata), then register ${sp} at the IdP`);
  }
}

function checkOptions(o: InstallOptions): void {
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}$/i.test(o.host) && o.host !== 'localhost') throw new CliError(`--host ${o.host}: expected a DNS name such as hub.example.edu`);
  for (const [name, v] of [['--https-port', o.httpsPort], ['--http-port', o.httpPort], ['--hub-port', o.hubPort]] as const) {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new CliError(`${name} ${v}: expected a port number`);
  }
  if (!/^[a-z0-9][a-z0-9_.-]{0,39}$/.test(o.dockerInstance)) throw new CliError(`--docker-instance ${o.dockerInstance}: lower-case letters, digits, ".", "_" or "-"`);
}

/** `oerhub install`: a production hub on this Debian machine, in one command; a second run changes nothing. */
export const installCommand: CliCommand = {
  register(program, context) {
    program
      .command('install')
      .description('make this Debian machine a production hub: Docker, Redis, images, nginx with TLS, systemd units, SAML wiring (run as root; repeatable)')
      .requiredOption('--host <name>', "the hub's public host name, e.g. hub.example.edu")
      .option('--user-domain <domain>', "parent domain of the users' servers (default users.HOST; needs wildcard DNS)")
      .option('--cert <file>', 'TLS certificate (PEM, chain included) for the hub; without it a self-signed one is made (a trial)')
      .option('--key <file>', 'its private key')
      .option('--users-cert <file>', 'wildcard certificate for *.USER-DOMAIN (default: --cert)')
      .option('--users-key <file>', 'its private key (default: --key)')
      .option('--saml-idp-metadata <file>', "your IdP's SAML metadata: turns SAML sign-in on")
      .option('--root <dir>', 'write every file under this folder instead of / (tests, images); starts nothing', '/')
      .option('--dry-run', 'say what would change, change nothing')
      .option('--no-systemd', 'write the units but never call systemctl')
      .option('--no-packages', 'do not install Debian packages')
      .option('--no-images', 'do not build the notebook images')
      .option('--https-port <port>', 'port nginx serves TLS on', '443')
      .option('--http-port <port>', 'port nginx redirects to HTTPS from', '80')
      .option('--hub-port <port>', 'the hub\'s own TCP port on 127.0.0.1', '8000')
      .option('--docker-instance <name>', 'name of this hub on the Docker engine (containers, volumes, network)', 'oerhub')
      .action(async (o: InstallOptions) => {
        checkOptions(o);
        if (process.getuid?.() !== 0 && !o.dryRun) throw new CliError('run it as root (sudo): it installs packages and writes into /etc');
        const started = Date.now();
        const target: InstallTarget = { root: path.resolve(o.root), dryRun: Boolean(o.dryRun) };
        if (target.root !== '/' && !target.dryRun) fs.mkdirSync(target.root, { recursive: true });
        const installer = new Installer(o, target, context);
        await installer.packages();
        installer.docker();
        await installer.images();
        const { password } = installer.redis();
        const tls = await installer.tls();
        installer.nginx(tls);
        const configFile = installer.hubConfig(password);
        installer.hubUnit(configFile);
        await installer.services();
        installer.saml();
        const changed = installer.results.filter((r) => r.outcome === 'changed').length;
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        context.out(`${changed === 0 ? 'no changes' : `${changed} step${changed === 1 ? '' : 's'} changed`}, ${installer.results.length - changed} unchanged, in ${seconds} s${target.dryRun ? ' (dry run: nothing written)' : ''}`);
        if (!target.dryRun && changed) context.out(`Next: the first admin's password is printed once at the hub's first start (journalctl -u oerhub | grep 'First admin'), or make one: oerhub users create NAME --roles admin. Check it all: oerhub doctor --nginx-conf ${target.root === '/' ? '/etc/nginx/nginx.conf' : under(target, PATHS.nginxMain)}`);
      });
  },
};
