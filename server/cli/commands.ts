import type { CliCommand } from './command.js';
import { backupCommand } from './backup.js';
import { doctorCommand } from './doctor.js';
import { installCommand } from './install.js';
import { tokenCommand } from './token.js';
import { usersCommand } from './users.js';

/**
 * Every `oerhub` subcommand, in the order `oerhub --help` lists them. A new one is a file
 * exporting a CliCommand and one line here.
 */
export const commands: readonly CliCommand[] = [
  usersCommand,
  tokenCommand,
  doctorCommand,
  backupCommand,
  installCommand,
];
