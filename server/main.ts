import { parseArgs } from 'node:util';
import { describeOptions, loadConfig, readConfigFile } from './config/index.js';
import { ConfigError } from './errors.js';
import { createHub, StartupError } from './index.js';

function help(): string {
  const lines = ['Usage: oerhub [--config FILE]', '', 'Options (config file key / environment variable, default):', ''];
  for (const o of describeOptions()) lines.push(`  ${o.key}  (${o.env}, default ${o.def})`, `      ${o.description}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write(help() + '\n');
    return;
  }
  // The only place the process environment is read.
  const config = loadConfig({ file: readConfigFile(values.config ?? process.env.OERHUB_CONFIG), env: process.env });
  const hub = await createHub(config);
  const shown = config.publicUrl ?? hub.url;
  process.stdout.write(`\n  oerhub is running: ${shown}/hub/login\n`);
  if (hub.generatedAdminPassword) {
    process.stdout.write(`  First admin account: ${config.adminUsers[0]} / ${hub.generatedAdminPassword}\n  (shown once; set OERHUB_ADMIN_PASSWORD to choose it yourself)\n\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    hub.log.info({ signal }, 'stopping');
    hub.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StartupError) process.stderr.write(`oerhub: ${err.message}\n`);
  else process.stderr.write(`oerhub: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
