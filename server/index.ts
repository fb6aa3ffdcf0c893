import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Request } from 'express';
import { csrfSync } from 'csrf-sync';
import type { HubConfig } from './config/index.js';
import { createLogger, type Logger } from './log.js';
import { createStore, describeStoreFailure, type Store } from './store/index.js';
import { ServerRepo, UserRepo } from './store/repos.js';
import { blockedForOthers, createSpawner, hostFacts, planLocalIsolation, type LocalIsolationMode, type Spawner } from './spawner/index.js';
import { HubSessionStore } from './auth/session-store.js';
import { UserService } from './auth/users.js';
import { createAuthenticators, IdentityService } from './auth/index.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { dropForwardedHeaders, FrontDoorListener } from './auth/front-door.js';
import { ActivityTracker, HubProxy, RouteTable, SessionChecker, SignInHandoff, TryWorkspace, UserOrigins, type ProxyPages } from './proxy/index.js';
import { ServerManager } from './servers/server-manager.js';
import { hubStartingPage } from './web/server-routes.js';
import { createViews, headingFor, sendPage, wantsJson } from './web/render.js';
import { createWebApp } from './web/app.js';
import { isVendorAssetRequest, vendorAssetsApp, VENDOR_BASE_PATH } from './web/vendor-assets.js';
import { ImageLabBuilds, LabStatic } from './web/lab-static.js';
import { SampleGallery, findBokehJs } from './notebooks/index.js';
import type { WebDeps } from './web/context.js';
import { HubError, StoreUnavailable } from './errors.js';
import { PoolRepo, WarmPool, hasBusyKernel, type TryIt } from './pool/index.js';
import { EphemeralCuller, PersistentCuller } from './culler/index.js';
import type { Route } from './proxy/route-table.js';
import { LeaderDuties, LeaderLock } from './cluster/index.js';
import { isAnonymousEscapedName, isAnonymousName } from './names.js';
import { countStoreErrors, HubMetrics, RequestDrain } from './ops/index.js';
import { scopeGuard, TokenRepo, TokenService } from './api/index.js';
import { TokenAccess } from './proxy/token-access.js';
import { AuditLog } from './audit/index.js';
import { AccountRepo, AdminService } from './admin/index.js';
import { ProjectAwareSpawner, ProjectRepo, ProjectService, ProjectStorage, SmtpMailer, projectRoutes } from './projects/index.js';
import { AccountService } from './auth/account-service.js';
import { PasswordPolicy } from './auth/account-password-policy.js';
import { accountRoutes } from './auth/account-routes.js';
import { TotpService } from './auth/account-totp.js';
import { accountNameOf } from './spawner/unix-accounts.js';
import { CourseFiles, CourseRepo, CourseService, LOCAL_PROFILE } from './courses/index.js';
import { ShareContent, ShareOrigin, ShareRepo, ShareService, sharePage, shareRoutes } from './sharing/index.js';

export interface Hub {
  /** The address the hub listens on, e.g. http://127.0.0.1:8000. */
  readonly url: string;
  readonly config: HubConfig;
  readonly log: Logger;
  readonly users: UserService;
  readonly manager: ServerManager;
  readonly proxy: HubProxy;
  /** The proxy's route table (admin views, tests). */
  readonly routes: RouteTable;
  /** The warm pool of ephemeral "Try it" servers. */
  readonly pool: WarmPool;
  /** Destroys idle and expired ephemeral servers. */
  readonly culler: EphemeralCuller;
  /** Whether this process leads the hub processes sharing the store (runs the pool refill and the cullers). */
  readonly leader: LeaderLock;
  /** Stops students' idle servers (their files stay). */
  readonly persistentCuller: PersistentCuller;
  /** The audit log of admin actions (AuditLog.record for the API and the CLI). */
  readonly audit: AuditLog;
  /** What admins do to accounts, servers and the pool (each action audited). */
  readonly admin: AdminService;
  /** The "Try it" samples, executed and rendered in the background after the start. */
  readonly samples: SampleGallery;
  /** Generated admin password, present only on the start that created the admin. */
  readonly generatedAdminPassword?: string;
  /** Prometheus metrics (served at /hub/metrics). */
  readonly metrics: HubMetrics;
  /**
   * Close everything in reverse order of creation. Servers keep running unless
   * config.stopServersOnExit. With graceMs (main.ts: shutdownGraceS), first stop accepting
   * connections, answer new requests 503, and wait up to graceMs for requests in flight and
   * server starts to finish.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

export interface HubOptions {
  log?: Logger;
  /** Where views/ lives (defaults to the repository's). */
  viewsDir?: string;
  /** Replace the spawner (tests with fake spawners). */
  spawner?: Spawner;
  /** Replace the cullers' "is a kernel computing?" check (tests: a check that fails, which can't be provoked for real). */
  hasBusyKernel?: (route: Route) => Promise<boolean>;
}

