import { z } from 'zod';

/**
 * Options of the state store (issues 9 and 10). Merged into the one config schema in
 * schema.ts; every key has a description. The cross-field rules are storeProblems() in
 * index.ts.
 */
export const storeShape = {
  store: z
    .enum(['sqlite', 'redis', 'memory'])
    .default('sqlite')
    .describe(
      'Where hub state lives. `sqlite`: one file in dataDir (oerhub.sqlite), kept across restarts, for one hub process; `redis`: kept in Redis and shared by several hub processes (needs cookieSecret and a Redis password or socket); `memory`: lost on restart, for tests only.',
    ),
  redisUrl: z
    .string()
    .min(1)
    .default('redis://127.0.0.1:6379/0')
    .describe('Redis to use when store=redis: a redis:// or rediss:// URL (the password may be in it: redis://:PASSWORD@host:6379/0), or the path of Redis\' unix socket (e.g. /run/redis/redis.sock). Never logged with its password.'),
  redisPassword: z
    .string()
    .min(1)
    .optional()
    .describe('Password of the Redis server (its requirepass), if it is not in redisUrl. store=redis over TCP refuses to start without one: any program on the machine, a student\'s kernel included, could otherwise rewrite the hub\'s state.'),
  redisKeyPrefix: z.string().default('oerhub:').describe('Prefix of every Redis key, so several hubs can share one Redis.'),
} satisfies Record<string, z.ZodTypeAny>;

/** Whether ioredis would take this redisUrl as a unix socket path (it does for anything starting with one `/`). */
export function isRedisSocketPath(url: string): boolean {
  return url.startsWith('/') && !url.startsWith('//');
}

/** Whether a Redis URL carries a password, in its user-info part or as `?password=`. */
export function redisUrlHasPassword(url: string): boolean {
  if (isRedisSocketPath(url)) return new URLSearchParams(url.split('?')[1] ?? '').has('password');
  try {
    const parsed = new URL(url);
    return parsed.password !== '' || parsed.searchParams.has('password');
  } catch {
    return false;
  }
}
