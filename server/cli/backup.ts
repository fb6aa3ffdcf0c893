import fs from 'node:fs';
import path from 'node:path';
import type { HubConfig } from '../config/index.js';
import { envName } from '../config/index.js';
import { DockerEngine } from '../spawner/docker-engine.js';
import { LABEL_INSTANCE } from '../spawner/docker-spawner.js';
import { SQLITE_FILE } from '../store/index.js';
import { CliError, type CliCommand, type CliContext } from './command.js';
import { configFileOf, hubConfig, type GlobalOptions } from './config.js';
import { backupRedis, backupSqlite, restoreRedis, restoreSqlite } from './backup-store.js';

const MANIFEST = 'manifest.json';
/** The hub's own small files from dataDir (cookie secret, local servers' state, account map...). */
const FILES = 'datadir';
const CONFIG = 'config';
/** dataDir entries that are not the hub's own small state: users' data (backed up by the operator) and what the store copy covers. */
const NOT_HUB_FILES = new Set(['homes', 'ephemeral', 'logs']);
/** Config keys naming files the hub needs (SAML keys and metadata): copied with the config. */
const FILE_KEYS = ['samlIdpMetadataFile', 'samlIdpCertFile', 'samlSpKeyFile', 'samlSpCertFile'] as const;

interface Manifest {
  format: 1;
  createdAt: string;
  store: HubConfig['store'];
  dataDir: string;
  redisKeyPrefix?: string;
  /** Where the config file was, and its copy's name in the backup. */
  configFile?: { path: string; copy: string };
  /** Files named by the config (key, original path, copy). */
  configFiles: { key: string; path: string; copy: string }[];
  /** What the operator backs up with their own tools. */
  userData: string[];
}

/** What the hub does not hold and the operator must back up with their own tools: users' files, datasets, images. */
async function userDataList(config: HubConfig): Promise<string[]> {
  const out: string[] = [];
  const data = path.resolve(config.dataDir);
  out.push(`folder ${path.join(data, 'homes')}: students' homes of the local spawner (e.g. rsync -a, or your file backup)`);
  if (config.spawner === 'docker' || fs.existsSync('/var/run/docker.sock')) {
    const engine = new DockerEngine(config.dockerSocket, 5_000);
    const volumes = await engine.listVolumes(`${LABEL_INSTANCE}=${config.dockerInstance}`).catch(() => undefined);
    if (volumes === undefined) out.push(`Docker volumes labelled ${LABEL_INSTANCE}=${config.dockerInstance} (the engine did not answer, so they are not listed): students' homes`);
    else for (const v of volumes.sort()) out.push(`Docker volume ${v}: a student's home (e.g. docker run --rm -v ${v}:/v -v "$PWD":/b debian tar -C /v -czf /b/${v}.tgz .)`);
  }
  for (const d of config.dockerDatasets) out.push(`${d.source.startsWith('/') ? 'folder' : 'Docker volume'} ${d.source}: course data "${d.name}" (dockerDatasets)`);
  for (const image of [...new Set(config.dockerProfiles.map((p) => p.image))]) out.push(`image ${image}: rebuild with images/build.sh, or docker save ${image} | gzip > ${image.replace(/[/:]/g, '_')}.tgz`);
  if (config.trySamplesDir) out.push(`folder ${config.trySamplesDir}: the "Try it" samples (trySamplesDir)`);
  return out;
}

function copyTree(from: string, to: string): number {
  let n = 0;
  const stat = fs.statSync(from);
  if (stat.isDirectory()) {
    fs.mkdirSync(to, { recursive: true, mode: stat.mode & 0o777 });
    fs.chmodSync(to, stat.mode & 0o777);
    for (const entry of fs.readdirSync(from)) n += copyTree(path.join(from, entry), path.join(to, entry));
  } else if (stat.isFile()) {
    fs.copyFileSync(from, to);
    fs.chmodSync(to, stat.mode & 0o777);
    fs.chownSync(to, stat.uid, stat.gid);
    n = 1;
  }
  return n;
}

async function backup(config: HubConfig, dir: string, configFile: string | undefined, context: CliContext): Promise<void> {
  const dest = path.resolve(dir);
  if (config.store === 'memory') throw new CliError('store=memory keeps nothing across restarts: there is nothing to back up');
  const existed = fs.existsSync(dest);
  if (existed && fs.readdirSync(dest).length) throw new CliError(`${dest} is not empty: give a new or empty folder (a backup never overwrites another)`);
  fs.mkdirSync(dest, { recursive: true, mode: 0o700 });
  // The cookie secret and passwords are in here.
  fs.chmodSync(dest, 0o700);
  try {
    await writeBackup(config, dest, configFile, context);
  } catch (err) {
    // No half backup that looks like a whole one.
    if (existed) for (const entry of fs.readdirSync(dest)) fs.rmSync(path.join(dest, entry), { recursive: true, force: true });
    else fs.rmSync(dest, { recursive: true, force: true });
    throw err;
  }
}

