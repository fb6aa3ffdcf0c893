import { setTimeout as sleep } from 'node:timers/promises';
import type { DockerDataset, DockerProfile } from '../config/docker-schema.js';
import { HubError, SpawnFailed, SpawnTimeout } from '../errors.js';
import type { Logger } from '../log.js';
import { isEscapedName } from '../names.js';
import { DockerEngine, DockerRequestFailed, DockerUnavailable, type ContainerCreateOptions } from './docker-engine.js';
import { checkSpec, MAX_LOG_LINES, redactLogLines, type FoundServer, type ProgressEvent, type SpawnSpec, type SpawnerState, type Spawner, type StartOptions, type StartedServer, type ServerPriority, LOW_PRIORITY_CPU_SHARES, NORMAL_CPU_SHARES } from './spawner.js';
import { probeStatus } from './status-probe.js';
import { DEFAULT_HUB_URL, jupyterFlags } from './jupyter-args.js';
import { grantContainerUid, projectBinds } from './docker-project-mounts.js';

export interface DockerSpawnerOptions {
  /** Unix socket of the Docker engine. */
  socketPath: string;
  /** Prefix of every container, volume and network name, and value of the instance label. */
  instance: string;
  /** Network of the notebook containers (default `<instance>-notebooks`). */
  network?: string;
  /** Admin-configured images; the first is the default. */
  profiles: readonly DockerProfile[];
  /** Read-only datasets mounted at `<notebookHome>/datasets/<name>`. */
  datasets: readonly DockerDataset[];
  /** The notebook user's home inside the images. */
  notebookHome: string;
  app: 'lab' | 'server';
  memLimitMb: number;
  cpuLimit: number;
  pidsLimit: number;
  logMaxSizeMb: number;
  logMaxFiles: number;
  stopGraceS: number;
  startTimeoutS: number;
  /**
   * Where JupyterLab loads its build from when the hub serves that image's build
   * (web/lab-static.ts), asked at each start with the image's id; `exportTo` copies the image's
   * build folder (LAB_BUILD_IN_IMAGE) out. Undefined: the server serves its own.
   */
  labStaticUrl?: (imageId: string, exportTo: (dest: string) => Promise<boolean>) => string | undefined;
  log: Logger;
}

/** Where images built by images/build.sh keep JupyterLab's build (the notebook venv is /opt/notebook). */
export const LAB_BUILD_IN_IMAGE = '/opt/notebook/share/jupyter/lab/static';

/** Labels every object of ours carries; listRunning and the orphan reaper go by them. */
export const LABEL_INSTANCE = 'org.oerhub.instance';
export const LABEL_USER = 'org.oerhub.user';
export const LABEL_EPHEMERAL = 'org.oerhub.ephemeral';
export const LABEL_PROFILE = 'org.oerhub.profile';
/** Comma-separated names of the datasets a notebook container mounts. */
export const LABEL_DATASETS = 'org.oerhub.datasets';
export const LABEL_KIND = 'org.oerhub.kind';

/** Port Jupyter listens on inside every container; published on 127.0.0.1 only. */
const JUPYTER_PORT = 8888;
const LOCALHOST = '127.0.0.1';
const POLL_INTERVAL_MS = 250;
/** How often the wait loop asks the engine whether the container died (an HTTP probe can't tell). */
const INSPECT_EVERY_MS = 1000;
const LOG_TAIL_LINES = 20;
const MIB = 1024 * 1024;
/** While the engine does not answer, it is asked this often whether it is back. */
const ENGINE_WATCH_MS = 2000;
const EXITED_MESSAGE = 'Your notebook server stopped while it was starting. Please try again; if it keeps happening, tell your teacher.';

/**
 * The datasets a server mounts: those its profile lists (all, for a profile without a list),
 * and for an ephemeral "Try it" server only the public ones among them.
 */
export function datasetsFor(datasets: readonly DockerDataset[], profile: DockerProfile, ephemeral: boolean, extra: readonly string[] = []): DockerDataset[] {
  const listed = profile.datasets;
  return datasets.filter((d) => (listed === undefined || listed.includes(d.name) || extra.includes(d.name)) && (!ephemeral || d.public));
}

