import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpawnFailed, SpawnTimeout } from '../errors.js';
import type { Logger } from '../log.js';
import { isEscapedName } from '../names.js';
import { checkSpec, MAX_LOG_LINE_CHARS, MAX_LOG_LINES, redactLogLines, type FoundServer, type ProjectMount, type ProgressEvent, type SpawnSpec, type SpawnerState, type Spawner, type StartOptions, type StartedServer, type ServerPriority, LOW_PRIORITY_NICE, NORMAL_NICE } from './spawner.js';
import { linkProjects } from './project-folders.js';
import { linkDatasets, revokeAllDatasets } from './local-datasets.js';
import type { LocalDataset } from '../config/datasets-schema.js';
import { probeStatus } from './status-probe.js';
import { DEFAULT_HUB_URL, jupyterFlags } from './jupyter-args.js';
import type { LocalIsolationMode } from './local-isolation.js';
import { UnixAccounts, giveHome, type UnixAccount } from './unix-accounts.js';

export interface LocalProcessSpawnerOptions {
  /** Python virtual environment with jupyterlab and oerhub_singleuser (images/venv/build.sh). */
  venvDir: string;
  /** The hub's data folder: homes/, ephemeral/, logs/ and servers/ live under it. */
  dataDir: string;
  /** `jupyter lab` or plain `jupyter server`. */
  app: 'lab' | 'server';
  /** Seconds a server may take to answer before its start counts as failed. */
  startTimeoutS: number;
  /**
   * `unix-users` (needs root): each server runs as its own Unix account with a 0700 home.
   * `none`: as the hub's own user. createSpawner passes what planLocalIsolation decided;
   * code that builds a spawner by hand gets `none`.
   */
  isolation?: LocalIsolationMode;
  /** When set, only these users (the admins of an unisolated public hub) may start a server. */
  onlyUsers?: readonly string[];
  /** Read-only datasets (localDatasets); a server gets those its spec names (a course's). */
  datasets?: readonly LocalDataset[];
  /**
   * Where JupyterLab loads its build from when the hub serves it (web/lab-static.ts): asked at
   * each start, since the hub's origin is known only once it listens. Undefined: each server
   * serves its own.
   */
  labStaticUrl?: () => string | undefined;
  log: Logger;
}

/** What servers/<escapedName>.json holds: enough to find, check and stop the process after a hub restart. */
interface ServerRecord {
  pid: number;
  port: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  startTicks: number;
  ephemeral: boolean;
  /** The datasets it was given, comma-separated (older records: unknown). */
  datasets?: string;
}

type LaunchOutcome = { kind: 'ready'; record: ServerRecord } | { kind: 'port-in-use'; detail: string } | { kind: 'exited'; detail: string };

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

const LOCALHOST = '127.0.0.1';
/** One first try plus two retries when another program grabs the port between our probe and Jupyter's bind. */
const MAX_PORT_ATTEMPTS = 3;
const POLL_INTERVAL_MS = 250;
/** Jupyter gets this long after SIGTERM to shut its kernels down cleanly before SIGKILL. */
const STOP_GRACE_MS = 5000;
const KILL_WAIT_MS = 2000;
const LOG_TAIL_LINES = 20;
const LOG_TAIL_BYTES = 8192;
/** Fixed system path: the hub's own PATH (and the rest of its environment) is not passed on. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const EXITED_MESSAGE = 'Your notebook server stopped while it was starting. Please try again; if it keeps happening, tell your teacher.';

/**
 * Runs one `jupyter lab` (or `jupyter server`) process per user on 127.0.0.1, from the
 * notebook virtual environment. Processes are detached and outlive the hub, so a hub restart
 * keeps students' servers running; their pid, port and start time are kept in
 * `<dataDir>/servers/<escapedName>.json` to find them again. Linux only (reads /proc).
 *
 * With `isolation: 'unix-users'` (the hub runs as root) each server runs as its own
 * unprivileged account (UnixAccounts) with a 0700 home and a minimal environment, so it can't
 * read another server's files or /proc/<pid>/environ, nor the hub's data folder or environment.
 * With `none` every server runs as the hub's OS user: no isolation boundary at all.
 */
