import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Request } from 'express';
import { csrfSync } from 'csrf-sync';
import type { HubConfig } from './config/index.js';
import { createLogger, type Logger } from './log.js';
import { createStore, type Store } from './store/index.js';
import { ServerRepo, UserRepo } from './store/repos.js';
import { createSpawner, type Spawner } from './spawner/index.js';
import { HubSessionStore } from './auth/session-store.js';
import { UserService } from './auth/users.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { ActivityTracker, HubProxy, RouteTable, SessionChecker, type ProxyPages } from './proxy/index.js';
import { ServerManager } from './servers/server-manager.js';
import { createViews, headingFor, sendPage, wantsJson } from './web/render.js';
import { createWebApp } from './web/app.js';
import type { WebDeps } from './web/context.js';
import { HubError, StoreUnavailable } from './errors.js';
import { PoolRepo, WarmPool, hasBusyKernel, type TryIt } from './pool/index.js';
import { EphemeralCuller } from './culler/index.js';
import { isAnonymousEscapedName, isAnonymousName } from './names.js';

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
  /** Generated admin password, present only on the start that created the admin. */
  readonly generatedAdminPassword?: string;
  /** Close everything in reverse order of creation. Servers keep running unless config.stopServersOnExit. */
  close(): Promise<void>;
}

export interface HubOptions {
  log?: Logger;
  /** Where views/ lives (defaults to the repository's). */
  viewsDir?: string;
  /** Replace the spawner (tests with fake spawners). */
  spawner?: Spawner;
}

const REPO_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const REVOKE_CHANNEL = 'session-revoked';
// A client must send its request headers within this time, or the socket is closed (408): a
// slow-header (slowloris) client can't hold sockets. Node derives it from requestTimeout, so
// with requestTimeout 0 it was off.
const HEADERS_TIMEOUT_MS = 20_000;
// How often Node checks for that deadline (its default, 30 s, would more than double it).
const CONNECTIONS_CHECK_MS = 2_000;
// Hub pages and the API must have received their whole request body by then. Proxied /user/
// requests get no such limit (a notebook upload may take long on a slow line).
const HUB_REQUEST_TIMEOUT_MS = 60_000;

/** A hub startup failure with a message that says what to do. */
export class StartupError extends Error {
  override name = 'StartupError';
}

function prepareDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    throw new StartupError(`The data folder ${dir} (dataDir) cannot be created or written: ${(err as NodeJS.ErrnoException).code ?? String(err)}. Choose another with OERHUB_DATA_DIR.`);
  }
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
  const log = options.log ?? createLogger(config.logLevel);
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
    prepareDataDir(config.dataDir);
    const cookieSecret = loadCookieSecret(config);

    const store: Store = createStore(config, log.child({ part: 'store' }));
    closers.push(() => store.close());
    try {
      await store.ping();
    } catch (err) {
      throw new StartupError(
        `The state store can't be reached (store=${config.store}${config.store === 'redis' ? `, redisUrl=${config.redisUrl}` : ''}): ${err instanceof HubError ? err.detail ?? err.message : String(err)}. Start Redis, or set OERHUB_STORE=memory for a trial.`,
      );
    }

    const userRepo = new UserRepo(store);
    const serverRepo = new ServerRepo(store);
    const users = new UserService(userRepo, config.adminUsers, log.child({ part: 'users' }));
    const spawner = options.spawner ?? createSpawner(config, log.child({ part: 'spawner' }));
    closers.push(() => spawner.close());

    const routes = new RouteTable();
    const activity = new ActivityTracker();
    const sessionStore = new HubSessionStore(store, config.sessionMaxAgeS * 1000);
    const sessions = new SessionChecker(cookieSecret, sessionStore, config.sessionCacheMs);
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
    const proxy = new HubProxy({
      routes,
      sessions,
      activity,
      pages,
      log: log.child({ part: 'proxy' }),
      allowedOrigins: config.publicUrl ? [new URL(config.publicUrl).origin] : [],
      trustedProxies: config.trustedProxies,
      maxSockets: config.proxyMaxSockets,
    });
    closers.push(() => proxy.close());

    const manager = new ServerManager({ config, servers: serverRepo, spawner, routes, activity, log: log.child({ part: 'servers' }) });
    closers.push(() => manager.close(config.stopServersOnExit));

    const pool = new WarmPool({
      config,
      users,
      manager,
      routes,
      repo: new PoolRepo(store),
      samplesDir: path.resolve(config.trySamplesDir ?? path.join(REPO_ROOT, 'course-notebooks', 'samples')),
      log: log.child({ part: 'pool' }),
    });
    closers.push(() => pool.close());
    const culler = new EphemeralCuller({
      config,
      log: log.child({ part: 'culler' }),
      sessions: () => pool.sessions(),
      readyNames: () => pool.readyNames(),
      serverStatus: (name) => pool.serverStatus(name),
      isSeeding: (name) => pool.isSeeding(name),
      release: (name, reason) => pool.release(name, reason),
      lastActivity: () => serverRepo.lastActivity(),
      touch: (escapedName) => activity.touch(escapedName),
      route: (escapedName) => routes.get(escapedName),
      hasBusyKernel,
    });
    closers.push(() => culler.close());
    const tryIt: TryIt = {
      pool,
      deadlines: async (session) => culler.deadlines(session, (await serverRepo.lastActivity()).get(session.escapedName)),
      route: (escapedName) => routes.get(escapedName),
    };

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
      onSignedOut: async (sid, user) => {
        sessions.revoke(sid);
        proxy.closeSession(sid);
        await store.publish(REVOKE_CHANNEL, sid).catch((err: Error) => log.warn({ err: err.message }, 'could not tell other hub processes about a sign-out'));
        // A visitor's throwaway server goes with their sign-out, files and all.
        if (isAnonymousName(user.name)) await pool.release(user.name, 'logout');
      },
      tryIt,
    };
    const app = createWebApp({ deps, sessionStore, csrf, staticDir: path.join(options.viewsDir ?? path.join(REPO_ROOT, 'views'), 'static') });

    const server = http.createServer({ requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_MS }, (req, res) => {
      // The hot path: /user/ goes straight to the proxy, never through express.
      if (req.url?.startsWith('/user/')) return proxy.handleRequest(req, res);
      // A hub request whose body still trickles in after the limit loses its socket.
      const timer = setTimeout(() => {
        if (!req.complete) req.socket.destroy();
      }, HUB_REQUEST_TIMEOUT_MS).unref();
      res.once('close', () => clearTimeout(timer));
      app(req, res);
    });
    server.on('upgrade', (req, socket, head) => proxy.handleUpgrade(req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      log.warn({ code: err.code }, 'bad client request');
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    });
    await listen(server, config.port, config.bindHost);
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          // Upgraded sockets are not the server's connections any more: close them first.
          proxy.close();
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );

    const generatedAdminPassword = await users.bootstrapAdmin(config.adminPassword);
    const reconciled = await manager.reconcile();
    if (reconciled.orphans.length) log.warn({ orphans: reconciled.orphans }, 'stopped servers the hub did not know');
    // After the manager knows which servers still run: keep the pool's live entries, refill.
    await pool.start();
    culler.start();

    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    log.info({ url, store: store.kind, spawner: spawner.kind }, 'hub started');
    return { url, config, log, users, manager, proxy, routes, pool, culler, generatedAdminPassword, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export { StoreUnavailable };
