import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export interface TestRedis {
  /** redis://:PASSWORD@127.0.0.1:PORT: the password travels in the URL, so `new Redis(url)` and redisUrl just work. */
  url: string;
  port: number;
  /** The server's requirepass: it refuses every command without it, as the hub requires of a real Redis. */
  password: string;
  /** The same server without the password, for checks that it is refused. */
  urlWithoutPassword: string;
  /** Kill the server (an outage). Safe to call twice. */
  stop(): Promise<void>;
  /** Start it again on the same port: empty, or with its data when started durable. */
  restart(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * A private redis-server on a free 127.0.0.1 port with a random password, owned by this test
 * process (not daemonized, so it can't outlive a stop() and two test runs never share one).
 * Throws if redis-server is missing: CI must install it, and a skipped suite would hide that.
 */
export async function startRedis(options: { durable?: boolean } = {}): Promise<TestRedis> {
  // durable: append-only file synced on every write, so a restart keeps the data (as a production Redis would).
  const dir = options.durable ? fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-redis-')) : undefined;
  // Hex: safe in a URL's user-info part without escaping.
  const password = randomBytes(16).toString('hex');
  // Another process may grab the free port between probing and binding; try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let child: ChildProcess | undefined;
    try {
      child = await launch(port, password, dir);
    } catch (err) {
      if (err instanceof PortTaken && attempt < 5) continue;
      throw err;
    }
    return handle(port, password, child, dir);
  }
}

function handle(port: number, password: string, first: ChildProcess, dir: string | undefined): TestRedis {
  let child: ChildProcess | undefined = first;
  // Mocha exits with `exit: true`; a forgotten stop() must not leave a redis-server running.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  return {
    url: `redis://:${password}@127.0.0.1:${port}`,
    port,
    password,
    urlWithoutPassword: `redis://127.0.0.1:${port}`,
    async stop() {
      const running = child;
      child = undefined;
      if (running) await kill(running);
    },
    async restart() {
      const running = child;
      child = undefined;
      if (running) await kill(running);
      child = await launch(port, password, dir);
    },
  };
}

class PortTaken extends Error {}

async function launch(port: number, password: string, durableDir?: string): Promise<ChildProcess> {
  const persistence = durableDir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', durableDir] : ['--appendonly', 'no', '--dir', os.tmpdir()];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', ...persistence];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve(
        err.code === 'ENOENT'
          ? new Error('redis-server is not installed (Debian: apt-get install -y redis-server); the Redis tests need it')
          : err,
      );
    });
    child.once('exit', (code, signal) => {
      const why = `redis-server exited (${signal ?? `code ${code}`}) before answering PING:\n${output}`;
      resolve(/Address already in use/i.test(output) ? new PortTaken(why) : new Error(why));
    });
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const failed = await Promise.race([exited, answersPing(port, password).then(() => undefined, () => null)]);
    if (failed instanceof Error) throw failed;
    if (failed === undefined) return child;
    if (Date.now() > deadline) {
      await kill(child);
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves when something on the port accepts the password and answers a Redis PING with PONG. */
function answersPing(port: number, password: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy(new Error('PING timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`AUTH ${password}\r\nPING\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      // Two replies: AUTH's and PING's (or an error that ends the first).
      if (!reply.startsWith('-') && reply.split('\r\n').length < 3) return;
      socket.destroy();
      if (reply.startsWith('+OK\r\n+PONG')) resolve();
      else reject(new Error(`unexpected PING reply ${JSON.stringify(reply)}`));
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