export class LocalProcessSpawner implements Spawner {
  readonly kind = 'local';
  private readonly venvDir: string;
  private readonly dataDir: string;
  private readonly app: 'lab' | 'server';
  private readonly startTimeoutS: number;
  private readonly log: Logger;
  /** Present when servers run as their own accounts. */
  private readonly accounts?: UnixAccounts;
  private readonly onlyUsers?: readonly string[];
  private readonly datasets: readonly LocalDataset[];
  private readonly labStaticUrl: () => string | undefined;

  constructor(options: LocalProcessSpawnerOptions) {
    // Resolved once so a later chdir can't point the hub at other folders.
    this.venvDir = path.resolve(options.venvDir);
    this.dataDir = path.resolve(options.dataDir);
    this.app = options.app;
    this.startTimeoutS = options.startTimeoutS;
    this.log = options.log;
    this.onlyUsers = options.onlyUsers;
    this.datasets = options.datasets ?? [];
    this.labStaticUrl = options.labStaticUrl ?? (() => undefined);
    if (options.isolation === 'unix-users') this.accounts = new UnixAccounts({ dataDir: this.dataDir, log: this.log });
  }

  /**
   * Starts the user's server and resolves once `GET <baseUrl>api/status` answers 200 with the
   * secret. A server of the same user that is still running is reused when it accepts this
   * spec's secret, and replaced otherwise. Rejects with SpawnFailed (venv missing, Jupyter
   * exited), SpawnTimeout (startTimeoutS passed) or the reason of `options.signal`; in every
   * failure the process group is killed and the state file removed.
   */
  async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    checkSpec(spec, 'start');
    options.signal.throwIfAborted();
    const log = options.log.child({ user: spec.user, spawner: this.kind });
    if (this.onlyUsers && !this.onlyUsers.includes(spec.user)) {
      throw new SpawnFailed(
        'This hub starts notebook servers for its administrators only: it cannot keep servers apart on this machine. Please tell your administrator.',
        'servers are not isolated (localIsolation none, or the hub is not root) and the hub is reachable from outside; run the hub as root or use spawner=docker',
      );
    }
    let lastProgress = 0;
    const progress = (event: ProgressEvent): void => {
      // Strictly increasing: the spawn page draws a progress bar that must never go back.
      if (event.progress <= lastProgress) return;
      lastProgress = event.progress;
      options.onProgress(event);
    };

    const reused = await this.reuseOrReplace(spec, options.signal, log);
    if (reused) {
      progress({ progress: 100, message: 'Your server is ready' });
      return reused;
    }

    const jupyter = path.join(this.venvDir, 'bin', 'jupyter');
    if (!(await isExecutable(jupyter))) {
      throw new SpawnFailed('The notebook environment is not installed on this hub (run `npm run venv`).', `${jupyter} is missing or not executable`);
    }

    progress({ progress: 10, message: 'Preparing your home folder' });
    const { home, account } = await this.prepareFolders(spec, log);