const REPO_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const REVOKE_CHANNEL = 'session-revoked';
// An API token was revoked: every hub process forgets it and closes its WebSockets.
const TOKEN_REVOKED_CHANNEL = 'token-revoked';
// A hub process that is not the leader asks the leader here to refill the warm pool.
const POOL_FILL_CHANNEL = 'pool-fill';
// A client must send its request headers within this time, or the socket is closed (408): a
// slow-header (slowloris) client can't hold sockets. Node derives it from requestTimeout, so
// with requestTimeout 0 it was off.
const HEADERS_TIMEOUT_MS = 20_000;
// How often Node checks for that deadline (its default, 30 s, would more than double it).
const CONNECTIONS_CHECK_MS = 2_000;
// Hub pages and the API must have received their whole request body by then. Proxied /user/
// requests get no such limit (a notebook upload may take long on a slow line).
const HUB_REQUEST_TIMEOUT_MS = 60_000;
/** The TCP listener's and the front door's: no overall request limit (proxied uploads), a header limit. */
const SERVER_TIMEOUTS: http.ServerOptions = { requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_MS };

// Readiness answers within this, even when the store hangs (a load balancer's check has its own timeout).
const READY_CHECK_MS = 2_000;

function isHealthCheck(url: string | undefined): boolean {
  return url === '/hub/health' || url?.startsWith('/hub/health/') === true;
}

/** The promise's value, or `fallback` if it takes longer than ms. */
function withinMs<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A hub startup failure with a message that says what to do. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Folders of dataDir that hold servers' homes; every other entry is the hub's own. */
const HOME_FOLDERS = new Set(['homes', 'ephemeral', 'projects']);

/**
 * Creates the data folder and makes the hub's own files in it private: files 0600, folders
 * 0700. With Unix-account isolation the folder itself is 0711, so each server's account can
 * pass through (never list) it to its own 0700 home under homes/ or ephemeral/.
 */
function prepareDataDir(dir: string, isolation: LocalIsolationMode): void {
  createDataDir(dir);
  try {
    fs.chmodSync(dir, isolation === 'unix-users' ? 0o711 : 0o700);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) fs.chmodSync(full, HOME_FOLDERS.has(entry.name) && isolation === 'unix-users' ? 0o711 : 0o700);
      // Older versions and other parts may have made files with the default umask (0644).
      else if (entry.isFile()) fs.chmodSync(full, fs.statSync(full).mode & 0o700);
    }
  } catch (err) {
    throw dataDirError(dir, err);
  }
}

/** Creates the data folder (0700) if it is missing; a StartupError naming it when it can't be made or written. Safe to repeat. */
function createDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    throw dataDirError(dir, err);
  }
}

function dataDirError(dir: string, err: unknown): StartupError {
  return new StartupError(`The data folder ${dir} (dataDir) cannot be created or written: ${(err as NodeJS.ErrnoException).code ?? String(err)}. Choose another with OERHUB_DATA_DIR.`);
}

/**
 * The local spawner's isolation, or a StartupError naming the fix when this hub must not start
 * (see planLocalIsolation): unisolated servers on a hub reachable from outside, or accounts
 * that could not reach the notebook environment or their homes.
 */
