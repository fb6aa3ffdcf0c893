import { SpawnFailed } from '../errors.js';
import type { Logger } from '../log.js';
import { isEscapedName } from '../names.js';

/** What the hub asks a spawner to run. Built by the hub only; nothing a user sends ends up here unchecked. */
export interface SpawnSpec {
  /** Normalised username (for display and logs). */
  user: string;
  /** escapeName(user): the only form used for folders, containers, volumes and routes. */
  escapedName: string;
  /** URL prefix the server must serve under, e.g. `/user/jdoe/`. */
  baseUrl: string;
  /** Secret the hub's proxy injects as `Authorization: token ...`; never sent to a browser. */
  secret: string;
  /** Path inside the server to open first, e.g. `/lab`. */
  defaultUrl: string;
  /** A throwaway server (try-it pool): its files go with it. */
  ephemeral: boolean;
  /** Extra environment for the server, set by the hub (never by the user). */
  env: Readonly<Record<string, string>>;
  /**
   * The hub's address as the user's browser sees it, ending in /hub/ (OERHUB_HUB_URL: JupyterLab's
   * File > Log Out goes to its sign-out). Absolute, since each server has an origin of its own;
   * unset: `/hub/`, right only in single-origin mode.
   */
  hubUrl?: string;
  /**
   * Name of an admin-configured image profile (Docker spawner), already checked by the hub
   * against the configured list; unset means the default. Spawners without profiles ignore it.
   */
  profile?: string;
  /**
   * Names of datasets to mount read-only besides the profile's (set by the hub from the course
   * the server is started for, never from a request). Spawners without datasets ignore it.
   */
  datasets?: readonly string[];
  /**
   * Research projects the user is a member of (set by the hub; see server/projects): each
   * project's shared folder appears at `<home>/projects/<number>` (writable) and its datasets at
   * `<home>/projects/<number>-datasets` (read-only). Spawners without projects ignore it.
   */
  projects?: readonly ProjectMount[];
  /**
   * Run the server at a lower CPU priority (set by the warm pool for its refills, issue 14), so
   * starting the next pool server yields the CPU to the visitor who just arrived. Local spawner:
   * nice value LOW_PRIORITY_NICE for Jupyter and its kernels; Docker: CpuShares LOW_PRIORITY_CPU_SHARES
   * (of 1024). Unset: normal priority. Spawners without priorities ignore it.
   */
  lowPriority?: boolean;
}

/** Nice value of low-priority servers (local spawner); normal servers run at 0. */
export const LOW_PRIORITY_NICE = 10;
/** Nice value of normal servers (local spawner), the one a claimed pool server goes back to. */
export const NORMAL_NICE = 0;
/** Docker CpuShares of low-priority containers; the engine's default (normal servers) is 1024. */
export const LOW_PRIORITY_CPU_SHARES = 128;
/** Docker CpuShares of normal containers: the engine's default. */
export const NORMAL_CPU_SHARES = 1024;

/** A server's CPU priority: 'low' for the pool's refills, 'normal' for everyone else. */
export type ServerPriority = 'low' | 'normal';

/** One project's folders on this machine, as the hub mounted them. */
export interface ProjectMount {
  /** e.g. `P-1234`. */
  number: string;
  /** Absolute host path of the shared, writable folder. */
  shared: string;
  /** Absolute host path of the read-only datasets folder. */
  datasets: string;
}

/** Where the hub's proxy reaches a server: always an address on this machine. */
export interface Endpoint {
  host: string;
  port: number;
}

/** What a spawner needs to find its server again after a hub restart. JSON-serialisable. */
export type SpawnerState = Readonly<Record<string, string | number | boolean>>;

export interface StartedServer {
  endpoint: Endpoint;
  state: SpawnerState;
}

export interface ProgressEvent {
  /** 0..100. */
  progress: number;
  /** One line a student understands: "Creating your home folder", "Waiting for Jupyter". */
  message: string;
}

export interface StartOptions {
  /** Aborted when the start times out or the user cancels; the spawner must clean up. */
  signal: AbortSignal;
  onProgress(event: ProgressEvent): void;
  log: Logger;
}

/** A server the spawner found running (to adopt or to reap as an orphan). */
export interface FoundServer {
  escapedName: string;
  state: SpawnerState;
  endpoint: Endpoint;
}

/**
 * Runs notebook servers. Implementations: LocalProcessSpawner (embedded default),
 * DockerSpawner. Each passes test/contracts/spawner.contract.ts.
 */
