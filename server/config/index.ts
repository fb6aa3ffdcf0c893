import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { configSchema, configShape, type ConfigKey, type HubConfig } from './schema.js';
import { isRedisSocketPath, redisUrlHasPassword } from './store-schema.js';
import { originProblems } from './origin-schema.js';
import { dockerProblems } from './docker-schema.js';
import { projectsProblems } from './projects-schema.js';

export { configSchema, configShape, type HubConfig, type ConfigKey };

const ENV_PREFIX = 'OERHUB_';

export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export interface ConfigSources {
  /** Parsed JSON config file (optional). */
  file?: Record<string, unknown>;
  /** Environment, normally process.env; only OERHUB_* keys are read. */
  env?: NodeJS.ProcessEnv;
  /** Values set in code (tests); highest precedence. */
  overrides?: Partial<Record<ConfigKey, unknown>>;
}

/**
 * Merge defaults < file < environment < overrides, validate once, freeze.
 * Throws ConfigError listing every bad key with what was expected.
 */
export function loadConfig(sources: ConfigSources = {}): HubConfig {
  const raw: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(sources.file ?? {})) {
    if (!(k in configShape)) problems.push(`${k} (config file): unknown option`);
    else raw[k] = v;
  }
  const env = sources.env ?? {};
  const known = new Set(Object.keys(configShape).map(envName));
  for (const name of Object.keys(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === 'OERHUB_CONFIG') continue;
    if (!known.has(name)) problems.push(`${name}: unknown environment variable`);
  }
  for (const key of Object.keys(configShape)) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  Object.assign(raw, sources.overrides ?? {});
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path.join('.') || '(root)';
      problems.push(`${key} (${envName(String(issue.path[0] ?? key))}): ${issue.message}`);
    }
  }
  if (parsed.success) problems.push(...ssoProblems(parsed.data), ...storeProblems(parsed.data), ...originProblems(parsed.data), ...dockerProblems(parsed.data), ...projectsProblems(parsed.data));
  if (problems.length || !parsed.success) throw new ConfigError(problems);
  return Object.freeze(parsed.data);
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Cross-field rules of SAML and trusted-header sign-on. */
function ssoProblems(c: HubConfig): string[] {
  const out: string[] = [];
  if (c.samlEnabled) {
    if (!c.samlIdpMetadataFile && !c.samlIdpMetadataUrl) {
      out.push(`samlIdpMetadataFile (${envName('samlIdpMetadataFile')}): SAML needs the identity provider's metadata: set samlIdpMetadataFile or samlIdpMetadataUrl`);
    }
    if (c.samlIdpMetadataFile && c.samlIdpMetadataUrl) out.push(`samlIdpMetadataUrl (${envName('samlIdpMetadataUrl')}): set either samlIdpMetadataFile or samlIdpMetadataUrl, not both`);
    if (!c.publicUrl) out.push(`publicUrl (${envName('publicUrl')}): SAML needs the public URL, which the IdP sends users back to (e.g. https://hub.example.edu)`);
    if (c.samlIdpMetadataUrl) {
      const u = new URL(c.samlIdpMetadataUrl);
      // Metadata carries the certificates we trust; over plain http anyone on the path could swap them.
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) {
        out.push(`samlIdpMetadataUrl (${envName('samlIdpMetadataUrl')}): must be https (it carries the certificates that sign assertions)`);
      }
    }
    if (Boolean(c.samlSpKeyFile) !== Boolean(c.samlSpCertFile)) out.push(`samlSpCertFile (${envName('samlSpCertFile')}): set samlSpKeyFile and samlSpCertFile together`);
  }
  // Identity headers are believed only through the front door: user code can reach 127.0.0.1.
  if (c.trustedHeader && !c.frontDoorSocket) {
    out.push(`frontDoorSocket (${envName('frontDoorSocket')}): trustedHeader needs the Unix socket nginx proxies to (e.g. /run/oerhub/hub.sock); the header is never believed on the TCP port`);
  }
  return out;
}

/** Cross-field rules of the state store. */
function storeProblems(c: HubConfig): string[] {
  if (c.store !== 'redis') return [];
  const out: string[] = [];
  if (!c.cookieSecret) {
    out.push(
      `cookieSecret (${envName('cookieSecret')}): store=redis needs a configured cookie secret (32+ characters), the same for every hub process sharing the Redis; a generated one differs per data folder, so a sign-in on one hub would not count on another`,
    );
  }
  const url = c.redisUrl;
  if (!isRedisSocketPath(url) && !/^rediss?:\/\/[^/?#]/i.test(url)) {
    out.push(`redisUrl (${envName('redisUrl')}): expected redis://host:port/db, rediss://host:port/db or the path of a unix socket (starting with /)`);
  } else if (!isRedisSocketPath(url) && !c.redisPassword && !redisUrlHasPassword(url)) {
    out.push(
      `redisPassword (${envName('redisPassword')}): store=redis over TCP needs Redis' password (requirepass): set redisPassword, put it in redisUrl (redis://:PASSWORD@host:6379/0), or use Redis' unix socket as redisUrl. Without one, any program on this machine, a student's kernel included, can rewrite the hub's state`,
    );
  }
  return out;
}

/** Read the optional JSON config file named by --config or OERHUB_CONFIG. */
export function readConfigFile(file: string | undefined): Record<string, unknown> | undefined {
  if (!file) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  try {
    const data: unknown = JSON.parse(text);
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('not a JSON object');
    return data as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`config file ${file}: not valid JSON (${(err as Error).message})`]);
  }
}

/** One line per option: name, environment variable, default, description. */
export function describeOptions(): { key: string; env: string; def: string; description: string }[] {
  return Object.entries(configShape).map(([key, schema]) => {
    const parsed = (schema as { safeParse(v: unknown): { success: boolean; data?: unknown } }).safeParse(undefined);
    const def = parsed.success && parsed.data !== undefined ? JSON.stringify(parsed.data) : '(unset)';
    return { key, env: envName(key), def, description: (schema as { description?: string }).description ?? '' };
  });
}
