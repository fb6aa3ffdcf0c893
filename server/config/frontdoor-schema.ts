import { z } from 'zod';

/**
 * Options of the front door (issue 9): the one listener whose identity and X-Forwarded-*
 * headers the hub believes. Merged into the one config schema in schema.ts; every key has a
 * description. The TCP listener (port, bindHost) stays for direct use and believes none of
 * those headers: user code runs on this machine and can reach 127.0.0.1 too.
 */
export const frontDoorShape = {
  frontDoorSocket: z
    .string()
    .min(1)
    .regex(/^\//, 'an absolute path such as /run/oerhub/hub.sock')
    .optional()
    .describe(
      'Unix socket the hub also listens on, for nginx (proxy_pass to unix:PATH). Only requests through it may carry X-Forwarded-* and the trustedHeader sign-in header; the TCP port believes neither. The socket is made 0660, owned by frontDoorSocketGroup.',
    ),
  frontDoorSocketGroup: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'a group name or number, such as www-data')
    .optional()
    .describe("Group that owns frontDoorSocket: nginx's group (www-data on Debian), so nginx can connect and nobody else but the hub's own user. Default: the hub's group."),
} satisfies Record<string, z.ZodTypeAny>;
