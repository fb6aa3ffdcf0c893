import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import tarFs from 'tar-fs';
import { HubError } from '../errors.js';

/**
 * The one module that talks to the Docker engine (STYLE.md §2, DockerSpawner's `docker()`
 * gateway). Every call gets a timeout; engine answers are mapped to what the spawner needs:
 * 404 becomes `undefined` (gone is a normal state), a connection failure becomes
 * DockerUnavailable (a clear message for the student, one log line for the admin).
 */

/** The engine does not answer (stopped, socket missing, hung). */
export class DockerUnavailable extends HubError {
  constructor(detail?: string) {
    super(
      'DOCKER_UNAVAILABLE',
      503,
      'The service that runs notebook servers is not available right now. Your files are safe; please try again in a few minutes, and tell your teacher if it lasts.',
      detail,
    );
  }
}

/** The engine answered with an error (bad request, conflict, server error). */
export class DockerRequestFailed extends Error {
  override name = 'DockerRequestFailed';
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  labels: Readonly<Record<string, string>>;
  /** Host port published on 127.0.0.1 for the container's `privatePort`, if any. */
  hostPort(privatePort: number): number | undefined;
}

export interface ContainerDetails {
  id: string;
  name: string;
  running: boolean;
  status: string;
  exitCode: number;
  oomKilled: boolean;
  labels: Readonly<Record<string, string>>;
  hostPort(privatePort: number): number | undefined;
}

export interface ImageDetails {
  id: string;
  user: string;
  labels: Readonly<Record<string, string>>;
}

export type ContainerCreateOptions = Docker.ContainerCreateOptions;

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EACCES', 'EHOSTUNREACH']);

/** Thin, typed wrapper around dockerode. Holds no state besides the client. */
export class DockerEngine {
  private readonly docker: Docker;

  constructor(
    readonly socketPath: string,
    timeoutMs = 60_000,
  ) {
    this.docker = new Docker({ socketPath, timeout: timeoutMs });
  }

  /** Resolves when the engine answers; DockerUnavailable otherwise. */
  async ping(): Promise<void> {
    await this.call('ping', () => this.docker.ping());
  }

  /** What `docker info` says about the engine itself (oerhub doctor). */
  async info(): Promise<{ version: string; liveRestore: boolean; rootDir: string }> {
    const info = (await this.call('info', () => this.docker.info())) as { ServerVersion?: string; LiveRestoreEnabled?: boolean; DockerRootDir?: string };
    return { version: info.ServerVersion ?? 'unknown', liveRestore: info.LiveRestoreEnabled === true, rootDir: info.DockerRootDir ?? '/var/lib/docker' };
  }

  async inspectImage(name: string): Promise<ImageDetails | undefined> {
    const info = await this.maybe('inspect image', () => this.docker.getImage(name).inspect());
    if (!info) return undefined;
    return { id: info.Id, user: info.Config?.User ?? '', labels: info.Config?.Labels ?? {} };
  }

  /** The network's id, or undefined if there is none of that name. */
  async inspectNetwork(name: string): Promise<{ id: string; options: Record<string, string>; labels: Record<string, string> } | undefined> {
    const info = (await this.maybe('inspect network', () => this.docker.getNetwork(name).inspect())) as
      | { Id: string; Options?: Record<string, string>; Labels?: Record<string, string> }
      | undefined;
    return info ? { id: info.Id, options: info.Options ?? {}, labels: info.Labels ?? {} } : undefined;
  }

  async createNetwork(options: Docker.NetworkCreateOptions): Promise<void> {
    await this.call('create network', () => this.docker.createNetwork(options));
  }

  async removeNetwork(name: string): Promise<void> {
    await this.maybe('remove network', () => this.docker.getNetwork(name).remove());
  }

  async inspectVolume(name: string): Promise<{ name: string; labels: Record<string, string> } | undefined> {
    const info = await this.maybe('inspect volume', () => this.docker.getVolume(name).inspect());
    return info ? { name: info.Name, labels: info.Labels ?? {} } : undefined;
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.call('create volume', () => this.docker.createVolume({ Name: name, Labels: labels }));
  }

  /** Removes a volume; true if it was there. A volume still in use throws (409). */
  async removeVolume(name: string): Promise<boolean> {
    return (await this.maybe('remove volume', () => this.docker.getVolume(name).remove())) !== undefined;
  }

  async listVolumes(label: string): Promise<string[]> {
    const reply = await this.call('list volumes', () => this.docker.listVolumes({ filters: { label: [label] } }));
    return (reply.Volumes ?? []).map((v) => v.Name);
  }

  /** Creates a container and returns its id. A name in use throws DockerRequestFailed 409. */
  async createContainer(options: ContainerCreateOptions): Promise<string> {
    const container = await this.call('create container', () => this.docker.createContainer(options));
    return container.id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call('start container', () => this.docker.getContainer(id).start(), [304]);
  }

