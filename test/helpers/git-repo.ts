import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A real git repository for nbgitpuller tests: a bare repository  that an
 * instructor pushes to from a working copy, named `course` without `.git` because nbgitpuller
 * names the student's folder after the URL's last segment, optionally served over HTTP by `git http-backend` on
 * 127.0.0.1 (no outside network).
 */
export class TestGitRepo {
  private server: http.Server | undefined;
  private owner: number | undefined;

  private constructor(
    /** Folder holding `course` (the bare repository) and `work` (the instructor's copy). */
    readonly root: string,
  ) {}

  /** Absolute path of the bare repository. */
  get bare(): string {
    return path.join(this.root, 'course');
  }

  private get work(): string {
    return path.join(this.root, 'work');
  }

  /** A new repository on branch `main` with these files in its first commit. */
  static async create(files: Record<string, string>): Promise<TestGitRepo> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-git-'));
    const repo = new TestGitRepo(root);
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', repo.bare]);
    await run('git', ['init', '--quiet', '--initial-branch=main', repo.work]);
    await repo.commit(files, 'first version');
    return repo;
  }

  /** Write these files in the instructor's copy, commit and push them. */
  async commit(files: Record<string, string>, message: string): Promise<void> {
    // git refuses repositories of another owner: take it back for the commit, then hand it over again.
    const owner = this.owner;
    if (owner !== undefined) this.chownTo(process.getuid?.() ?? 0);
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(this.work, rel)), { recursive: true });
      fs.writeFileSync(path.join(this.work, rel), content);
    }
    const git = (...args: string[]): Promise<unknown> =>
      run('git', ['-C', this.work, '-c', 'user.name=Instructor', '-c', 'user.email=instructor@test.invalid', ...args]);
    await git('add', '--all');
    await git('commit', '--quiet', '-m', message);
    await git('push', '--quiet', this.bare, 'main');
    if (owner !== undefined) this.chownTo(owner);
  }

  /** Give the repository to a uid (a container's notebook user reads it through a bind mount). */
  chownTo(uid: number): void {
    this.owner = uid;
    fs.chmodSync(this.root, 0o755);
    for (const entry of walk(this.root)) fs.lchownSync(entry, uid, uid);
  }

  /**
   * Serve the bare repository at http://127.0.0.1:PORT/course over git's smart HTTP protocol,
   * through the real `git http-backend` (CGI), read only. (The "dumb" protocol can't do the
   * shallow clones nbgitpuller makes.)
   */
  async serve(): Promise<string> {
    if (this.server) return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/course`;
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (!url.pathname.startsWith('/course/') || url.searchParams.get('service') === 'git-receive-pack' || url.pathname.endsWith('/git-receive-pack')) {
        res.writeHead(404).end();
        return;
      }
      const cgi = spawn('git', ['http-backend'], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          GIT_PROJECT_ROOT: this.root,
          GIT_HTTP_EXPORT_ALL: '1',
          PATH_INFO: url.pathname,
          QUERY_STRING: url.search.slice(1),
          REQUEST_METHOD: req.method ?? 'GET',
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
          ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
          REMOTE_ADDR: '127.0.0.1',
        },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      req.pipe(cgi.stdin);
      let head = Buffer.alloc(0);
      let sentHead = false;
      cgi.stdout.on('data', (chunk: Buffer) => {
        if (sentHead) {
          res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        let status = 200;
        for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
          const colon = line.indexOf(':');
          const key = line.slice(0, colon).trim();
          const value = line.slice(colon + 1).trim();
          if (key.toLowerCase() === 'status') status = Number.parseInt(value, 10);
          else res.setHeader(key, value);
        }
        res.writeHead(status);
        sentHead = true;
        res.write(head.subarray(end + 4));
      });
      cgi.on('close', () => {
        if (!sentHead) res.writeHead(502);
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/course`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

function* walk(dir: string): Generator<string> {
  yield dir;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