export interface Spawner {
  readonly kind: string;
  /**
   * Start a server and resolve once it answers HTTP at `baseUrl` with the secret.
   * Rejects with SpawnFailed (with a user-facing reason) or AbortError; on failure nothing
   * is left running. Starting a user who already runs reuses or replaces that server.
   */
  start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer>;
  /** Stop the server and release its port. Safe to repeat and on a server already gone. Keeps persistent files. */
  stop(spec: SpawnSpec, state: SpawnerState): Promise<void>;
  /** Whether the server from `state` is still alive. Never throws for a gone server. */
  poll(state: SpawnerState): Promise<'running' | 'stopped'>;
  /** Servers of this hub that are running now (for adoption after a restart and orphan reaping). */
  listRunning(): Promise<FoundServer[]>;
  /**
   * Optional: call `listener` whenever the spawner's backend answers again after an outage
   * (Docker: a dockerd restart), so the hub can poll every server at once. Returns the
   * unsubscribe function. Spawners whose servers can't outlive such an outage leave it out.
   */
  onRecovered?(listener: () => void): () => void;
  /**
   * Optional: the server's last output lines (stdout and stderr), at most `lines` of them and
   * each cut to a readable length, for admins reading why a server misbehaves. Resolves [] for a
   * server that has no output (or never ran); throws only when the backend can't be asked
   * (DockerUnavailable). The hub removes secrets before showing them (redactLogLines).
   */
  logs?(escapedName: string, options: { lines: number }): Promise<string[]>;
  /**
   * Optional: remove the user's persistent files (home volume or folder), when an admin deletes
   * the user with their data. The server must be stopped. True if there was something to remove;
   * safe to repeat.
   */
  removeHome?(escapedName: string): Promise<boolean>;
  /**
   * Optional: give a running persistent server these project folders now, without a restart
   * (a member added while it runs). `projects` is the user's whole current list. Resolves true
   * when the running server has them, false when none runs or it can't be changed while running
   * (then the user must restart it). Safe to repeat.
   */
  addProjects?(escapedName: string, projects: readonly ProjectMount[]): Promise<boolean>;
  /**
   * Optional: move the running server from `state`, with every process it started (kernels
   * included, and those it starts later), to `priority`. The warm pool calls it with 'normal'
   * when a visitor claims a server that was started at low priority. Resolves for a server that
   * is gone; throws when the priority can't be changed (a hub without the right to lower a nice
   * value, the engine away). Safe to repeat.
   */
  setPriority?(state: SpawnerState, priority: ServerPriority): Promise<void>;
  /** Release the spawner's own resources. Does not stop servers. */
  close(): Promise<void>;
}

/**
 * The one check of a spec, shared by every spawner so their rules can't drift apart. The hub
 * builds specs itself, so a failure is a bug guard, thrown as SpawnFailed. `stop` does not
 * need the secret: the hub stops orphans it has no record (and so no secret) for.
 */
export function checkSpec(spec: SpawnSpec, purpose: 'start' | 'stop'): void {
  const problems: string[] = [];
  if (!isEscapedName(spec.escapedName)) problems.push('escapedName is not an escaped name');
  if (!/^\/(?:[^/]+\/)*$/.test(spec.baseUrl)) problems.push('baseUrl must start and end with /');
  if (!spec.defaultUrl.startsWith('/')) problems.push('defaultUrl must start with /');
  if (purpose === 'start' && !spec.secret) problems.push('secret is empty');
  for (const key of Object.keys(spec.env)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.push(`bad env name ${JSON.stringify(key)}`);
  if (problems.length) throw new SpawnFailed('The hub could not prepare your server.', problems.join('; '));
}

/** The most log lines any spawner hands out, and the longest line, whatever a caller asks. */
export const MAX_LOG_LINES = 500;
export const MAX_LOG_LINE_CHARS = 2000;

/**
 * Log text as lines an admin may be shown: at most `lines` of the last ones, control characters
 * (terminal escapes) removed, each line cut to MAX_LOG_LINE_CHARS, and anything that looks like
 * a token in a URL or header blanked (Jupyter prints its URL with `?token=` at start).
 */
export function redactLogLines(text: string, lines: number, secrets: readonly string[] = []): string[] {
  const n = Math.max(0, Math.min(MAX_LOG_LINES, Math.floor(lines)));
  if (n === 0) return [];
  let out = text.split(/\r?\n/);
  if (out.at(-1) === '') out.pop();
  out = out.slice(-n);
  return out.map((line) => {
    // eslint-disable-next-line no-control-regex
    let l = line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
    for (const s of secrets) if (s) l = l.split(s).join('[secret]');
    l = l.replace(/([?&](?:token|_xsrf)=)[^&\s"']+/gi, '$1[secret]').replace(/((?:authorization|token)\s*[:=]\s*(?:token\s+|bearer\s+)?)[A-Za-z0-9._~+/-]{8,}/gi, '$1[secret]');
    return l.length > MAX_LOG_LINE_CHARS ? `${l.slice(0, MAX_LOG_LINE_CHARS)}…` : l;
  });
}
