import { z } from 'zod';

/**
 * How the local-process spawner keeps servers apart from each other and from the hub
 * (issue 9). Merged into the one config schema in schema.ts; every key has a description.
 */
export const isolationShape = {
  localIsolation: z
    .enum(['auto', 'unix-users', 'none'])
    .default('auto')
    .describe(
      'How the local spawner isolates servers. `unix-users`: each server runs as its own unprivileged Unix account (created on demand, named oh-NAME) with a 0700 home; needs the hub to run as root. `none`: every server runs as the hub\'s own user and can read the hub\'s secrets and other users\' files; a hub reachable from outside (publicUrl with a non-loopback host, or bindHost not loopback) then refuses "Try it" at start and starts servers for admins only. `auto`: `unix-users` when the hub runs as root, else `none`.',
    ),
} satisfies Record<string, z.ZodTypeAny>;
