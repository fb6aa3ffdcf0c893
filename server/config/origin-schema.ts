import { z } from 'zod';

// One DNS name: labels of letters, digits and hyphens, separated by dots. No port, no scheme.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const hostname = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .refine((s) => HOSTNAME.test(s), 'a host name such as users.example.edu (no scheme, port or path)');

/**
 * Where user servers are served from (issue 9): each from its own origin by default, so that
 * code in a notebook can never act as the hub or read another user's server. Merged into the
 * one config schema in schema.ts.
 */
export const originShape = {
  originMode: z
    .enum(['subdomain', 'shared-host', 'single'])
    .default('subdomain')
    .describe(
      'Where user servers are served. `subdomain` (default): each at NAME.<userContentDomain>, an origin of its own. ' +
        '`shared-host`: all at userContentHost, apart from the hub but not from each other (for operators without a wildcard certificate). ' +
        '`single`: on the hub\'s own origin, so a notebook can act as its user on the hub; logs a warning at every start.',
    ),
  userContentDomain: hostname
    .default('localhost')
    .describe(
      'Parent domain of the user servers in `subdomain` mode: NAME.<userContentDomain> needs wildcard DNS (and a wildcard certificate for https). ' +
        'Scheme and port are publicUrl\'s (without publicUrl: http and the hub\'s port, so the trial serves http://NAME.localhost:8000).',
    ),
  userContentHost: hostname
    .optional()
    .describe('The one host of every user server in `shared-host` mode, e.g. content.example.edu; it must not be the hub\'s host.'),
} satisfies Record<string, z.ZodTypeAny>;

interface OriginConfig {
  originMode: 'subdomain' | 'shared-host' | 'single';
  userContentDomain: string;
  userContentHost?: string;
  publicUrl?: string;
}

/** Cross-field checks of the origin options, each naming the key to fix. */
export function originProblems(config: OriginConfig): string[] {
  const problems: string[] = [];
  const hubHost = config.publicUrl ? new URL(config.publicUrl).hostname.toLowerCase() : undefined;
  if (config.originMode === 'shared-host') {
    if (!config.userContentHost) problems.push('userContentHost (OERHUB_USER_CONTENT_HOST): required when originMode is shared-host, e.g. content.example.edu');
    else if (config.userContentHost === hubHost) problems.push('userContentHost (OERHUB_USER_CONTENT_HOST): must differ from publicUrl\'s host, or user servers share the hub\'s origin');
  }
  if (config.originMode === 'subdomain' && hubHost && hubHost.endsWith(`.${config.userContentDomain}`) && config.userContentDomain !== 'localhost') {
    problems.push(`userContentDomain (OERHUB_USER_CONTENT_DOMAIN): publicUrl's host ${hubHost} lies inside it; choose a domain of its own for user servers, e.g. users.${hubHost}`);
  }
  return problems;
}
