import { parseArgs } from 'node:util';
import { describeOptions, loadConfig, readConfigFile } from './config/index.js';
import { ConfigError } from './errors.js';
import { createHub, StartupError } from './index.js';

// After the grace period, closing the parts (store, spawner, leader lock) gets this long.
const CLOSE_LIMIT_S = 20;

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
    if (stopping) {
      // The operator insists (a second Ctrl-C): don't wait for anything.
      hub.log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    hub.log.info({ signal, graceS: config.shutdownGraceS, stopServers: config.stopServersOnExit }, 'stopping: no new requests; finishing those in flight and server starts');
    // Closing the parts after the grace period is quick; if something hangs, don't outlive the service manager's patience.
    setTimeout(() => {
      hub.log.error('the hub did not close in time; exiting');
      process.exit(1);
    }, (config.shutdownGraceS + CLOSE_LIMIT_S) * 1000).unref();
    hub.close({ graceMs: config.shutdownGraceS * 1000 }).then(
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