    const timeoutMs = this.startTimeoutS * 1000;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new SpawnTimeout(this.startTimeoutS)), timeoutMs);
    const signal = AbortSignal.any([options.signal, timeout.signal]);
    const startedAt = Date.now();
    try {
      progress({ progress: 30, message: 'Starting Jupyter' });
      for (let attempt = 1; ; attempt++) {
        const port = await findFreePort();
        signal.throwIfAborted();
        const outcome = await this.launch(spec, home, account, port, jupyter, signal, log, () => {
          const fraction = Math.min(1, (Date.now() - startedAt) / timeoutMs);
          progress({ progress: 40 + Math.floor(50 * fraction), message: 'Waiting for Jupyter to answer' });
        });
        if (outcome.kind === 'ready') {
          progress({ progress: 100, message: 'Your server is ready' });
          log.info({ pid: outcome.record.pid, port, attempt }, 'notebook server ready');
          return { endpoint: { host: LOCALHOST, port }, state: stateOf(outcome.record) };
        }
        if (outcome.kind === 'port-in-use' && attempt < MAX_PORT_ATTEMPTS) {
          log.warn({ port, attempt }, 'port taken before Jupyter could bind it; retrying with another');
          continue;
        }
        throw new SpawnFailed(EXITED_MESSAGE, outcome.detail);
      }
    } catch (err) {
      if (spec.ephemeral) await removeTree(this.ephemeralDir(spec.escapedName));
      // Prefer the abort reason: SpawnTimeout or whatever the caller aborted with.
      if (signal.aborted) throw signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      // Started (its state file now vouches for the account) or failed (reapable): either way done.
      this.accounts?.release(spec.escapedName);
    }
  }

  /**
   * SIGTERM to the server's process group, SIGKILL after ~5 s, then SIGKILL to any kernels
   * left over (Jupyter starts kernels in their own sessions). Removes the state file and, for
   * an ephemeral server, its folder; never touches a persistent home. Safe to repeat and for
   * a server that is already gone.
   */
  async stop(spec: SpawnSpec, state: SpawnerState): Promise<void> {
    checkSpec(spec, 'stop');
    const onFile = await this.readRecord(spec.escapedName);
    const target = parseState(state) ?? onFile;
    if (target) await killServer(target.pid, target.startTicks);
    // A newer server of the same user (state from an older start) keeps its file and folder.
    const newerRunning = onFile !== undefined && onFile.pid !== target?.pid && (await isAlive(onFile.pid, onFile.startTicks));
    if (newerRunning) return;
    await fs.rm(this.recordPath(spec.escapedName), { force: true });
    if (spec.ephemeral || onFile?.ephemeral) await removeTree(this.ephemeralDir(spec.escapedName));
    this.log.info({ user: spec.user, pid: target?.pid }, 'notebook server stopped');
  }

  /**
   * Sets the nice value of every thread of the server and of every process it started (kernels
   * live in sessions of their own but are its descendants). Per thread, because Linux keeps a
   * nice value per thread and Jupyter and its kernels run several; a kernel started later forks
   * from a thread that has the new value. Going back to normal needs root (CAP_SYS_NICE): a hub
   * without it throws SpawnFailed, and the caller only logs it. Resolves for a gone server.
   */
  async setPriority(state: SpawnerState, priority: ServerPriority): Promise<void> {
    const parsed = parseState(state);
    if (!parsed || !(await isAlive(parsed.pid, parsed.startTicks))) return;
    const nice = priority === 'low' ? LOW_PRIORITY_NICE : NORMAL_NICE;
    const pids = [parsed.pid, ...(await findDescendants(parsed.pid)).map((d) => d.pid)];
    const failed: string[] = [];
    let changed = 0;
    for (const pid of pids) {
      for (const tid of await threadsOf(pid)) {
        try {
          os.setPriority(tid, nice);
          changed++;
        } catch (err) {
          // A thread that ended while we went through the list is no failure.
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') failed.push(`${tid}: ${(err as Error).message}`);
        }
      }
    }
    if (failed.length) throw new SpawnFailed('The hub could not change the priority of a server.', `nice ${nice} failed for ${failed.length} thread(s), e.g. ${failed[0]}`);
    this.log.debug({ pid: parsed.pid, nice, threads: changed }, 'server priority changed');
  }

  /** 'running' only if the pid is alive and still the process we started (same start ticks). Never throws. */
  async poll(state: SpawnerState): Promise<'running' | 'stopped'> {
    const parsed = parseState(state);
    if (!parsed) return 'stopped';
    return (await isAlive(parsed.pid, parsed.startTicks)) ? 'running' : 'stopped';
  }

  /**
   * Servers with a state file whose process is still alive. Files of servers that died
   * (machine reboot, crash, kill) are deleted, with the folders of ephemeral ones.
   */
  async listRunning(): Promise<FoundServer[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.serversDir());
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const found: FoundServer[] = [];
    for (const file of names) {
      if (!file.endsWith('.json')) continue;
      const escapedName = file.slice(0, -'.json'.length);
      if (!isEscapedName(escapedName)) continue;
      const record = await this.readRecord(escapedName);
      if (record && (await isAlive(record.pid, record.startTicks))) {
        found.push({ escapedName, state: stateOf(record), endpoint: { host: LOCALHOST, port: record.port } });
        continue;
      }
      this.log.info({ escapedName, pid: record?.pid }, 'removing state of a server that is gone');
      await fs.rm(this.recordPath(escapedName), { force: true });
      if (record?.ephemeral) await removeTree(this.ephemeralDir(escapedName));
    }
    return found;
  }

  /**
   * Every timer and child handle belongs to a single start() or stop() call. What is left: the
   * accounts of ephemeral servers that are gone by now (the hub stops servers before this).
   */
  async close(): Promise<void> {
    await this.accounts?.reapEphemeral((name) => this.isRunning(name));
  }

  /** The last lines of the server's log file (dataDir/logs), read from its end only: a huge log costs no more. */
  async logs(escapedName: string, options: { lines: number }): Promise<string[]> {
    if (!isEscapedName(escapedName)) return [];
    const lines = Math.min(MAX_LOG_LINES, options.lines);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.logPath(escapedName), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, lines * MAX_LOG_LINE_CHARS, 256 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const text = buffer.toString('utf8');
      // The first line of a read that began mid-file is a fragment.
      return redactLogLines(length < size ? text.slice(text.indexOf('\n') + 1) : text, lines);
    } finally {
      await handle.close();
    }
  }

  /**
   * A member added while their server runs: the account's ACL entries and the links in
   * `~/projects/` are made now; the kernel checks ACLs on every access, so the running server
   * (its file browser, kernels, terminals) can use the folder at once. False when no persistent
   * server of this user runs.
   */
  async addProjects(escapedName: string, projects: readonly ProjectMount[]): Promise<boolean> {
    if (!isEscapedName(escapedName)) return false;
    const record = await this.readRecord(escapedName);
    if (!record || record.ephemeral || !(await isAlive(record.pid, record.startTicks))) return false;
    const home = path.join(this.dataDir, 'homes', escapedName);
    const account = this.accounts ? await this.accounts.existing(escapedName) : undefined;
    if (this.accounts && !account) return false;
    await linkProjects(home, projects, account, this.log.child({ user: escapedName }));
    return true;
  }

  /**
   * A deleted user's files: their home folder (dataDir/homes/NAME), their server's log
   * (dataDir/logs/NAME.log) and, with Unix-account isolation, their account `oh-NAME` (its uid
   * is free again afterwards). The server must be stopped. True if any of them was there. Safe to repeat.
   */
  async removeHome(escapedName: string): Promise<boolean> {
    if (!isEscapedName(escapedName)) return false;
    const home = path.join(this.dataDir, 'homes', escapedName);
    let removed = false;
    try {
      await fs.access(home);
      await removeTree(home);
      removed = true;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    try {
      await fs.unlink(this.logPath(escapedName));
      removed = true;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    if (this.accounts) {
      const account = await this.accounts.existing(escapedName);
      if (account) await revokeAllDatasets(this.datasets, account, this.log.child({ user: escapedName }));
      if (await this.accounts.remove(escapedName)) removed = true;
    }
    return removed;
  }

  private homeDir(spec: SpawnSpec): string {
    return spec.ephemeral ? this.ephemeralDir(spec.escapedName) : path.join(this.dataDir, 'homes', spec.escapedName);
  }

  private ephemeralDir(escapedName: string): string {
    return path.join(this.dataDir, 'ephemeral', escapedName);
  }

  private serversDir(): string {
    return path.join(this.dataDir, 'servers');
  }

  private recordPath(escapedName: string): string {
    return path.join(this.serversDir(), `${escapedName}.json`);
  }

  private logPath(escapedName: string): string {
    return path.join(this.dataDir, 'logs', `${escapedName}.log`);
  }

  /** A live server of this user that accepts the new secret is kept; any other is stopped first. */
  private async reuseOrReplace(spec: SpawnSpec, signal: AbortSignal, log: Logger): Promise<StartedServer | undefined> {
    const record = await this.readRecord(spec.escapedName);
    if (!record) return undefined;
    if ((await isAlive(record.pid, record.startTicks)) && record.ephemeral === spec.ephemeral) {
      const status = await probeStatus(record.port, spec, signal).catch(() => 0);
      if (status === 200) {
        log.info({ pid: record.pid, port: record.port }, 'reusing running notebook server');
        return { endpoint: { host: LOCALHOST, port: record.port }, state: stateOf(record) };
      }
    }
    log.info({ pid: record.pid }, 'replacing previous notebook server');
    const { pid, port, startTicks } = record;
    await this.stop(spec, { pid, port, startTicks });
    signal.throwIfAborted();
    return undefined;
  }

  /**
   * The server's home (0700, its account's when isolated) and the account it runs as. State
   * files and logs stay the hub's (0700 folders, 0600 files): a server never reads them.
   */
  private async prepareFolders(spec: SpawnSpec, log: Logger): Promise<{ home: string; account?: UnixAccount }> {
    for (const dir of [this.serversDir(), path.dirname(this.logPath(spec.escapedName))]) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await fs.chmod(dir, 0o700);
    }
    const home = this.homeDir(spec);
    // A throwaway server must never see files left by an earlier one of the same name.
    if (spec.ephemeral) await removeTree(home);
    if (this.accounts) {
      // Other accounts may pass through (not list) the data folder and homes/ to reach their own home.
      await fs.mkdir(path.dirname(home), { recursive: true, mode: 0o711 });
      for (const dir of [this.dataDir, path.dirname(home)]) await fs.chmod(dir, ((await fs.stat(dir)).mode & 0o700) | 0o011);
    }
    await fs.mkdir(home, { recursive: true, mode: 0o700 });
    // mkdir's mode only applies to new folders; homes made by hand or older versions get fixed too.
    await fs.chmod(home, 0o700);
    if (!this.accounts) {
      if (!spec.ephemeral) await linkProjects(home, spec.projects ?? [], undefined, log);
      await linkDatasets(home, this.datasets, this.datasetsOf(spec), undefined, log);
      return { home };
    }
    // Accounts of "Try it" servers that are gone go first: system uids are few.
    await this.accounts.reapEphemeral((name) => this.isRunning(name));
    const account = await this.accounts.acquire(spec.escapedName, home, spec.ephemeral);
    try {
      await giveHome(home, account, log);
      if (!spec.ephemeral) await linkProjects(home, spec.projects ?? [], account, log);
      await linkDatasets(home, this.datasets, this.datasetsOf(spec), account, log);
    } catch (err) {
      this.accounts.release(spec.escapedName);
      throw err;
    }
    return { home, account };
  }

  /** Starts Jupyter on `port` and waits until it answers, exits, or `signal` aborts (then kills it and throws). */
  private async launch(
    spec: SpawnSpec,
    home: string,
    account: UnixAccount | undefined,
    port: number,
    jupyter: string,
    signal: AbortSignal,
    log: Logger,
    onWaiting: () => void,
  ): Promise<LaunchOutcome> {
    const logFile = this.logPath(spec.escapedName);
    await rotateLog(logFile);
    const out = await fs.open(logFile, 'w', 0o600);
    const env = await this.childEnv(spec, home, account);
    let exit: ExitInfo | undefined;
    const exitedOrDone = new AbortController();
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void => {
      exit ??= { code, signal: sig };
      exitedOrDone.abort();
    };
    const onError = (error: Error): void => {
      exit ??= { code: null, signal: null, error };
      exitedOrDone.abort();
    };
    let child: ChildProcess;
    try {
      child = spawn(jupyter, this.jupyterArgs(spec, home, port, account), {
        cwd: home,
        env,
        // libuv drops the hub's supplementary groups before setgid/setuid.
        ...(account ? { uid: account.uid, gid: account.gid } : {}),
        // Own process group: stop() signals the group, and the server survives the hub.
        detached: true,
        stdio: ['ignore', out.fd, out.fd],
      });
      // Before any await: a failed exec (EACCES as the server's account) is emitted on the next tick.
      child.once('exit', onExit);
      child.once('error', onError);
      // Before Jupyter starts threads or kernels, which inherit the nice value.
      if (spec.lowPriority && child.pid !== undefined) lowerPriority(child.pid, log);
    } finally {
      // The child has its own copy of the descriptor.
      await out.close();
    }
    child.unref();

    const detach = (): void => {
      child.off('exit', onExit);
      child.off('error', onError);
      exitedOrDone.abort();
    };

    const pid = child.pid;
    let record: ServerRecord | undefined;
    let isReady = false;
    try {
      const startTicks = pid === undefined ? undefined : await readStartTicks(pid);
      if (pid === undefined || startTicks === undefined) {
        // Spawn failed or the process is already gone; its 'error' or 'exit' event is on its way.
        await waitForAbort(exitedOrDone.signal, signal);
      } else {
        // Recorded before it is ready, so a hub that dies now still finds (and reaps) it.
        // The datasets it has, for the hub to tell when a course needs a restart to get its own.
        record = { pid, port, startTicks, ephemeral: spec.ephemeral, datasets: this.datasetsOf(spec).join(',') };
        await this.writeRecord(spec.escapedName, record);
      }
      log.info({ pid, port }, 'notebook server launched');

      const waitSignal = AbortSignal.any([signal, exitedOrDone.signal]);
      while (!exit && !signal.aborted) {
        onWaiting();
        const status = await probeStatus(port, spec, waitSignal).catch(() => 0);
        if (status === 200 && record) {
          isReady = true;
          return { kind: 'ready', record };
        }
        await sleep(POLL_INTERVAL_MS, undefined, { signal: waitSignal }).catch(() => undefined);
      }
      if (!exit) throw signal.reason;
      const tail = await readLogTail(logFile);
      const how = exit.error ? `could not run ${jupyter}: ${exit.error.message}` : `jupyter exited (code ${exit.code}, signal ${exit.signal})`;
      log.warn({ pid, port, code: exit.code, signal: exit.signal }, 'notebook server exited during start');
      // port_retries=0 makes Jupyter exit instead of silently moving to another port.
      const portTaken = /port \d+ is (already in use|not available)|address already in use/i.test(tail);
      return { kind: portTaken ? 'port-in-use' : 'exited', detail: `${how}; last lines of ${logFile}:\n${tail}` };
    } finally {
      detach();
      if (!isReady) {
        // Whatever went wrong (exit, timeout, abort, a failed write), nothing may stay running.
        if (record) await killServer(record.pid, record.startTicks);
        await fs.rm(this.recordPath(spec.escapedName), { force: true });
      }
    }
  }

  private jupyterArgs(spec: SpawnSpec, home: string, port: number, account: UnixAccount | undefined): string[] {
    const labStaticUrl = this.labStaticUrl();
    const args = jupyterFlags(spec, { app: this.app, ip: LOCALHOST, port, rootDir: home, ...(labStaticUrl ? { labStaticUrl } : {}) });
    // Jupyter refuses to run as root unless told; in a root container that is the only user.
    if (!account && process.getuid?.() === 0) args.push('--allow-root');
    return args;
  }

  /**
   * A minimal, explicit environment: nothing of the hub's own (OERHUB_* secrets above all). The
   * server's secret is in it, so it sits in /proc/<pid>/environ, which only the server's own
   * account (and root) can read when servers are isolated.
   */
  private async childEnv(spec: SpawnSpec, home: string, account: UnixAccount | undefined): Promise<Record<string, string>> {
    const jupyterData = path.join(home, '.local', 'share', 'jupyter');
    const env: Record<string, string> = {
      PATH: `${path.join(this.venvDir, 'bin')}:${SYSTEM_PATH}`,
      VIRTUAL_ENV: this.venvDir,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      // Log lines reach the log file at once, so a failed start shows its last words.
      PYTHONUNBUFFERED: '1',
      ...((await isExecutable('/bin/bash')) ? { SHELL: '/bin/bash' } : {}),
      ...spec.env,
      // Set last so nothing in spec.env can point the server elsewhere.
      HOME: home,
      JUPYTER_CONFIG_DIR: path.join(home, '.jupyter'),
      JUPYTER_DATA_DIR: jupyterData,
      JUPYTER_RUNTIME_DIR: path.join(jupyterData, 'runtime'),
      OERHUB_SERVER_SECRET: spec.secret,
      OERHUB_USER: spec.user,
      ...(account ? { USER: account.name, LOGNAME: account.name } : {}),
      OERHUB_HUB_URL: spec.hubUrl ?? DEFAULT_HUB_URL,
    };
    return env;
  }

  /** The configured datasets this start mounts: the ones the hub named (a course's); none for "Try it" servers. */
  private datasetsOf(spec: SpawnSpec): string[] {
    if (spec.ephemeral) return [];
    const names = new Set((this.datasets).map((d) => d.name));
    return (spec.datasets ?? []).filter((n) => names.has(n));
  }

  /** Whether this user's server (by its state file) is alive. */
  private async isRunning(escapedName: string): Promise<boolean> {
    const record = await this.readRecord(escapedName);
    return record !== undefined && (await isAlive(record.pid, record.startTicks));
  }

  private async readRecord(escapedName: string): Promise<ServerRecord | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.recordPath(escapedName), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== 'object' || value === null) return undefined;
      const parsed = parseState(value as SpawnerState);
      if (!parsed) return undefined;
      const datasets = (value as Record<string, unknown>).datasets;
      return { ...parsed, ephemeral: (value as Record<string, unknown>).ephemeral === true, ...(typeof datasets === 'string' ? { datasets } : {}) };
    } catch {
      // A torn or hand-edited file counts as no record; listRunning() removes it.
      return undefined;
    }
  }

  private async writeRecord(escapedName: string, record: ServerRecord): Promise<void> {
    // Write then rename, so a hub killed mid-write never leaves half a file.
    const file = this.recordPath(escapedName);
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await fs.rename(tmp, file);
  }
}

