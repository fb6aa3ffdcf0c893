import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { runCli } from '../../server/cli/main.js';
import type { CliContext } from '../../server/cli/command.js';

/** The `oerhub` program's own behaviour, in process: usage errors, help, the list of subcommands. */
function context(): CliContext & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), env: {}, stdin: Readable.from([]) };
}

describe('the oerhub command line', () => {
  it('lists its subcommands in --help and exits 0', async () => {
    const c = context();
    assert.equal(await runCli(['--help'], c), 0);
    const help = c.lines.join('\n');
    for (const sub of ['users', 'doctor', 'backup', 'restore', 'install']) assert.match(help, new RegExp(`^  ${sub}\\b`, 'm'), help);
  });

  it('an unknown subcommand or a missing argument is a usage error (exit 2) that says what is wrong', async () => {
    const c = context();
    assert.equal(await runCli(['frobnicate'], c), 2);
    assert.match(c.errors.join('\n'), /unknown command 'frobnicate'/);
    const d = context();
    assert.equal(await runCli(['backup'], d), 2);
    assert.match(d.errors.join('\n'), /missing required argument 'dir'/);
    const e = context();
    assert.equal(await runCli(['install'], e), 2);
    assert.match(e.errors.join('\n'), /required option '--host <name>' not specified/);
  });

  it('a bad configuration stops a command naming the key, as it stops the hub', async () => {
    const c = { ...context(), env: { OERHUB_STORE: 'mongodb' } };
    assert.equal(await runCli(['users', 'list'], c), 1);
    assert.match(c.errors.join('\n'), /store \(OERHUB_STORE\)/);
  });
});
