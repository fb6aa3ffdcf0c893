import type { Command } from 'commander';
import pino from 'pino';
import { AccountRepo } from '../admin/index.js';
import { UserService } from '../auth/users.js';
import { HubError } from '../errors.js';
import { UserRepo } from '../store/repos.js';
import { TokenRepo, TokenService, type TokenOwner } from '../api/index.js';
import { cliAudit } from './audit.js';
import { CliError, type CliCommand } from './command.js';
import { hubConfig, type GlobalOptions } from './config.js';
import { openHubStore } from './hub-state.js';

interface TokenOptions {
  service?: string;
  scopes?: string;
  note?: string;
  expiresIn?: string;
}

/**
 * `oerhub token USER` / `oerhub token --service NAME`: an API token, printed once, for scripts
 * and services (jupyterhub-idle-culler, a Prometheus scraper) on a machine without a browser.
 * The same rules as /hub/token: never more than the owner's scopes, hashed in the store.
 */
export const tokenCommand: CliCommand = {
  register(program, context) {
    program
      .command('token [user]')
      .description('make an API token for an account, or with --service for a service of apiServices; printed once')
      .option('--service <name>', 'a service named in apiServices (e.g. idle-culler), instead of an account')
      .option('--scopes <scopes>', "comma-separated JupyterHub scopes (default: all of the owner's)")
      .option('--note <text>', 'what the token is for (shown on the tokens page)', 'made with oerhub token')
      .option('--expires-in <seconds>', 'seconds until it expires (default: never, unless apiTokenMaxAgeS is set)')
      .action(async (user: string | undefined, opts: TokenOptions) => {
        if (!user === !opts.service) throw new CliError('give an account name or --service NAME (one of them)', 2);
        const expiresInS = opts.expiresIn === undefined ? undefined : Number(opts.expiresIn);
        if (expiresInS !== undefined && !(Number.isInteger(expiresInS) && expiresInS > 0)) throw new CliError('--expires-in takes a whole number of seconds', 2);
        const config = hubConfig((program as Command).opts<GlobalOptions>(), context);
        const store = await openHubStore(config, 'token');
        const log = pino({ level: 'silent' });
        try {
          const users = new UserService(new UserRepo(store), config.adminUsers, log);
          const accounts = new AccountRepo(store);
          const tokens = new TokenService({
            repo: new TokenRepo(store),
            users,
            isDisabled: async (name) => (await accounts.disabled(name)) !== null,
            services: config.apiServices,
            log,
            cacheMs: 0,
            maxAgeS: config.apiTokenMaxAgeS,
          });
          const owner: TokenOwner = opts.service ? { kind: 'service', name: opts.service } : { kind: 'user', name: users.normalize(user!) };
          const scopes = opts.scopes?.split(',').map((s) => s.trim()).filter(Boolean);
          const { token, record } = await tokens.issue(owner, { ...(scopes?.length ? { scopes } : {}), note: opts.note ?? '', ...(expiresInS ? { expiresInS } : {}) });
          await cliAudit(store, config)('token.create', owner.kind === 'service' ? `service:${owner.name}` : owner.name, { token: record.id, scopes: record.scopes.join(' '), ...(record.expiresAt ? { expires: new Date(record.expiresAt).toISOString() } : {}) });
          context.err(`token ${record.id} for ${owner.kind} ${owner.name}; scopes: ${record.scopes.join(', ')}; shown once, keep it secret:`);
          context.out(token);
        } catch (err) {
          if (err instanceof HubError) throw new CliError(err.userMessage);
          throw err;
        } finally {
          await store.close();
        }
      });
  },
};