/**
 * One container per user, from an admin-configured image profile (DockerSpawner's model):
 *
 * - names are deterministic: container `<instance>-nb-<escapedName>`, home volume
 *   `<instance>-home-<escapedName>`; escapeName is injective, so two users never share either;
 * - the home volume is mounted at `notebookHome`; a new one is filled by Docker from the image's
 *   own (user-owned) home, so it comes up owned by the notebook user, never root;
 * - datasets are mounted read-only under `<notebookHome>/datasets/`, per profile; "Try it" servers get only public ones;
 * - the user's research projects are bound at `<notebookHome>/projects/<number>` (writable) and
 *   `<number>-datasets` (read-only), with an ACL entry for the image's uid (docker-project-mounts.ts);
 * - Jupyter's port is published on 127.0.0.1 only; the container has memory (swap included),
 *   CPU and pids limits, an init process, rotated logs, no new privileges and no capabilities,
 *   and sits on one bridge network with inter-container traffic off (see README, "Docker spawner").
 *
 * State kept for the hub: container id, host port, container name.
 */
export class DockerSpawner implements Spawner {
  readonly kind = 'docker';
  private readonly engine: DockerEngine;
  private readonly network: string;
  private networkReady: Promise<void> | undefined;
  /** Engine outage tracking: set by a call that found the engine gone, cleared by the first answer after it. */
  private engineDown = false;
  private watchTimer: NodeJS.Timeout | undefined;
  private pinging = false;
  private closed = false;
  private readonly recoveredListeners = new Set<() => void>();

  constructor(private readonly o: DockerSpawnerOptions) {
    if (!o.profiles.length) throw new Error('DockerSpawner needs at least one image profile');
    this.engine = new DockerEngine(o.socketPath);
    this.network = o.network ?? `${o.instance}-notebooks`;
  }

  /** Container name of a user (deterministic, so a second start finds the first's container). */
  containerName(escapedName: string): string {
    return `${this.o.instance}-nb-${escapedName}`;
  }

  /** Home volume name of a user. */
  volumeName(escapedName: string): string {
    return `${this.o.instance}-home-${escapedName}`;
  }

  get networkName(): string {
    return this.network;
  }

  /** The profile a spec asks for; the hub has checked the name already, this guards against bugs. */
  profileOf(name: string | undefined): DockerProfile {
    if (name === undefined) return this.o.profiles[0]!;
    const profile = this.o.profiles.find((p) => p.name === name);
    if (!profile) throw new SpawnFailed('That kind of server is not offered here.', `unknown profile ${JSON.stringify(name)}`);
    return profile;
  }