function checkLocalIsolation(config: HubConfig, log: Logger): LocalIsolationMode {
  const plan = planLocalIsolation(config, hostFacts());
  const problems = [...plan.problems];
  if (plan.mode === 'unix-users' && !problems.length) {
    const venv = path.resolve(config.notebookVenv);
    // The venv's python is a link to the interpreter it was made from (pyenv's lives under /root).
    const python = path.join(venv, 'bin', 'python');
    const jupyter = path.join(venv, 'bin', 'jupyter');
    // A venv without Jupyter gets the spawner's own "not installed" message at the first start.
    const forVenv = fs.existsSync(jupyter) ? [...blockedForOthers(jupyter, true), ...(fs.existsSync(python) ? blockedForOthers(fs.realpathSync(python), true) : [])] : [];
    if (forVenv.length) problems.push(`The notebook environment ${venv} (notebookVenv) can't be used by the servers' own accounts: ${forVenv.join(', ')} must be readable by others. Fix: rebuild it with npm run venv (it picks an interpreter every account can run, e.g. /usr/bin/python3), or chmod -R a+rX ${venv} and o+x on the folders above it.`);
    const dataDir = path.resolve(config.dataDir);
    const forData = blockedForOthers(path.dirname(dataDir));
    if (forData.length) problems.push(`The servers' accounts can't reach their homes in ${dataDir} (dataDir): ${forData.join(', ')} must allow others to pass (o+x). Fix: chmod o+x on them, or choose another OERHUB_DATA_DIR.`);
  }
  if (problems.length) throw new StartupError(problems.join('\n'));
  for (const warning of plan.warnings) log.warn({ localIsolation: plan.mode }, warning);
  if (plan.mode === 'unix-users') log.info({ localIsolation: plan.mode }, 'each notebook server runs as its own Unix account');
  return plan.mode;
}