async function writeBackup(config: HubConfig, dest: string, configFile: string | undefined, context: CliContext): Promise<void> {
  if (config.store === 'sqlite') {
    const r = await backupSqlite(config, dest);
    context.out(`store: ${r.file} copied with SQLite's online backup (${r.bytes} bytes)`);
  } else {
    const r = await backupRedis(config, dest);
    context.out(`store: ${r.keys} Redis keys under "${config.redisKeyPrefix}" copied (DUMP/PTTL)`);
  }
  const data = path.resolve(config.dataDir);
  let files = 0;
  for (const entry of fs.existsSync(data) ? fs.readdirSync(data) : []) {
    if (NOT_HUB_FILES.has(entry) || entry.startsWith(SQLITE_FILE)) continue;
    files += copyTree(path.join(data, entry), path.join(dest, FILES, entry));
  }
  context.out(`hub files: ${files} from ${data} (cookie secret, servers' state, account map)`);
  const manifest: Manifest = { format: 1, createdAt: new Date().toISOString(), store: config.store, dataDir: data, configFiles: [], userData: await userDataList(config) };
  if (config.store === 'redis') manifest.redisKeyPrefix = config.redisKeyPrefix;
  fs.mkdirSync(path.join(dest, CONFIG), { mode: 0o700 });
  if (configFile) {
    const copy = path.join(CONFIG, 'config.json');
    fs.copyFileSync(configFile, path.join(dest, copy));
    manifest.configFile = { path: path.resolve(configFile), copy };
  }
  for (const key of FILE_KEYS) {
    const file = config[key];
    if (!file || !fs.existsSync(file)) continue;
    const copy = path.join(CONFIG, `${key}-${path.basename(file)}`);
    fs.copyFileSync(file, path.join(dest, copy));
    fs.chmodSync(path.join(dest, copy), 0o600);
    manifest.configFiles.push({ key, path: path.resolve(file), copy });
  }
  context.out(`config: ${manifest.configFile ? manifest.configFile.path : 'no config file'}${manifest.configFiles.length ? `, ${manifest.configFiles.map((f) => f.key).join(', ')}` : ''}; OERHUB_* variables are yours to keep (e.g. in the systemd unit)`);
  fs.writeFileSync(path.join(dest, MANIFEST), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
  context.out(`backup written to ${dest} (0700: it holds the cookie secret)`);
  printUserData(manifest.userData, context);
}

function printUserData(lines: string[], context: CliContext): void {
  context.out('Not in this backup; back these up with your own tools:');
  for (const line of lines) context.out(`  - ${line}`);
}

async function restore(config: HubConfig, dir: string, context: CliContext): Promise<void> {
  const from = path.resolve(dir);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(from, MANIFEST), 'utf8')) as Manifest;
  } catch (err) {
    throw new CliError(`${path.join(from, MANIFEST)} can't be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): not an oerhub backup`);
  }
  if (manifest.format !== 1) throw new CliError(`${from} is a backup of format ${String(manifest.format)}, which this oerhub does not know`);
  if (manifest.store !== config.store) throw new CliError(`the backup is of a store=${manifest.store} hub, but this config says store=${config.store} (${envName('store')}): restore with the same store`);
  const data = path.resolve(config.dataDir);
  fs.mkdirSync(data, { recursive: true, mode: 0o700 });
  if (config.store === 'sqlite') {
    const r = restoreSqlite(config, from);
    context.out(`store: ${r.file} restored`);
  } else {
    const r = await restoreRedis(config, from);
    context.out(`store: ${r.keys} Redis keys restored under "${config.redisKeyPrefix}" (${r.removed} keys there before were removed)`);
  }
  const files = path.join(from, FILES);
  const n = fs.existsSync(files) ? fs.readdirSync(files).reduce((sum, entry) => sum + copyTree(path.join(files, entry), path.join(data, entry)), 0) : 0;
  context.out(`hub files: ${n} restored into ${data}`);
  const putBack = (target: string, copy: string, what: string): void => {
    const source = path.join(from, copy);
    if (!fs.existsSync(target)) {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(source, target);
      fs.chmodSync(target, 0o600);
      context.out(`${what}: ${target} restored`);
    } else if (!fs.readFileSync(target).equals(fs.readFileSync(source))) context.out(`${what}: ${target} exists and differs from the backup's copy; left as it is (the copy: ${source})`);
  };
  if (manifest.configFile) putBack(manifest.configFile.path, manifest.configFile.copy, 'config');
  for (const f of manifest.configFiles) putBack(f.path, f.copy, f.key);
  context.out('Start the hub now: it adopts the servers that still run.');
  printUserData(manifest.userData, context);
}

/** `oerhub backup DIR` and `oerhub restore DIR`: the hub's state, secrets and config; users' data is listed for the operator's own tools. */
export const backupCommand: CliCommand = {
  register(program, context) {
    program
      .command('backup <dir>')
      .description("back up the hub's state (store, cookie secret, servers' state, config) into a new folder; lists what else to back up")
      .action(async (dir: string) => {
        const opts = program.opts<GlobalOptions>();
        await backup(hubConfig(opts, context), dir, configFileOf(opts, context), context);
      });
    program
      .command('restore <dir>')
      .description('put a backup back (the hub must be stopped); then start the hub, which adopts running servers')
      .action(async (dir: string) => {
        await restore(hubConfig(program.opts<GlobalOptions>(), context), dir, context);
      });
  },
};