  /**
   * Starts the user's container and resolves once Jupyter answers `GET <baseUrl>api/status`
   * with the secret. A container left under the same name (an older start, a crashed hub) is
   * removed first: a new start always has a new secret. Rejects with SpawnFailed (image missing
   * or running as root, dataset missing, Jupyter exited), DockerUnavailable, SpawnTimeout or the
   * reason of `options.signal`; on every failure the new container is removed (the home volume
   * stays).
   */
  async start(spec: SpawnSpec, options: StartOptions): Promise<StartedServer> {
    checkSpec(spec, 'start');
    options.signal.throwIfAborted();
    const profile = this.profileOf(spec.profile);
    const log = options.log.child({ user: spec.user, spawner: this.kind, image: profile.image });
    let lastProgress = 0;
    const progress = (value: number, message: string): void => {
      // Strictly increasing: the spawn page's bar never goes back.
      if (value <= lastProgress) return;
      lastProgress = value;
      const event: ProgressEvent = { progress: value, message };
      options.onProgress(event);
    };

    const timeoutMs = this.o.startTimeoutS * 1000;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new SpawnTimeout(this.o.startTimeoutS)), timeoutMs);
    const signal = AbortSignal.any([options.signal, timeout.signal]);
    const name = this.containerName(spec.escapedName);
    let containerId: string | undefined;
    let isReady = false;
    try {
      progress(5, `Checking the ${profile.displayName} image (${profile.image})`);
      const image = await this.engine.inspectImage(profile.image);
      if (!image) {
        throw new SpawnFailed(
          `The ${profile.displayName} notebook image is not installed on this hub yet. Please tell the admin.`,
          `image ${profile.image} is missing; build it with images/build.sh`,
        );
      }
      if (isRootUser(image.user)) {
        throw new SpawnFailed('The hub could not prepare your server.', `image ${profile.image} runs as root (USER ${JSON.stringify(image.user)}); refusing`);
      }
      signal.throwIfAborted();

      progress(10, 'Preparing the network');
      await this.ensureNetwork();
      signal.throwIfAborted();

      const previous = await this.engine.inspectContainer(name);
      if (previous) {
        progress(15, 'Clearing away your previous server');
        log.info({ container: short(previous.id), status: previous.status }, 'removing an earlier container of this user');
        await this.engine.stopAndRemove(previous.id, 0);
      }
      signal.throwIfAborted();

      if (!spec.ephemeral) {
        const volume = this.volumeName(spec.escapedName);
        if (await this.engine.inspectVolume(volume)) {
          progress(20, `Found your home folder (volume ${volume})`);
        } else {
          progress(20, `Creating your home folder (volume ${volume})`);
          await this.engine.createVolume(volume, this.labelsOf(spec, 'home'));
          log.info({ volume }, 'home volume created');
        }
      }
      await this.checkDatasets(datasetsFor(this.o.datasets, profile, spec.ephemeral, spec.datasets));
      if (!spec.ephemeral && spec.projects?.length) {
        progress(25, 'Preparing your project folders');
        await grantContainerUid(spec.projects, image.user);
      }
      signal.throwIfAborted();

      progress(30, 'Creating your container');
      const labStaticUrl = this.o.app === 'lab' ? this.o.labStaticUrl?.(image.id, (dest) => this.engine.exportFolder(profile.image, LAB_BUILD_IN_IMAGE, dest)) : undefined;
      containerId = await this.createContainer(name, this.containerOptions(spec, profile, image.user, labStaticUrl), log);
      signal.throwIfAborted();

      progress(40, 'Starting your container');
      await this.engine.startContainer(containerId);
      const started = await this.engine.inspectContainer(containerId);
      const port = started?.hostPort(JUPYTER_PORT);
      if (!started || !port) throw new SpawnFailed(EXITED_MESSAGE, `container ${short(containerId)} has no port published on ${LOCALHOST}`);
      log.info({ container: short(containerId), port }, 'container started');

      const startedAt = Date.now();
      let lastInspect = Date.now();
      for (;;) {
        signal.throwIfAborted();
        const seconds = Math.floor((Date.now() - startedAt) / 1000);
        const fraction = Math.min(1, (Date.now() - startedAt) / timeoutMs);
        progress(50 + Math.floor(45 * fraction), `Waiting for Jupyter to answer (${seconds} s)`);
        const status = await probeStatus(port, spec, signal).catch(() => 0);
        if (status === 200) break;
        if (Date.now() - lastInspect >= INSPECT_EVERY_MS) {
          lastInspect = Date.now();
          const now = await this.engine.inspectContainer(containerId);
          if (!now?.running) {
            const tail = await this.engine.logTail(containerId, LOG_TAIL_LINES).catch(() => '(no log)');
            throw new SpawnFailed(EXITED_MESSAGE, `container ${short(containerId)} ${now ? `exited (code ${now.exitCode}${now.oomKilled ? ', out of memory' : ''})` : 'disappeared'}; last lines:\n${tail}`);
          }
        }
        await sleep(POLL_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
      }
      progress(100, 'Your server is ready');
      isReady = true;
      log.info({ container: short(containerId), port, ms: Date.now() - startedAt }, 'notebook server ready');
      // The profile goes into the state so the culler can apply that profile's limits.
      return { endpoint: { host: LOCALHOST, port }, state: { containerId, port, name, profile: profile.name, datasets: datasetsFor(this.o.datasets, profile, spec.ephemeral, spec.datasets).map((d) => d.name).join(',') } };
    } catch (err) {
      this.noteFailure(err);
      if (signal.aborted) throw signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      if (!isReady) {
        // Whatever went wrong, nothing of this start may keep running; the home volume stays.
        await this.engine.stopAndRemove(containerId ?? name, 0).catch((e: Error) => log.warn({ err: e.message }, 'could not remove a failed container'));
      }
    }
  }

  /**
   * Stops the container (SIGTERM, SIGKILL after stopGraceS) and removes it with any anonymous
   * volume; the home volume stays. Safe to repeat and for a container that is gone. Targets
   * the container in `state`, so an old state never removes a newer server of the same user.
   * Throws DockerUnavailable when the engine does not answer.
   */
  async stop(spec: SpawnSpec, state: SpawnerState): Promise<void> {
    checkSpec(spec, 'stop');
    const target = typeof state.containerId === 'string' && state.containerId ? state.containerId : this.containerName(spec.escapedName);
    const removed = await this.watched(this.engine.stopAndRemove(target, this.o.stopGraceS));
    if (removed) this.o.log.info({ user: spec.user, container: short(target) }, 'container stopped and removed');
  }

  /**
   * Sets the container's CpuShares: the cgroup weight covers Jupyter and every kernel in it, now
   * and later. Resolves for a gone container; DockerUnavailable when the engine does not answer.
   */
  async setPriority(state: SpawnerState, priority: ServerPriority): Promise<void> {
    const id = state.containerId;
    if (typeof id !== 'string' || !id) return;
    const shares = priority === 'low' ? LOW_PRIORITY_CPU_SHARES : NORMAL_CPU_SHARES;
    if (await this.watched(this.engine.setCpuShares(id, shares))) this.o.log.debug({ container: short(id), shares }, 'container priority changed');
  }

  /** 'running' while the container in `state` runs. 'stopped' for a gone one; DockerUnavailable if the engine does not answer. */
  async poll(state: SpawnerState): Promise<'running' | 'stopped'> {
    const id = state.containerId;
    if (typeof id !== 'string' || !id) return 'stopped';
    const info = await this.watched(this.engine.inspectContainer(id));
    return info?.running && info.labels[LABEL_INSTANCE] === this.o.instance ? 'running' : 'stopped';
  }

  /**
   * Running containers with this hub's instance label (adoption after a restart, orphans).
   * Containers of ours that have exited (a crash, an engine restart) are removed on the way:
   * their homes live in volumes, and a dead container only blocks its name.
   */
  async listRunning(): Promise<FoundServer[]> {
    const found: FoundServer[] = [];
    for (const c of await this.watched(this.engine.listContainers(`${LABEL_INSTANCE}=${this.o.instance}`, true))) {
      const escapedName = c.labels[LABEL_USER] ?? '';
      const port = c.hostPort(JUPYTER_PORT);
      if (c.state === 'running' && isEscapedName(escapedName) && port) {
        const profile = c.labels[LABEL_PROFILE];
        const datasets = c.labels[LABEL_DATASETS];
        found.push({ escapedName, state: { containerId: c.id, port, name: c.name, ...(profile ? { profile } : {}), ...(datasets === undefined ? {} : { datasets }) }, endpoint: { host: LOCALHOST, port } });
      } else if (c.state === 'exited' || c.state === 'dead') {
        this.o.log.info({ container: short(c.id), name: c.name, state: c.state }, 'removing a container of ours that is no longer running');
        await this.engine.stopAndRemove(c.id, 0).catch((e: Error) => this.o.log.warn({ err: e.message }, 'could not remove a dead container'));
      }
    }
    return found;
  }

  /**
   * Call `listener` each time the engine answers again after calls found it gone (a dockerd
   * restart). The hub re-checks every server then. Returns the unsubscribe function.
   */
  onRecovered(listener: () => void): () => void {
    this.recoveredListeners.add(listener);
    return () => this.recoveredListeners.delete(listener);
  }

  /** Stops watching for the engine's return; the engine client keeps no connection open between calls. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    this.recoveredListeners.clear();
  }

  /** An engine call whose outcome tells whether the engine is down or back. */
  private async watched<T>(call: Promise<T>): Promise<T> {
    try {
      const value = await call;
      if (this.engineDown) this.recovered();
      return value;
    } catch (err) {
      this.noteFailure(err);
      throw err;
    }
  }

  /** The engine did not answer: keep asking until it does, then tell the hub (onRecovered). */
  private noteFailure(err: unknown): void {
    if (!(err instanceof DockerUnavailable) || this.closed) return;
    if (!this.engineDown) {
      this.engineDown = true;
      this.o.log.warn({ err: err.message }, 'the Docker engine does not answer; running servers are kept and checked again once it is back');
    }
    if (this.watchTimer) return;
    this.watchTimer = setInterval(() => {
      if (this.pinging) return;
      this.pinging = true;
      this.engine
        .ping()
        .then(
          () => this.recovered(),
          () => undefined,
        )
        .finally(() => {
          this.pinging = false;
        });
    }, ENGINE_WATCH_MS);
    this.watchTimer.unref();
  }

  private recovered(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    if (!this.engineDown || this.closed) return;
    this.engineDown = false;
    this.o.log.info('the Docker engine answers again; checking every server');
    for (const listener of this.recoveredListeners) {
      try {
        listener();
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'a listener for the engine\'s return failed');
      }
    }
  }

  /** The container's last output lines (docker logs --tail), secrets blanked. [] when there is no container. */
  async logs(escapedName: string, options: { lines: number }): Promise<string[]> {
    const lines = Math.min(MAX_LOG_LINES, Math.max(1, Math.floor(options.lines)));
    if (!(await this.engine.inspectContainer(this.containerName(escapedName)))) return [];
    return redactLogLines(await this.engine.logTail(this.containerName(escapedName), lines), lines);
  }

  /** Remove a user's home volume (admin deleting a user; tests). True if it existed. */
  async removeHome(escapedName: string): Promise<boolean> {
    return this.engine.removeVolume(this.volumeName(escapedName));
  }

  private labelsOf(spec: SpawnSpec, kind: string, profile?: DockerProfile): Record<string, string> {
    return {
      [LABEL_INSTANCE]: this.o.instance,
      [LABEL_USER]: spec.escapedName,
      [LABEL_KIND]: kind,
      [LABEL_EPHEMERAL]: String(spec.ephemeral),
      ...(profile ? { [LABEL_PROFILE]: profile.name } : {}),
    };
  }

  /**
   * The notebook network: one bridge for every container, with inter-container traffic off.
   * Created once per spawner (and again after a failure); a network of that name made by
   * someone else is refused rather than trusted.
   */
  private ensureNetwork(): Promise<void> {
    this.networkReady ??= (async () => {
      let network = await this.engine.inspectNetwork(this.network);
      if (!network) {
        try {
          await this.engine.createNetwork({
            Name: this.network,
            Driver: 'bridge',
            CheckDuplicate: true,
            Labels: { [LABEL_INSTANCE]: this.o.instance, [LABEL_KIND]: 'network' },
            Options: { 'com.docker.network.bridge.enable_icc': 'false' },
          });
          this.o.log.info({ network: this.network }, 'notebook network created');
        } catch (err) {
          // Another hub process made it in between: fine, check it below.
          if (!(err instanceof DockerRequestFailed && err.statusCode === 409)) throw err;
        }
        network = await this.engine.inspectNetwork(this.network);
      }
      if (network?.options['com.docker.network.bridge.enable_icc'] !== 'false') {
        throw new SpawnFailed('The hub could not prepare your server.', `network ${this.network} lets containers talk to each other (enable_icc is not false); remove it or choose another dockerNetwork`);
      }
    })();
    const ready = this.networkReady;
    ready.catch(() => {
      if (this.networkReady === ready) this.networkReady = undefined;
    });
    return ready;
  }

  /** Dataset volumes must exist: Docker would otherwise quietly create empty ones. */
  private async checkDatasets(datasets: readonly DockerDataset[]): Promise<void> {
    for (const d of datasets) {
      if (d.source.startsWith('/')) continue;
      if (!(await this.engine.inspectVolume(d.source))) {
        throw new SpawnFailed('A course dataset is missing on this hub. Please tell your teacher.', `dataset volume ${d.source} (${d.name}) does not exist`);
      }
    }
  }

  /** Creates the container; a name still taken (a crash between our check and now) is cleared once. */
  private async createContainer(name: string, options: ContainerCreateOptions, log: Logger): Promise<string> {
    try {
      return await this.engine.createContainer(options);
    } catch (err) {
      if (!(err instanceof DockerRequestFailed && err.statusCode === 409)) throw wrapCreateError(err);
      log.warn({ name }, 'container name in use; removing the old container and retrying');
      await this.engine.stopAndRemove(name, 0);
      return this.engine.createContainer(options).catch((e: unknown) => {
        throw wrapCreateError(e);
      });
    }
  }

  private containerOptions(spec: SpawnSpec, profile: DockerProfile, imageUser: string, labStaticUrl: string | undefined): ContainerCreateOptions {
    const home = this.o.notebookHome;
    const mounts: NonNullable<NonNullable<ContainerCreateOptions['HostConfig']>['Mounts']> = [];
    if (!spec.ephemeral) {
      // A volume mount (not a bind) so Docker copies the image's user-owned home into a new volume.
      mounts.push({ Type: 'volume', Source: this.volumeName(spec.escapedName), Target: home, ReadOnly: false });
    }
    for (const d of datasetsFor(this.o.datasets, profile, spec.ephemeral, spec.datasets)) {
      mounts.push({ Type: d.source.startsWith('/') ? 'bind' : 'volume', Source: d.source, Target: `${home}/datasets/${d.name}`, ReadOnly: true });
    }
    // The member's projects only (the hub reads the membership at each start); never for "Try it".
    if (!spec.ephemeral) mounts.push(...projectBinds(spec.projects ?? [], home));
    const env: Record<string, string> = {
      ...spec.env,
      // Set last so nothing in spec.env can point the server elsewhere.
      HOME: home,
      OERHUB_SERVER_SECRET: spec.secret,
      OERHUB_USER: spec.user,
      OERHUB_HUB_URL: spec.hubUrl ?? DEFAULT_HUB_URL,
      OERHUB_DATASETS: `${home}/datasets`,
    };
    const memory = this.o.memLimitMb * MIB;
    return {
      name: this.containerName(spec.escapedName),
      Image: profile.image,
      // Never root: the image's own non-root user (checked in start()).
      User: imageUser,
      Cmd: this.jupyterArgs(spec, home, labStaticUrl),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: home,
      // The datasets it mounts, so an adopted container reports them as a started one does.
      Labels: { ...this.labelsOf(spec, 'notebook', profile), [LABEL_DATASETS]: datasetsFor(this.o.datasets, profile, spec.ephemeral, spec.datasets).map((d) => d.name).join(',') },
      ExposedPorts: { [`${JUPYTER_PORT}/tcp`]: {} },
      StopTimeout: this.o.stopGraceS,
      HostConfig: {
        PortBindings: { [`${JUPYTER_PORT}/tcp`]: [{ HostIp: LOCALHOST, HostPort: '' }] },
        Mounts: mounts,
        NetworkMode: this.network,
        // Swap included: MemorySwap equal to Memory means no swap beyond the limit.
        Memory: memory,
        MemorySwap: memory,
        NanoCpus: Math.round(this.o.cpuLimit * 1e9),
        // Pool refills yield the CPU to running servers under contention (the limit above stays).
        ...(spec.lowPriority ? { CpuShares: LOW_PRIORITY_CPU_SHARES } : {}),
        PidsLimit: this.o.pidsLimit,
        Init: true,
        LogConfig: { Type: 'json-file', Config: { 'max-size': `${this.o.logMaxSizeMb}m`, 'max-file': String(this.o.logMaxFiles) } },
        SecurityOpt: ['no-new-privileges:true'],
        CapDrop: ['ALL'],
        IpcMode: 'private',
        // Ports are random per start: a container restarted by the engine would be unreachable at
        // its recorded port, so the hub starts a fresh one instead.
        RestartPolicy: { Name: 'no' },
      },
    };
  }

  private jupyterArgs(spec: SpawnSpec, home: string, labStaticUrl: string | undefined): string[] {
    // ip 0.0.0.0 is inside the container; the engine publishes the port on the host's 127.0.0.1 only.
    return ['jupyter', ...jupyterFlags(spec, { app: this.o.app, ip: '0.0.0.0', port: JUPYTER_PORT, rootDir: home, ...(labStaticUrl ? { labStaticUrl } : {}) })];
  }
}

function wrapCreateError(err: unknown): unknown {
  if (err instanceof DockerRequestFailed && err.statusCode >= 400 && err.statusCode < 500) {
    return new SpawnFailed('The hub could not prepare your server. Please tell the admin.', err.message);
  }
  return err;
}

function isRootUser(user: string): boolean {
  const who = user.split(':')[0] ?? '';
  return who === '' || who === '0' || who === 'root';
}

function short(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

export { DockerUnavailable, HubError };
