import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { HubError } from '../errors.js';

/**
 * The front door: the one listener whose identity and X-Forwarded-* headers the hub believes.
 * It is a Unix socket that nginx proxies to, 0660 and owned by nginx's group, so a kernel
 * (which runs on this machine and can reach 127.0.0.1:PORT) can't connect to it. A TCP peer of
 * 127.0.0.1 proves nothing here. Requests on the TCP listener lose every forwarded header at
 * the door, before express or the proxy see them; the sign-in header is refused (and logged)
 * by trusted-header.ts, which asks cameThroughFrontDoor.
 */

/** Marks a socket accepted on the front door. A symbol, so no header or client can set it. */
const FRONT_DOOR = Symbol('oerhub.frontDoor');
type MarkedSocket = Socket & { [FRONT_DOOR]?: true };

/** Headers that describe the client or the original URL: believed only through the front door. */
export const FORWARDED_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip'] as const;

/** Whether this request (or upgrade) arrived on the front door socket. */
export function cameThroughFrontDoor(req: http.IncomingMessage): boolean {
  return (req.socket as MarkedSocket)[FRONT_DOOR] === true;
}

/**
 * Drop X-Forwarded-* and friends from a request that did not come through the front door, so
 * nothing downstream (express's req.ip and req.protocol, the proxy, the logs, the login
 * throttle) can be told a made-up client address or scheme. Returns the names dropped.
 */
export function dropForwardedHeaders(req: http.IncomingMessage): string[] {
  if (cameThroughFrontDoor(req)) return [];
  const dropped: string[] = [];
  for (const name of FORWARDED_HEADERS) {
    if (req.headers[name] !== undefined) {
      delete req.headers[name];
      dropped.push(name);
    }
  }
  return dropped;
}

/**
 * Express's `trust proxy`: believe exactly one hop, the peer of the socket. On the TCP listener
 * dropForwardedHeaders has already removed what could be believed, so req.ip is the TCP peer;
 * on the front door it is the address nginx put in X-Forwarded-For.
 */
export function trustOneHop(_addr: string | undefined, hop: number): boolean {
  return hop === 0;
}

/** The group id for a name or number, from /etc/group (Node has no getgrnam). */
export function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = fs.readFileSync('/etc/group', 'utf8');
  } catch (err) {
    throw new HubError('CONFIG', 500, `frontDoorSocketGroup ${group}: /etc/group cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new HubError('CONFIG', 500, `frontDoorSocketGroup ${group}: no such group on this machine (set it to nginx's group, e.g. www-data)`);
}

export interface FrontDoorOptions {
  /** Absolute path of the socket (config.frontDoorSocket). */
  socketPath: string;
  /** Group name or id that may connect (config.frontDoorSocketGroup); default the hub's group. */
  group?: string;
  log: Logger;
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;
  onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  onClientError(err: NodeJS.ErrnoException, socket: Duplex): void;
  /** The HTTP server's timeouts, the same as the TCP listener's (a slow-header client is cut off here too). */
  serverOptions: http.ServerOptions;
}

/**
 * The front door listener. It owns its HTTP server and socket file: listen() creates the socket
 * in a private (0700) folder, sets 0660 and the group there, and only then renames it into
 * place, so there is no moment when the socket is reachable with looser permissions. close()
 * stops it and removes the socket file. Safe to call close() twice.
 */
export class FrontDoorListener {
  readonly server: http.Server;
  private listening = false;
  /** Inode of our socket file, so close() never removes a newer hub's socket. */
  private inode: number | undefined;

  constructor(private readonly opts: FrontDoorOptions) {
    this.server = http.createServer(opts.serverOptions, opts.onRequest);
    this.server.on('connection', (socket: MarkedSocket) => {
      socket[FRONT_DOOR] = true;
    });
    this.server.on('upgrade', opts.onUpgrade);
    this.server.on('clientError', opts.onClientError);
  }

  /** Listen on the socket path. Throws HubError('CONFIG') naming the key when it can't. */
  async listen(): Promise<void> {
    const { socketPath, group, log } = this.opts;
    const dir = path.dirname(socketPath);
    const gid = group === undefined ? undefined : groupId(group);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new HubError('CONFIG', 500, `frontDoorSocket ${socketPath}: its folder cannot be created (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const existing = fs.lstatSync(socketPath, { throwIfNoEntry: false });
    if (existing && !existing.isSocket()) throw new HubError('CONFIG', 500, `frontDoorSocket ${socketPath}: a file that is not a socket is in the way`);
    const staging = fs.mkdtempSync(path.join(dir, '.oerhub-door-'));
    fs.chmodSync(staging, 0o700);
    const temp = path.join(staging, `${randomBytes(6).toString('hex')}.sock`);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(temp, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
      this.listening = true;
      fs.chmodSync(temp, 0o660);
      if (gid !== undefined) fs.chownSync(temp, process.getuid?.() ?? -1, gid);
      // Atomic: replaces a stale socket left by a crash in one step.
      fs.renameSync(temp, socketPath);
      this.inode = fs.lstatSync(socketPath).ino;
    } catch (err) {
      await this.close();
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new HubError('CONFIG', 500, `frontDoorSocket ${socketPath}: cannot listen there (${code})${code === 'EPERM' ? '; the hub may only give the socket to a group it belongs to (frontDoorSocketGroup)' : ''}`);
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
    log.info({ socket: socketPath, mode: '0660', gid: gid ?? process.getgid?.() }, 'front door listening (identity and X-Forwarded-* headers are believed only here)');
  }

  /** Stop accepting, close open connections, remove the socket file. */
  close(): Promise<void> {
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise((resolve) => {
      this.server.close(() => {
        // Another hub may have taken the path since (a restart); remove only our own socket.
        const now = fs.lstatSync(this.opts.socketPath, { throwIfNoEntry: false });
        if (this.inode !== undefined && now?.ino === this.inode) fs.rmSync(this.opts.socketPath, { force: true });
        resolve();
      });
      this.server.closeAllConnections();
    });
  }
}
