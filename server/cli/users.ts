import type { Command } from 'commander';
import pino from 'pino';
import { IdentityService } from '../auth/identities.js';
import { generatePassword, hashPassword } from '../auth/passwords.js';
import { UserService } from '../auth/users.js';
import { HubError } from '../errors.js';
import { UserRepo, type Role } from '../store/repos.js';
import { cliAudit, type CliAudit } from './audit.js';
import { CliError, type CliCommand, type CliContext } from './command.js';
import { hubConfig, type GlobalOptions } from './config.js';
import { openHubStore } from './hub-state.js';

/** Roles a command may grant ("anonymous" belongs to "Try it" visitors only). */
const GRANTABLE: readonly Role[] = ['admin', 'instructor', 'student'];
const MIN_PASSWORD = 8;

function parseRoles(text: string): Role[] {
  const roles = text
    .split(',')
    .map((r) => r.trim().toLowerCase())
    .filter(Boolean);
  for (const r of roles) if (!GRANTABLE.includes(r as Role)) throw new CliError(`unknown role "${r}": choose from ${GRANTABLE.join(', ')}`);
  return roles as Role[];
}

/** The first line of standard input: a password piped in (`echo … | oerhub users create`) never shows in `ps` or the shell history. */
async function readPassword(context: CliContext): Promise<string> {
  if (context.stdin.isTTY) context.err('Password (input is shown; end with Enter):');
  let text = '';
  for await (const chunk of context.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  const password = text.split(/\r?\n/)[0];
  if (password.length < MIN_PASSWORD) throw new CliError(`the password needs at least ${MIN_PASSWORD} characters (read from standard input)`);
  return password;
}

async function withUsers<T>(program: Command, context: CliContext, doing: string, fn: (users: UserService, identities: IdentityService, repo: UserRepo, audit: CliAudit) => Promise<T>): Promise<T> {
  const config = hubConfig(program.opts<GlobalOptions>(), context);
  const store = await openHubStore(config, doing);
  const log = pino({ level: 'silent' });
  try {
    const repo = new UserRepo(store);
    const users = new UserService(repo, config.adminUsers, log);
    return await fn(users, new IdentityService(store, users, log), repo, cliAudit(store, config));
  } catch (err) {
    // Typed hub errors (a taken name, a bad name) carry a message meant for people.
    if (err instanceof HubError) throw new CliError(err.userMessage);
    throw err;
  } finally {
    await store.close();
  }
}

/** `oerhub users list|create|modify`: local accounts and roles, in the hub's own store. */
export const usersCommand: CliCommand = {
  register(program, context) {
    const users = program.command('users').description('list, create and modify accounts (in the store the hub uses)');

    users
      .command('list')
      .description('every account (not "Try it" visitors): name, roles, how it signs in')
      .option('--json', 'one JSON array instead of a table')
      .action(async (opts: { json?: boolean }) => {
        await withUsers(program, context, 'users list', async (service) => {
          const rows = [];
          for (const name of (await service.list()).sort()) {
            const u = await service.get(name);
            if (!u || u.source === 'anonymous') continue;
            rows.push({ name: u.name, roles: u.roles, source: u.source, created: new Date(u.createdAt).toISOString() });
          }
          if (opts.json) return context.out(JSON.stringify(rows));
          context.out(['NAME', 'ROLES', 'SIGN-IN', 'CREATED'].join('\t'));
          for (const r of rows) context.out([r.name, r.roles.join(','), r.source, r.created].join('\t'));
        });
      });

    users
      .command('create <name>')
      .description('create a local (password) account')
      .option('--roles <roles>', `comma-separated roles: ${GRANTABLE.join(', ')}`, 'student')
      .option('--password-stdin', 'read the password from the first line of standard input (else one is generated and printed once)')
      .action(async (rawName: string, opts: { roles: string; passwordStdin?: boolean }) => {
        const roles = parseRoles(opts.roles);
        const password = opts.passwordStdin ? await readPassword(context) : generatePassword();
        await withUsers(program, context, 'users create', async (service, identities, _repo, audit) => {
          const user = await service.createLocal(rawName, password, roles);
          // The hub-granted roles, kept apart from any an IdP gives later.
          await identities.grant(user.name, roles);
          const after = await service.get(user.name);
          await audit('user.create', user.name, { roles: (after ?? user).roles.join(' '), source: 'local' });
          context.out(`created ${user.name} (roles: ${(after ?? user).roles.join(', ')})`);
          if (!opts.passwordStdin) context.out(`password: ${password}  (shown once)`);
        });
      });

    users
      .command('modify <name>')
      .description("change an account's hub-granted roles or its password")
      .option('--roles <roles>', 'set the roles the hub grants (replacing them)')
      .option('--add-role <role>', 'grant one more role')
      .option('--remove-role <role>', 'take one role away')
      .option('--password-stdin', 'set a new password from the first line of standard input')
      .option('--new-password', 'generate a new password and print it once')
      .action(async (rawName: string, opts: { roles?: string; addRole?: string; removeRole?: string; passwordStdin?: boolean; newPassword?: boolean }) => {
        if (!opts.roles && !opts.addRole && !opts.removeRole && !opts.passwordStdin && !opts.newPassword) throw new CliError('nothing to change: give --roles, --add-role, --remove-role, --password-stdin or --new-password');
        const password = opts.passwordStdin ? await readPassword(context) : opts.newPassword ? generatePassword() : undefined;
        await withUsers(program, context, 'users modify', async (service, identities, repo, audit) => {
          const name = service.normalize(rawName);
          const user = await service.get(name);
          if (!user || user.source === 'anonymous') throw new CliError(`there is no account named ${name} (see \`oerhub users list\`)`);
          if (opts.roles || opts.addRole || opts.removeRole) {
            const before = await identities.granted(name);
            let granted = opts.roles ? parseRoles(opts.roles) : before;
            if (opts.addRole) granted = [...new Set([...granted, ...parseRoles(opts.addRole)])];
            if (opts.removeRole) {
              const gone = parseRoles(opts.removeRole);
              granted = granted.filter((r) => !gone.includes(r));
            }
            const updated = await identities.grant(name, granted);
            await audit('user.roles', name, { before: before.join(' '), after: granted.join(' '), effective: updated.roles.join(' ') });
            context.out(`${name}: roles now ${updated.roles.join(', ') || '(none)'}`);
          }
          if (password !== undefined) {
            if (user.source !== 'local') throw new CliError(`${name} signs in through ${user.source}, not with a password`);
            const current = (await service.get(name)) ?? user;
            await repo.put({ ...current, passwordHash: await hashPassword(password) });
            await audit('user.password', name, { how: opts.newPassword ? 'generated' : 'stdin' });
            context.out(`${name}: password changed${opts.newPassword ? `: ${password}  (shown once)` : ''}`);
          }
        });
      });
  },
};
