import type { Command } from 'commander';

/**
 * One `oerhub` subcommand. Each lives in its own file under server/cli/ and is listed once in
 * commands.ts: adding a subcommand (e.g. `oerhub token`) is that file and one line there.
 */
export interface CliCommand {
  /** Adds the subcommand (with its options and action) to the program. */
  register(program: Command, context: CliContext): void;
}

/** What every subcommand shares: where output goes, how the hub's configuration is read. */
export interface CliContext {
  /** Plain output (results, tables, the doctor's lines). */
  out(line: string): void;
  /** Messages for the operator (errors, hints); stderr. */
  err(line: string): void;
  /** The process environment; the only place the CLI reads it, as server/main.ts does for the hub. */
  readonly env: NodeJS.ProcessEnv;
  /** Standard input (passwords). */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** A failure the operator can fix: printed as `oerhub: MESSAGE` without a stack, exit code 1 (or `exitCode`). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