function loadCookieSecret(config: HubConfig): string {
  if (config.cookieSecret) return config.cookieSecret;
  const file = path.join(config.dataDir, 'cookie-secret');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const secret = randomBytes(32).toString('base64url');
    fs.writeFileSync(file, secret + '\n', { mode: 0o600 });
    return secret;
  }
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? new StartupError(`Port ${port} on ${host} is already in use. Stop the other program or set OERHUB_PORT.`) : err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Build and start a hub: state store, spawner, proxy, web app, one HTTP server. */
export async function createHub(config: HubConfig, options: HubOptions = {}): Promise<Hub> {
  const log = options.log ?? createLogger(config.logLevel, undefined, { format: config.logFormat });
  const metrics = new HubMetrics();
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'error while closing');
      }
    }
    closers.length = 0;
  };
  try {
    // A data folder that can't exist at all is the first thing to say, before what isolation needs of it.
    createDataDir(config.dataDir);
    const isolation = config.spawner === 'local' && !options.spawner ? checkLocalIsolation(config, log) : 'none';
    prepareDataDir(config.dataDir, isolation);
    const cookieSecret = loadCookieSecret(config);

    let store: Store;
    try {
      store = countStoreErrors(createStore(config, log.child({ part: 'store' })), (operation) => metrics.storeError(operation));
    } catch (err) {
      throw new StartupError(describeStoreFailure(config, err));
    }
    closers.push(() => store.close());
    try {
      await store.ping();
    } catch (err) {
      throw new StartupError(describeStoreFailure(config, err));
    }

    const userRepo = new UserRepo(store);
    const serverRepo = new ServerRepo(store);
    const users = new UserService(userRepo, config.adminUsers, log.child({ part: 'users' }));
    // Research projects (issue 12): each persistent server starts with its user's project folders.
    const projectRepo = new ProjectRepo(store);
    const projectStorage = new ProjectStorage(path.resolve(config.projectsDir ?? path.join(config.dataDir, 'projects')), log.child({ part: 'projects' }));
    // Filled in below, once the project service exists (it needs the manager to stop servers).
    let projectsRef: ProjectService | undefined;
    // JupyterLab's build, served once by the hub for every server of it (the local spawner's from
    // the hub's own environment, the Docker spawner's copied out of each image).
    const labStatic = config.notebookApp === 'lab' && config.labStaticFromHub ? new LabStatic(log.child({ part: 'lab-static' })) : undefined;
    const venvBuild = config.spawner === 'local' ? labStatic?.add(LabStatic.folderIn(config.notebookVenv)) : undefined;
    const imageBuilds = labStatic && config.spawner === 'docker' ? new ImageLabBuilds(labStatic, path.join(config.dataDir, 'lab-static'), log.child({ part: 'lab-static' })) : undefined;
    // Assigned below: the hub's origin is known once it listens.
    let origins: UserOrigins | undefined;
    const labUrl = (build: string | undefined): string | undefined => (labStatic && build && origins ? labStatic.urlPrefix(origins.hubOrigin(), build) : undefined);
    const spawnerExtras = {
      local: { labStaticUrl: () => labUrl(venvBuild) },
      docker: { labStaticUrl: (imageId: string, exportTo: (dest: string) => Promise<boolean>) => labUrl(imageBuilds?.buildOf(imageId, exportTo)) },
    };
    const spawner = new ProjectAwareSpawner(options.spawner ?? createSpawner(config, log.child({ part: 'spawner' }), spawnerExtras), (user) => projectsRef?.mountsForStart(user) ?? Promise.resolve([]));
    closers.push(() => spawner.close());
    // Before the spawner closes: a copy of an image's JupyterLab build removes its container.
    if (imageBuilds) closers.push(() => imageBuilds.settled());

    // Shared by every hub process on the store: a server started through one is routed by all.
    const routes = new RouteTable({ store, records: serverRepo, log: log.child({ part: 'routes' }), resyncMs: config.routeResyncMs });
    closers.push(() => routes.close());
    await routes.start();
    // One hub process among those sharing the store runs the pool refill and the cullers.
    const leader = new LeaderLock({ store, log: log.child({ part: 'cluster' }), ttlMs: config.leaderLockTtlMs });
    const activity = new ActivityTracker();
    const sessionStore = new HubSessionStore(store, config.sessionMaxAgeS * 1000);
    const sessions = new SessionChecker(cookieSecret, sessionStore, config.sessionCacheMs, { staleWhileErrorMs: config.sessionStaleWhileErrorS * 1000 });
    const views = createViews(options.viewsDir ?? path.join(REPO_ROOT, 'views'));

    const pages: ProxyPages = {
      // An anonymous visitor's server is never restarted: it was destroyed, with its files.
      notRunning: (res, escapedName, url) =>
        isAnonymousEscapedName(escapedName)
          ? sendPage(views, res, 410, 'not-running.njk', { ended: true, user: null })
          : sendPage(views, res, 503, 'not-running.njk', { next: url, user: null }),
      error: (req, res, status, message) => {
        if (wantsJson(req)) {
          const body = JSON.stringify({ status, message });
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
        } else {
          sendPage(views, res, status, 'error.njk', { status, message, heading: headingFor(status), user: null });
        }
      },
    };
    // The listening port is known only after listen (port 0 in tests); origins are read per request.
    let listeningPort = config.port;
    origins = new UserOrigins(config, () => listeningPort);
    if (!origins.isolated) log.warn({ originMode: config.originMode }, 'user servers share the hub\'s origin (originMode=single): code in any notebook can act as its user on the hub. Set originMode=subdomain (see README, "Origins")');
    const handoff = new SignInHandoff(store);
    const disabledAccounts = new AccountRepo(store);
    const tokens = new TokenService({
      repo: new TokenRepo(store),
      users,
      isDisabled: async (name) => (await disabledAccounts.disabled(name)) !== null,
      services: config.apiServices,
      log: log.child({ part: 'api' }),
      cacheMs: config.apiTokenCacheMs,
      maxAgeS: config.apiTokenMaxAgeS,
      onRevoked: async (ids) => {
        for (const id of ids) {
          proxy.closeToken(id);
          await store.publish(TOKEN_REVOKED_CHANNEL, id).catch((err: Error) => log.warn({ err: err.message }, 'could not tell other hub processes about a revoked token'));
        }
      },
    });
    const proxy = new HubProxy({
      routes,
      sessions,
      activity,
      pages,
      log: log.child({ part: 'proxy' }),
      origins,
      handoff,
      cookieSecret,
      cookies: config,
      maxSockets: config.proxyMaxSockets,
      // Built below, from the pool; the proxy asks it only once the hub serves requests.
      contentPages: { handle: (req, res, r) => tryWorkspace.handle(req, res, r), handlePreview: (req, res) => tryWorkspace.handlePreview(req, res) },
      tokenAccess: new TokenAccess({ verifier: tokens, routes, log: log.child({ part: 'proxy' }), error: (req, res, status, message) => pages.error(req, res, status, message) }),
    });
    closers.push(() => proxy.close());
    const unsubscribeTokens = await store.subscribe(TOKEN_REVOKED_CHANNEL, (id) => {
      tokens.forget(id);
      proxy.closeToken(id);
    });
    closers.push(() => unsubscribeTokens());

    const manager = new ServerManager({
      config,
      servers: serverRepo,
      store,
      spawner,
      routes,
      activity,
      hubUrl: () => `${origins.hubOrigin()}/hub/`,
      log: log.child({ part: 'servers' }),
      onStartFinished: (outcome) => metrics.spawnFinished(outcome),
      // Research projects offer their own profiles (a licensed image) to their members only.
      profileGate: (user) => projectsRef?.profilesOf(user) ?? Promise.resolve(new Map()),
    });
    closers.push(() => manager.close(config.stopServersOnExit));

    // "Try it": the samples executed once and rendered (shown before JupyterLab is up), and BokehJS for them.
    const samplesDir = path.resolve(config.trySamplesDir ?? path.join(REPO_ROOT, 'course-notebooks', 'samples'));
    const bokehJs = findBokehJs(path.resolve(config.notebookVenv));
    const samples = new SampleGallery({
      samplesDir,
      venv: path.resolve(config.notebookVenv),
      cacheDir: path.resolve(config.trySamplesCacheDir ?? path.join(config.dataDir, 'samples-cache')),
      vendorBase: () => `${origins.hubOrigin()}${VENDOR_BASE_PATH}`,
      bokehVersion: bokehJs.version,
      log: log.child({ part: 'samples' }),
    });
    closers.push(() => samples.close());
    const pool = new WarmPool({
      config,
      users,
      manager,
      routes,
      repo: new PoolRepo(store),
      samplesDir,
      log: log.child({ part: 'pool' }),
      isLeader: () => leader.isLeader(),
      askLeaderToFill: () => void store.publish(POOL_FILL_CHANNEL, '').catch((err: Error) => log.warn({ err: err.message }, 'could not ask the leader to refill the pool')),
    });
    closers.push(() => pool.close());
    const unsubscribeFill = await store.subscribe(POOL_FILL_CHANNEL, () => {
      if (leader.isLeader()) pool.fill();
    });
    closers.push(() => unsubscribeFill());
    const culler = new EphemeralCuller({
      config,
      log: log.child({ part: 'culler' }),
      sessions: () => pool.sessions(),
      readyNames: () => pool.readyNames(),
      serverStatus: (name) => pool.serverStatus(name),
      isSeeding: (name) => pool.isSeeding(name),
      release: async (name, reason) => {
        await pool.release(name, reason);
        metrics.culled('ephemeral', reason);
      },
      lastActivity: () => serverRepo.lastActivity(),
      touch: (escapedName) => activity.touch(escapedName),
      route: (escapedName) => routes.get(escapedName),
      hasBusyKernel: options.hasBusyKernel ?? hasBusyKernel,
    });
    closers.push(() => culler.close());
    const persistentCuller = new PersistentCuller({
      config,
      log: log.child({ part: 'culler' }),
      servers: () => manager.list(),
      lastActivity: () => serverRepo.lastActivity(),
      route: (escapedName) => routes.get(escapedName),
      hasBusyKernel: options.hasBusyKernel ?? hasBusyKernel,
      touch: (escapedName) => activity.touch(escapedName),
      stop: async (server, reason) => {
        const user = await users.getByEscaped(server.escapedName);
        if (!user) throw new Error(`no account for server ${server.escapedName}`);
        log.child({ part: 'culler' }).info({ user: user.name, reason }, 'stopping an idle server; its files are kept');
        await manager.stop(user);
        metrics.culled('persistent', reason);
      },
    });
    closers.push(() => persistentCuller.close());
    // When the engine is back after an outage (a dockerd restart), check every server at once.
    const stopWatchingSpawner = spawner.onRecovered?.(() => {
      void manager.recheck().catch((err: Error) => log.warn({ err: err.message }, 'could not re-check the servers'));
    });
    if (stopWatchingSpawner) closers.push(stopWatchingSpawner);
    const tryIt: TryIt = {
      pool,
      deadlines: async (session) => culler.deadlines(session, (await serverRepo.lastActivity()).get(session.escapedName)),
      route: (escapedName) => routes.get(escapedName),
      rendersSamples: () => samples.get('index') !== undefined,
    };

    const signedOut = async (sid: string, userName: string): Promise<void> => {
      sessions.revoke(sid);
      proxy.closeSession(sid);
      await store.publish(REVOKE_CHANNEL, sid).catch((err: Error) => log.warn({ err: err.message }, 'could not tell other hub processes about a sign-out'));
      // A visitor's throwaway server goes with their sign-out, files and all.
      if (isAnonymousName(userName)) await pool.release(userName, 'logout');
    };
    // The "Try it" workspace on the visitor's own origin; its End session is a sign-out.
    const tryWorkspace = new TryWorkspace({
      config,
      tryIt,
      manager,
      users,
      views,
      origins,
      error: pages.error,
      log: log.child({ part: 'try' }),
      cookieSecret,
      endSession: async (sid, userName) => {
        await new Promise<void>((resolve, reject) => sessionStore.destroy(sid, (err) => (err ? reject(err) : resolve())));
        await signedOut(sid, userName);
      },
      samples,
      bokeh: bokehJs,
    });

    // Sign-out anywhere closes that session's WebSockets here, and forgets it in our cache.
    const unsubscribe = await store.subscribe(REVOKE_CHANNEL, (sid) => {
      sessions.revoke(sid);
      proxy.closeSession(sid);
    });
    closers.push(() => unsubscribe());

    const csrf = csrfSync({
      getTokenFromRequest: (req: Request) => {
        const body = req.body as Record<string, unknown> | undefined;
        const fromBody = typeof body?._csrf === 'string' ? body._csrf : undefined;
        const header = req.headers['x-csrf-token'];
        return fromBody ?? (typeof header === 'string' ? header : undefined);
      },
    });
    const identities = new IdentityService(store, users, log.child({ part: 'identities' }));
    const audit = new AuditLog({ store, maxEntries: config.auditMaxEntries, log: log.child({ part: 'audit' }) });
    const admin = new AdminService({
      config,
      users,
      identities,
      manager,
      tryIt,
      accounts: disabledAccounts,
      audit,
      tokensOf: {
        recheck: (name) => tokens.recheckAll({ kind: 'user', name }),
        revoke: (name) => tokens.revokeAll({ kind: 'user', name }),
      },
      endSessionsOf: (name) => sessionStore.destroyAllOf(name),
      sessionEnded: (sid, name) => signedOut(sid, name),
      ...(spawner.removeHome ? { removeHome: (escapedName: string) => spawner.removeHome!(escapedName) } : {}),
      // Built below (the project service needs the manager); a delete happens only once the hub serves.
      leaveProjects: (user) => projectsRef?.forgetUser(user) ?? Promise.resolve([]),
      lastActivity: () => serverRepo.lastActivity(),
      // A deleted account's share links die with it (shares is made below; called only later).
      onDeleted: (name): Promise<void> => shares.forgetUser(name),
      log: log.child({ part: 'admin' }),
    });
    const deps: WebDeps = {
      config,
      log,
      store,
      views,
      users,
      manager,
      throttle: new LoginThrottle(store, { perUser: config.loginRateLimit, perAddress: config.loginAddressFailureLimit }, cookieSecret),
      cookieSecret,
      csrfToken: (req) => csrf.generateToken(req),
      storeHealthy: () => store.ping().then(() => true, () => false),
      onSignedOut: (sid, user) => signedOut(sid, user.name),
      tryIt,
      origins,
      handoff,
      tokens,
      admin,
      audit,
      courses: {
        service: new CourseService({
          config,
          repo: new CourseRepo(store),
          files: new CourseFiles(path.join(config.dataDir, 'courses')),
          log: log.child({ part: 'courses' }),
          profileNames: config.spawner === 'docker' ? config.dockerProfiles.map((p) => p.name) : [LOCAL_PROFILE],
          datasetNames: (config.spawner === 'docker' ? config.dockerDatasets : config.localDatasets).map((d) => d.name),
        }),
        routeOf: (escapedName) => routes.get(escapedName),
        lastActivity: () => serverRepo.lastActivity(),
      },
    };
    // Read-only sharing (issue 11): snapshots in dataDir/shares, pages on an origin of their own.
    const shareOrigin = new ShareOrigin(config, () => listeningPort);
    const shares = new ShareService({
      repo: new ShareRepo(store),
      courses: deps.courses.service,
      users,
      isDisabled: (name): Promise<boolean> => admin.isDisabled(name),
      routeOf: (escapedName) => routes.get(escapedName),
      origin: shareOrigin,
      dir: path.join(config.dataDir, 'shares'),
      secret: cookieSecret,
      maxBytes: config.shareMaxMb * 1024 * 1024,
      readTimeoutMs: config.courseSyncTimeoutS * 1000,
      viewUrlTtlMs: config.shareViewUrlTtlS * 1000,
      maxPerUser: config.shareMaxPerUser,
      page: sharePage(views, path.join(options.viewsDir ?? path.join(REPO_ROOT, 'views'), 'static', 'notebook-view.css')),
      audit,
      log: log.child({ part: 'sharing' }),
    });
    const shareContent = new ShareContent({ service: shares, log: log.child({ part: 'sharing' }), hubOrigin: () => origins.hubOrigin() });
    const mailer = new SmtpMailer(config, log.child({ part: 'mail' }));
    closers.push(() => mailer.close());
    const projects = new ProjectService({
      config,
      repo: projectRepo,
      storage: projectStorage,
      mailer,
      log: log.child({ part: 'projects' }),
      hubOrigin: () => origins.hubOrigin(),
      accountOf: (user) => (isolation === 'unix-users' ? accountNameOf(user.escapedName) : null),
      stopServer: async (name, reason) => {
        const user = await users.get(name);
        if (!user) return;
        const { state } = await manager.state(user);
        if (state === 'stopped') return;
        log.child({ part: 'projects' }).info({ user: name, reason }, 'stopping a server whose project folders changed');
        await manager.stop(user);
      },
      // A member added while their server runs: the local spawner adds the folder at once; Docker can't add a bind.
      giveRunningServer: async (user, mounts) => {
        if ((await manager.state(user)).state !== 'running') return 'not-running';
        if (!spawner.addProjects) return 'restart';
        return (await spawner.addProjects(user.escapedName, mounts)) ? 'added' : 'restart';
      },
      serverRunning: async (user) => (await manager.state(user)).state === 'running',
    });
    projectsRef = projects;
    await projects.mountAll();
    const accounts = new AccountService({
      store,
      users,
      policy: new PasswordPolicy(),
      log: log.child({ part: 'account' }),
      endSession: async (sid, user) => {
        await new Promise<void>((resolve, reject) => sessionStore.destroy(sid, (err) => (err ? reject(err as Error) : resolve())));
        await signedOut(sid, user.name);
      },
      sessionsOf: (name) => sessionStore.sessionsOf(name),
    });
    const totp = new TotpService(store, 'oerhub', cookieSecret, log.child({ part: 'account' }));
    deps.needsSecondFactor = (user) => (user.source === 'local' ? totp.isEnabled(user.name) : Promise.resolve(false));
    const authenticators = createAuthenticators({ config, log, store, users, identities, views });
    const readiness = { storeReachable: () => withinMs(deps.storeHealthy(), READY_CHECK_MS, false), managerReady: () => manager.ready, draining: () => drain.isDraining };
    const app = createWebApp({ deps, authenticators, identities, sessionStore, csrf, staticDir: path.join(options.viewsDir ?? path.join(REPO_ROOT, 'views'), 'static'),
      vendorExtra: bokehJs.assets,
      // /hub/metrics: a token with read:metrics (a Prometheus scraper's service token), or a session with it (admins).
      ops: { metrics, readiness, metricsGuard: scopeGuard(tokens, 'read:metrics') },
      routers: [projectRoutes({ web: deps, projects, accounts }), accountRoutes(deps, accounts, projects, totp), shareRoutes(deps, shares)],
    });

    metrics.attach({
      serverPhases: async () => (await manager.list()).map((s) => s.phase),
      poolLevels: async () => {
        const { ready, inUse, starting } = await pool.status();
        return { ready, claimed: inUse, starting };
      },
      openWebSockets: () => proxy.openWebSockets(),
    });

    // The sample maps' scripts and styles, on user origins too (their output frames load them from there).
    const contentAssets = vendorAssetsApp((req, res) => pages.error(req, res, 404, 'There is no such page at this address.'), bokehJs.assets);
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      forgetForwarded(req);
      if (!drain.admit(res)) {
        RequestDrain.refusalHeaders(res);
        // Health checks are still answered while draining: live 200 (nothing should kill a
        // process that is finishing its work), ready 503 "draining".
        if (!isHealthCheck(req.url)) {
          pages.error(req, res, 503, 'The hub is restarting. Please retry in a few seconds.');
          return;
        }
      }
      // The share origin is nobody's server: its own handler, before the proxy.
      if (shareOrigin.matches(req)) return shareContent.handle(req, res);
      // The hot path: user-content hosts and /user/ go straight to the proxy, never through
      // express. Until reconcile() has routed the servers that kept running, they get "the hub
      // is starting" instead of a "not running" page whose Start button would replace a running server.
      const host = origins.classify(req);
      if (host.kind === 'content' && isVendorAssetRequest(req)) contentAssets(req, res);
      else if (host.kind === 'hub' && labStatic && LabStatic.matches(req)) labStatic.handle(req, res);
      else if (host.kind !== 'hub' || req.url?.startsWith('/user/')) {
        metrics.observeProxyRequest(res);
        if (manager.ready) proxy.handleRequest(req, res, host);
        else hubStartingPage(views, res);
      } else {
        // A hub request whose body still trickles in after the limit loses its socket.
        const timer = setTimeout(() => {
          if (!req.complete) req.socket.destroy();
        }, HUB_REQUEST_TIMEOUT_MS).unref();
        res.once('close', () => clearTimeout(timer));
        app(req, res);
      }
    };
    const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      forgetForwarded(req);
      if (shareOrigin.matches(req)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else if (drain.isDraining) RequestDrain.refuseUpgrade(socket);
      else if (manager.ready) proxy.handleUpgrade(req, socket, head);
      else socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    };
    // X-Forwarded-* on the TCP port is anyone's say-so (a kernel reaches 127.0.0.1 too): dropped.
    const forgetForwarded = (req: http.IncomingMessage): void => {
      const dropped = dropForwardedHeaders(req);
      if (dropped.length) log.warn({ part: 'front-door', peer: req.socket.remoteAddress, headers: dropped }, 'ignored forwarded headers that did not come through the front door');
    };
    const onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
      log.warn({ code: err.code }, 'bad client request');
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    };
    const server = http.createServer(SERVER_TIMEOUTS, onRequest);
    let door: FrontDoorListener | undefined;
    const drain = new RequestDrain(() => (door ? [server, door.server] : [server]));
    server.on('upgrade', onUpgrade);
    server.on('clientError', onClientError);
    await listen(server, config.port, config.bindHost);
    listeningPort = (server.address() as AddressInfo).port;
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          // Upgraded sockets are not the server's connections any more: close them first.
          proxy.close();
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    // The front door: nginx's Unix socket, the only place identity and forwarded headers count.
    if (config.frontDoorSocket) {
      const frontDoor = new FrontDoorListener({ socketPath: config.frontDoorSocket, group: config.frontDoorSocketGroup, log, onRequest, onUpgrade, onClientError, serverOptions: SERVER_TIMEOUTS });
      door = frontDoor;
      try {
        await frontDoor.listen();
      } catch (err) {
        throw new StartupError(err instanceof HubError ? err.message : String(err));
      }
      closers.push(() => frontDoor.close());
    }

    const generatedAdminPassword = await users.bootstrapAdmin(config.adminPassword);
    const reconciled = await manager.reconcile();
    if (reconciled.orphans.length) log.warn({ orphans: reconciled.orphans }, 'stopped servers the hub did not know');
    // After the manager knows which servers still run, and only on the leader: keep the pool's
    // live entries and refill; cull. Another process takes these over if the leader goes away.
    await leader.start();
    const duties = new LeaderDuties(
      leader,
      [
        { name: 'pool', start: () => pool.start(), stop: () => undefined },
        { name: 'ephemeral-culler', start: () => culler.start(), stop: () => culler.close() },
        { name: 'persistent-culler', start: () => persistentCuller.start(), stop: () => persistentCuller.close() },
      ],
      log.child({ part: 'cluster' }),
    );
    closers.push(async () => {
      await duties.close();
      await leader.close();
    });
    await duties.settled();
    // In the background, at low priority: visitors get JupyterLab until the samples are rendered.
    if (pool.enabled) void samples.prepare();

    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    log.info({ url, store: store.kind, spawner: spawner.kind, leader: leader.isLeader() }, 'hub started');
    const close = async ({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> => {
      if (graceMs > 0 && !drain.isDraining) {
        const { unfinished } = await drain.drain(graceMs, manager.startsSettled());
        if (unfinished) log.warn({ unfinished, graceMs }, 'requests still running at the end of the shutdown grace period are cut off');
        else log.info('requests in flight and server starts finished');
      }
      await closeAll();
    };
    return { url, config, log, users, manager, proxy, routes, pool, culler, persistentCuller, leader, metrics, audit, admin, samples, generatedAdminPassword, close };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export { StoreUnavailable };