/** The pid/port/startTicks of a SpawnerState, or undefined if it isn't one of ours. */
function parseState(state: SpawnerState): Omit<ServerRecord, 'ephemeral'> | undefined {
  const { pid, port, startTicks } = state;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  if (typeof startTicks !== 'number' || !Number.isInteger(startTicks) || startTicks < 0) return undefined;
  return { pid, port, startTicks };
}

/** Bind to port 0 and give the port back. Another program may take it before Jupyter binds; start() retries then. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, LOCALHOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not read the probed port'))));
    });
  });
}


/** Fields of /proc/<pid>/stat after the command name (which may itself contain spaces and parentheses). */
async function readStat(pid: number): Promise<string[] | undefined> {
  try {
    const text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (starttime); readStat() starts at field 3, so index 19. */
async function readStartTicks(pid: number): Promise<number | undefined> {
  const fields = await readStat(pid);
  const ticks = fields ? Number(fields[19]) : NaN;
  return Number.isInteger(ticks) ? ticks : undefined;
}

/** Alive, not a zombie, and the same process as when it was recorded (pids are reused). */
async function isAlive(pid: number, startTicks: number): Promise<boolean> {
  const fields = await readStat(pid);
  if (!fields) return false;
  const state = fields[0];
  if (state === 'Z' || state === 'X' || state === 'x') return false;
  return Number(fields[19]) === startTicks;
}

/** Processes below `pid` (kernels sit in their own sessions, so killing the group misses them). */
async function findDescendants(pid: number): Promise<{ pid: number; startTicks: number }[]> {
  let entries: string[];
  try {
    entries = await fs.readdir('/proc');
  } catch {
    return [];
  }
  const children = new Map<number, { pid: number; startTicks: number }[]>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await readStat(Number(entry));
    if (!fields) continue;
    const ppid = Number(fields[1]);
    const list = children.get(ppid) ?? [];
    list.push({ pid: Number(entry), startTicks: Number(fields[19]) });
    children.set(ppid, list);
  }
  const found: { pid: number; startTicks: number }[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of children.get(next) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    // Gone already: that is what we wanted.
    if (!isErrno(err, 'ESRCH')) throw err;
  }
}

async function waitUntilGone(pid: number, startTicks: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (await isAlive(pid, startTicks)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Stops a server started by a LocalProcessSpawner (its pid leads its own process group). */
async function killServer(pid: number, startTicks: number): Promise<void> {
  if (!(await isAlive(pid, startTicks))) return;
  const descendants = await findDescendants(pid);
  signalProcess(-pid, 'SIGTERM');
  if (!(await waitUntilGone(pid, startTicks, STOP_GRACE_MS))) {
    signalProcess(-pid, 'SIGKILL');
    await waitUntilGone(pid, startTicks, KILL_WAIT_MS);
  }
  for (const child of descendants) {
    if (await isAlive(child.pid, child.startTicks)) signalProcess(child.pid, 'SIGKILL');
  }
}

async function rotateLog(file: string): Promise<void> {
  try {
    await fs.rename(file, `${file}.1`);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

async function readLogTail(file: string): Promise<string> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '(no log)';
  }
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function removeTree(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Resolves when either signal aborts. */
function waitForAbort(...signals: AbortSignal[]): Promise<void> {
  const any = AbortSignal.any(signals);
  if (any.aborted) return Promise.resolve();
  return new Promise((resolve) => any.addEventListener('abort', () => resolve(), { once: true }));
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/** Thread ids of a process (/proc/PID/task); [] for a process that is gone. */
async function threadsOf(pid: number): Promise<number[]> {
  try {
    return (await fs.readdir(`/proc/${pid}/task`)).filter((t) => /^\d+$/.test(t)).map(Number);
  } catch {
    return [];
  }
}

/** A higher nice value for a low-priority server; a failure only costs the visitor some speed. */
function lowerPriority(pid: number, log: Logger): void {
  try {
    os.setPriority(pid, LOW_PRIORITY_NICE);
  } catch (err) {
    log.warn({ pid, err: (err as Error).message }, 'could not lower the priority of a pool server');
  }
}

/** What the hub keeps of a server (SpawnerState): how to find it, and the datasets it has. */
function stateOf(record: ServerRecord): SpawnerState {
  const { pid, port, startTicks, datasets } = record;
  return { pid, port, startTicks, ...(datasets === undefined ? {} : { datasets }) };
}
