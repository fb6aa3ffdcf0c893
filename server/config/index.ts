import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { configSchema, configShape, type ConfigKey, type HubConfig } from './schema.js';
import { dockerProblems } from './docker-schema.js';

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
  if (parsed.success) problems.push(...ssoProblems(parsed.data));
  if (parsed.success) problems.push(...dockerProblems(parsed.data));
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
  for (const entry of c.trustedHeaderProxies) {
    const [addr, bits] = entry.split('/');
    const family = net.isIP(addr);
    if (!family || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32)))) {
      out.push(`trustedHeaderProxies (${envName('trustedHeaderProxies')}): ${entry} is not an IP address or CIDR range`);
    }
  }
  if (c.trustedHeader && c.trustedHeaderProxies.length === 0) {
    out.push(`trustedHeaderProxies (${envName('trustedHeaderProxies')}): trustedHeader needs the addresses of the proxies allowed to send it`);
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
