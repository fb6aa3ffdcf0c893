import { loadConfig, readConfigFile, type HubConfig } from '../config/index.js';
import type { CliContext } from './command.js';

/** The global `--config FILE` option, as `oerhub` and the hub program take it. */
export interface GlobalOptions {
  config?: string;
}

/** The config file that applies: `--config`, else OERHUB_CONFIG, else none. */
export function configFileOf(options: GlobalOptions, context: CliContext): string | undefined {
  return options.config ?? context.env.OERHUB_CONFIG;
}

/**
 * The hub's own configuration, read exactly as the hub reads it (defaults < file < OERHUB_*
 * environment), so a command acts on the same dataDir, store and Redis as the hub. Throws
 * ConfigError naming every bad key.
 */
export function hubConfig(options: GlobalOptions, context: CliContext): HubConfig {
  return loadConfig({ file: readConfigFile(configFileOf(options, context)), env: context.env });
}
