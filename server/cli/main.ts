#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../errors.js';
import { CliError, type CliContext } from './command.js';
import { commands } from './commands.js';

/** The `oerhub` program with every subcommand; `exitOverride` so errors come back as exceptions (tests, one exit path). */
export function buildProgram(context: CliContext): Command {
  const program = new Command('oerhub')
    .description('Operate an oerhub hub: accounts, checks, backups, installation.')
    .option('-c, --config <file>', 'the hub\'s JSON config file (default: $OERHUB_CONFIG); OERHUB_* variables apply as for the hub')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => context.out(s.replace(/\n$/, '')), writeErr: (s) => context.err(s.replace(/\n$/, '')) });
  for (const command of commands) command.register(program, context);
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** Runs one command line; resolves with the exit code (0 ok, 1 failure, 2 usage). */
export async function runCli(argv: readonly string[], context: CliContext): Promise<number> {
  const program = buildProgram(context);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2;
    if (err instanceof CliError) {
      context.err(`oerhub: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      context.err(`oerhub: ${err.message}`);
      return 1;
    }
    context.err(`oerhub: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  const context: CliContext = {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    env: process.env,
    stdin: process.stdin,
  };
  runCli(process.argv.slice(2), context).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`oerhub: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