  async inspectContainer(idOrName: string): Promise<ContainerDetails | undefined> {
    const info = await this.maybe('inspect container', () => this.docker.getContainer(idOrName).inspect());
    if (!info) return undefined;
    const ports = info.NetworkSettings?.Ports ?? {};
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      running: info.State.Running,
      status: info.State.Status,
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      labels: info.Config?.Labels ?? {},
      hostPort: (privatePort) => {
        const bindings = (ports[`${privatePort}/tcp`] ?? []) as { HostIp: string; HostPort: string }[];
        const binding = bindings.find((b) => b.HostIp === '127.0.0.1');
        return binding ? Number(binding.HostPort) : undefined;
      },
    };
  }

  /** Changes a running container's CPU weight (docker update --cpu-shares). False for a gone container. */
  async setCpuShares(idOrName: string, shares: number): Promise<boolean> {
    const done = await this.maybe('update container', async () => {
      await this.docker.getContainer(idOrName).update({ CpuShares: shares });
      return true;
    });
    return done === true;
  }

  /** Containers carrying `label` (key=value), in any state when `all`. */
  async listContainers(label: string, all: boolean): Promise<ContainerSummary[]> {
    const list = await this.call('list containers', () => this.docker.listContainers({ all, filters: { label: [label] } }));
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      state: c.State,
      labels: c.Labels ?? {},
      hostPort: (privatePort) => c.Ports.find((p) => p.PrivatePort === privatePort && p.Type === 'tcp' && p.IP === '127.0.0.1')?.PublicPort,
    }));
  }

  /**
   * SIGTERM, SIGKILL after `graceS`, then remove with its anonymous volumes. Safe for a
   * container that is stopped, being removed or gone.
   */
  async stopAndRemove(idOrName: string, graceS: number): Promise<boolean> {
    const container = this.docker.getContainer(idOrName);
    const stopped = await this.maybe('stop container', () => container.stop({ t: graceS }), [304]);
    if (stopped === undefined && !(await this.inspectContainer(idOrName))) return false;
    // 409: another caller is already removing it, which is what we want.
    await this.maybe('remove container', () => container.remove({ force: true, v: true }), [409]);
    return true;
  }

  /**
   * Copy a folder out of an image into `dest` (made; its files only: links and devices are
   * skipped), through a created, never started, container without network that is removed
   * afterwards. False when the image has no such folder.
   */
  async exportFolder(image: string, pathInImage: string, dest: string): Promise<boolean> {
    const id = await this.createContainer({ Image: image, Cmd: ['true'], NetworkDisabled: true, HostConfig: { NetworkMode: 'none' } });
    const container = this.docker.getContainer(id);
    try {
      const archive = await this.maybe('copy from container', () => container.getArchive({ path: pathInImage }));
      if (!archive) return false;
      await fs.promises.mkdir(dest, { recursive: true });
      // The archive's one top folder is pathInImage's last part: strip it.
      const extract = tarFs.extract(dest, { strip: 1, readable: true, ignore: (_name, header) => header?.type !== 'file' && header?.type !== 'directory' });
      await pipeline(archive, extract);
      return true;
    } finally {
      await this.maybe('remove container', () => container.remove({ force: true, v: true }), [409]);
    }
  }

  /** The last `lines` lines of a container's output (stdout and stderr), for error reports. */
  async logTail(idOrName: string, lines: number): Promise<string> {
    const raw = (await this.maybe('container logs', () =>
      this.docker.getContainer(idOrName).logs({ stdout: true, stderr: true, tail: lines, follow: false }),
    )) as Buffer | string | undefined;
    if (raw === undefined) return '(no log)';
    return demux(Buffer.isBuffer(raw) ? raw : Buffer.from(raw)).trimEnd();
  }

  /** Runs `fn`, mapping engine errors; `ok` lists status codes that count as success. */
  private async call<T>(what: string, fn: () => Promise<T>, ok: number[] = []): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const status = statusOf(err);
      if (status !== undefined && ok.includes(status)) return undefined as T;
      throw mapError(what, err);
    }
  }

  /** Like call(), but a 404 resolves to undefined. */
  private async maybe<T>(what: string, fn: () => Promise<T>, ok: number[] = []): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return undefined;
      if (status !== undefined && ok.includes(status)) return undefined;
      throw mapError(what, err);
    }
  }
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function mapError(what: string, err: unknown): Error {
  const status = statusOf(err);
  const message = engineMessage(err);
  if (status !== undefined) return new DockerRequestFailed(status, `${what}: ${status} ${message}`);
  const code = (err as NodeJS.ErrnoException)?.code;
  if ((code && CONNECTION_CODES.has(code)) || /timeout|socket hang up/i.test(message)) {
    return new DockerUnavailable(`${what}: ${code ?? message}`);
  }
  return err instanceof Error ? err : new Error(`${what}: ${message}`);
}

function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } })?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}

/** Docker's multiplexed log stream (8-byte frame headers when the container has no TTY) to text. */
function demux(buffer: Buffer): string {
  let out = '';
  let offset = 0;
  const looksFramed = buffer.length >= 8 && buffer[0]! <= 2 && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0;
  if (!looksFramed) return buffer.toString('utf8');
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  return out;
}
