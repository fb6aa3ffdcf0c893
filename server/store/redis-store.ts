import { Redis } from 'ioredis';
import { StoreUnavailable } from '../errors.js';
import type { Logger } from '../log.js';
import { ttlOf } from './atomic.js';
import type { AtomicOperation, Store } from './store.js';

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL, or a unix socket path. Never logged: it may hold a password. */
  url: string;
  /** Redis' requirepass, when it is not in the URL. */
  password?: string;
  /** Put before every key and channel, so several hubs can share one Redis. */
  keyPrefix: string;
  log: Logger;
  /** How long after a connection is created or lost calls still wait for it before failing with StoreUnavailable. */
  readyWaitMs?: number;
  /** How long a sent command may take before failing with StoreUnavailable. */
  commandTimeoutMs?: number;
}

/** Read and delete in one step; a script rather than GETDEL so Redis older than 6.2 works too. */
const TAKE = `local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v`;

const DELETE_IF_EQUALS = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/**
 * The window starts with the first increment. A counter that somehow has no expiry (PTTL -1,
 * e.g. written by set()) gets one too, so a rate limit can never lock someone out forever.
 */
const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n`;

/**
 * Reply errors that mean "Redis can't serve you right now" rather than "your command is wrong".
 * Everything else ioredis rejects with (closed connection, timeout, retries exhausted) is also
 * unavailability.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

/**
 * Store.atomic in one script, which Redis runs without interleaving any other command. A
 * script is not rolled back when a command in it fails, so every write's key type is checked
 * (following the types earlier writes give, as atomic.ts does for the other stores) before the
 * first write. Values travel as plain ARGV strings, never through cjson, so any string
 * round-trips byte for byte.
 *
 * ARGV: number of conditions, number of writes, then for each: name, index into KEYS, number
 * of arguments, the arguments. A hashEquals with one argument (the field) means "field absent";
 * a set with two arguments carries a PX.
 */
const ATOMIC = `local pos = 3
local function entry()
  local op, k, n = ARGV[pos], KEYS[tonumber(ARGV[pos + 1])], tonumber(ARGV[pos + 2])
  local args = {}
  for i = 1, n do args[i] = ARGV[pos + 2 + i] end
  pos = pos + 3 + n
  return op, k, args
end
local function typeOf(k) return redis.call('TYPE', k)['ok'] end
for _ = 1, tonumber(ARGV[1]) do
  local op, k, a = entry()
  local t = typeOf(k)
  if op == 'absent' then
    if t ~= 'none' then return 0 end
  elseif op == 'equals' then
    if t ~= 'string' or redis.call('GET', k) ~= a[1] then return 0 end
  elseif op == 'hashEquals' then
    if t == 'none' then
      if #a == 2 then return 0 end
    elseif t ~= 'hash' then
      return 0
    else
      local v = redis.call('HGET', k, a[1])
      if #a == 1 then
        if v then return 0 end
      elseif v ~= a[2] then
        return 0
      end
    end
  elseif op == 'listIncludes' then
    if t ~= 'list' then return 0 end
    local found = false
    for _, v in ipairs(redis.call('LRANGE', k, 0, -1)) do
      if v == a[1] then found = true break end
    end
    if not found then return 0 end
  else
    return redis.error_reply('ERR unknown atomic condition ' .. tostring(op))
  end
end
local needs = { set = false, delete = false, hashSet = 'hash', hashDelete = 'hash', setAdd = 'set', setRemove = 'set', listPush = 'list', listRemove = 'list' }
local writes, planned = {}, {}
for i = 1, tonumber(ARGV[2]) do
  local op, k, a = entry()
  local need = needs[op]
  if need == nil then return redis.error_reply('ERR unknown atomic write ' .. tostring(op)) end
  local cur = planned[k] or typeOf(k)
  if need and cur ~= 'none' and cur ~= need then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  if op == 'set' then cur = 'string'
  elseif op == 'delete' then cur = 'none'
  elseif (op == 'hashSet' or op == 'setAdd' or op == 'listPush') and #a > 0 then cur = need end
  planned[k] = cur
  writes[i] = { op, k, a }
end
for _, w in ipairs(writes) do
  local op, k, a = w[1], w[2], w[3]
  if op == 'set' then
    if #a == 2 then redis.call('SET', k, a[1], 'PX', a[2]) else redis.call('SET', k, a[1]) end
  elseif op == 'delete' then redis.call('DEL', k)
  elseif op == 'listRemove' then redis.call('LREM', k, 0, a[1])
  elseif #a > 0 then
    local command = { hashSet = 'HSET', hashDelete = 'HDEL', setAdd = 'SADD', setRemove = 'SREM', listPush = 'RPUSH' }
    redis.call(command[op], k, unpack(a))
  end
end
return 1`;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Wrong-type and similar reply errors are bugs and pass through; the rest become StoreUnavailable. */
function toStoreError(err: unknown): Error {
  if (err instanceof StoreUnavailable) return err;
  if (err instanceof Error && err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message)) return err;
  return new StoreUnavailable(messageOf(err));
}

function asNumber(reply: unknown): number {
  if (typeof reply !== 'number') throw new Error(`unexpected Redis reply ${String(reply)}`);
  return reply;
}

function asStringOrNull(reply: unknown): string | null {
  if (reply === null || typeof reply === 'string') return reply;
  throw new Error(`unexpected Redis reply ${String(reply)}`);
}

/**
 * One ioredis client plus what the store needs on top: waiting briefly for readiness instead of
 * ioredis' unbounded offline queue, and one log line per loss and per recovery.
 */
class Connection {
  private waiters: { promise: Promise<boolean>; settle: (ready: boolean) => void } | undefined;
  /** undefined until the first connection attempt ends one way or the other. */
  private up: boolean | undefined;
  /** When the connection was last lost (or created); calls wait for it only shortly after that. */
  private downSince = Date.now();
  private lastError = '';
  private closed = false;

  constructor(
    readonly client: Redis,
    private readonly role: 'commands' | 'subscriber',
    private readonly log: Logger,
    private readonly readyWaitMs: number,
  ) {
    // Without an 'error' listener ioredis prints every failed reconnect to the console.
    client.on('error', (err: unknown) => {
      this.lastError = messageOf(err);
    });
    client.on('close', () => {
      if (this.closed || this.up === false) return;
      const msg = this.up ? 'lost connection to Redis; reconnecting' : 'cannot reach Redis; retrying';
      if (this.up) this.downSince = Date.now();
      this.up = false;
      this.log.warn({ conn: this.role, reason: this.lastError || undefined }, msg);
    });
    client.on('ready', () => {
      if (this.up === false) this.log.warn({ conn: this.role }, 'reconnected to Redis');
      this.up = true;
      this.lastError = '';
      this.waiters?.settle(true);
      this.waiters = undefined;
    });
  }

  /**
   * Resolves once the client can send. ioredis' offline queue is off, because a queued write
   * could still run minutes after its caller was told it failed. Instead calls wait for the
   * connection during the first readyWaitMs after it was lost or created, which hides the
   * initial connect and brief blips (a restart, a dropped idle connection); later in an outage
   * they fail at once, so requests don't each stall for a second and pile up.
   */
  async ready(): Promise<void> {
    if (this.closed) throw new StoreUnavailable('store is closed');
    if (this.client.status === 'ready') return;
    const waitMs = this.downSince + this.readyWaitMs - Date.now();
    if (waitMs <= 0) throw this.unavailable();
    if (!this.waiters) {
      let settle: (ready: boolean) => void = () => undefined;
      const promise = new Promise<boolean>((resolve) => {
        settle = resolve;
      });
      this.waiters = { promise, settle };
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      if (!(await Promise.race([this.waiters.promise, timeout]))) throw this.unavailable();
    } finally {
      clearTimeout(timer);
    }
  }

  private unavailable(): StoreUnavailable {
    if (this.closed) return new StoreUnavailable('store is closed');
    return new StoreUnavailable(`not connected to Redis${this.lastError ? `: ${this.lastError}` : ''}`);
  }

  /** Run one command, mapping connection trouble to StoreUnavailable. */
  async run<T>(command: (client: Redis) => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await command(this.client);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiters?.settle(false);
    this.waiters = undefined;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // The connection died while quitting; disconnect() below still stops the reconnect timer.
      }
    }
    this.client.disconnect();
  }
}

/**
 * The URL with its password (user-info or `?password=`) replaced by `***`, for messages and logs.
 * Works on any text that contains such a URL, e.g. an error message that quotes it.
 */
export function redactRedisUrl(text: string): string {
  return text.replace(/(rediss?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@').replace(/([?&]password=)[^&\s]*/gi, '$1***');
}

/**
 * State in Redis: survives hub restarts and is shared by hub processes. Every call fails with
 * StoreUnavailable within readyWaitMs + commandTimeoutMs at most while Redis is down, and works
 * again by itself once Redis is back (ioredis keeps reconnecting, capped at one try a second).
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly main: Connection;
  /** Created on the first subscribe: a connection in subscriber mode can run nothing else. */
  private sub: Connection | undefined;
  /** Prefixed channel -> handlers. Ours, not ioredis', decides what is resubscribed after a reconnect. */
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private readonly readyWaitMs: number;
  private closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix;
    this.log = options.log;
    this.readyWaitMs = options.readyWaitMs ?? 1000;
    const client = new Redis(options.url, {
      ...(options.password === undefined ? {} : { password: options.password }),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      // A command cut off by a dropped connection was already reported as failed; don't replay it later.
      autoResendUnfulfilledCommands: false,
      // ioredis keeps channels as keys of a plain object, where a channel named `__proto__` is lost;
      // the store resubscribes from its own Map instead (see subscriber()).
      autoResubscribe: false,
      retryStrategy: (times: number) => Math.min(100 * 2 ** (times - 1), 1000),
    });
    this.main = new Connection(client, 'commands', this.log, this.readyWaitMs);
  }

  async get(key: string): Promise<string | null> {
    return this.main.run((c) => c.get(this.k(key)));
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return this.main.run(async () => []);
    return this.main.run((c) => c.mget(keys.map((key) => this.k(key))));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) await this.main.run((c) => c.set(this.k(key), value));
    else {
      const px = ttlOf(ttlMs);
      await this.main.run((c) => c.set(this.k(key), value, 'PX', px));
    }
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    const reply =
      ttlMs === undefined
        ? await this.main.run((c) => c.set(this.k(key), value, 'NX'))
        : await this.main.run((c) => c.set(this.k(key), value, 'PX', ttlOf(ttlMs), 'NX'));
    return reply === 'OK';
  }

  async take(key: string): Promise<string | null> {
    return asStringOrNull(await this.main.run((c) => c.eval(TAKE, 1, this.k(key))));
  }

  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    return asNumber(await this.main.run((c) => c.eval(DELETE_IF_EQUALS, 1, this.k(key), expected))) === 1;
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length === 0) return this.main.run(async () => undefined);
    await this.main.run((c) => c.del(...keys.map((key) => this.k(key))));
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const px = ttlOf(ttlMs);
    return (await this.main.run((c) => c.pexpire(this.k(key), px))) === 1;
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    const px = ttlOf(ttlMs);
    return asNumber(await this.main.run((c) => c.eval(INCREMENT, 1, this.k(key), px)));
  }

  async hashSet(key: string, fields: Readonly<Record<string, string>>): Promise<void> {
    // Flattened by hand: Object.entries sees an own `__proto__` field, whatever ioredis would do with the object.
    const args = Object.entries(fields).flat();
    if (args.length === 0) return this.main.run(async () => undefined);
    await this.main.run((c) => c.hset(this.k(key), ...args));
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.main.run((c) => c.hget(this.k(key), field));
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    const reply = await this.main.run((c) => c.hgetall(this.k(key)));
    // ioredis returns a plain object; copy into a null-prototype one, as the interface promises.
    const result = Object.create(null) as Record<string, string>;
    for (const [field, value] of Object.entries(reply)) result[field] = value;
    return result;
  }

  async hashDelete(key: string, ...fields: string[]): Promise<void> {
    if (fields.length === 0) return this.main.run(async () => undefined);
    await this.main.run((c) => c.hdel(this.k(key), ...fields));
  }

  async setAdd(key: string, ...members: string[]): Promise<void> {
    if (members.length === 0) return this.main.run(async () => undefined);
    await this.main.run((c) => c.sadd(this.k(key), ...members));
  }

  async setRemove(key: string, ...members: string[]): Promise<void> {
    if (members.length === 0) return this.main.run(async () => undefined);
    await this.main.run((c) => c.srem(this.k(key), ...members));
  }

  async setMembers(key: string): Promise<string[]> {
    return this.main.run((c) => c.smembers(this.k(key)));
  }

  async listPush(key: string, ...values: string[]): Promise<number> {
    if (values.length === 0) return this.main.run((c) => c.llen(this.k(key)));
    return this.main.run((c) => c.rpush(this.k(key), ...values));
  }

  async listShift(key: string): Promise<string | null> {
    return this.main.run((c) => c.lpop(this.k(key)));
  }

  async listRemove(key: string, value: string): Promise<number> {
    return this.main.run((c) => c.lrem(this.k(key), 0, value));
  }

  async listRange(key: string): Promise<string[]> {
    return this.main.run((c) => c.lrange(this.k(key), 0, -1));
  }

  async atomic(operation: AtomicOperation): Promise<boolean> {
    const keys: string[] = [];
    const index = new Map<string, number>();
    const args: string[] = [];
    const add = (name: string, key: string, values: readonly string[]): void => {
      let i = index.get(key);
      if (i === undefined) {
        keys.push(this.k(key));
        i = keys.length;
        index.set(key, i);
      }
      args.push(name, String(i), String(values.length), ...values);
    };
    const conditions = operation.if ?? [];
    for (const c of conditions) {
      if (c.type === 'absent') add(c.type, c.key, []);
      else if (c.type === 'equals' || c.type === 'listIncludes') add(c.type, c.key, [c.value]);
      else if (c.type === 'hashEquals') add(c.type, c.key, c.value === null ? [c.field] : [c.field, c.value]);
      else throw new Error(`unknown atomic condition ${String((c as { type: unknown }).type)}`);
    }
    for (const w of operation.then) {
      switch (w.type) {
        case 'set':
          add(w.type, w.key, w.ttlMs === undefined ? [w.value] : [w.value, String(ttlOf(w.ttlMs))]);
          break;
        case 'delete':
          add(w.type, w.key, []);
          break;
        case 'hashSet':
          // Flattened by hand, as in hashSet(): an own `__proto__` field must go too.
          add(w.type, w.key, Object.entries(w.fields).flat());
          break;
        case 'hashDelete':
          add(w.type, w.key, w.fields);
          break;
        case 'setAdd':
        case 'setRemove':
          add(w.type, w.key, w.members);
          break;
        case 'listPush':
          add(w.type, w.key, w.values);
          break;
        case 'listRemove':
          add(w.type, w.key, [w.value]);
          break;
        default:
          throw new Error(`unknown atomic write ${String((w as { type: unknown }).type)}`);
      }
    }
    const reply = await this.main.run((c) => c.eval(ATOMIC, keys.length, ...keys, String(conditions.length), String(operation.then.length), ...args));
    return asNumber(reply) === 1;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.main.run((c) => c.publish(this.k(channel), message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    const sub = this.subscriber();
    const name = this.k(channel);
    // A wrapper per call, so subscribing the same function twice gives two independent subscriptions.
    const handler = (message: string): void => onMessage(message);
    let handlers = this.handlers.get(name);
    if (!handlers) {
      handlers = new Set();
      this.handlers.set(name, handlers);
    }
    handlers.add(handler);
    const remove = (): boolean => {
      const current = this.handlers.get(name);
      if (!current?.delete(handler) || current.size > 0) return false;
      this.handlers.delete(name);
      return true;
    };
    try {
      // Sent even when the channel already has handlers: cheap, and this caller then knows it is live.
      await sub.run((c) => c.subscribe(name));
    } catch (err) {
      remove();
      throw err;
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      if (!remove()) return;
      try {
        await sub.run((c) => c.unsubscribe(name));
      } catch (err) {
        // Delivery has already stopped (no handler left); a channel left subscribed on a dead
        // connection is dropped by Redis anyway, so this is not worth failing the caller.
        this.log.debug({ err: messageOf(err) }, 'unsubscribe not confirmed by Redis');
      }
    };
  }

  async ping(): Promise<void> {
    await this.main.run((c) => c.ping());
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.handlers.clear();
      await Promise.all([this.main.close(), this.sub?.close()]);
    })();
    return this.closing;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  private subscriber(): Connection {
    if (this.closing) throw new StoreUnavailable('store is closed');
    if (this.sub) return this.sub;
    const client = this.main.client.duplicate();
    const sub = new Connection(client, 'subscriber', this.log, this.readyWaitMs);
    client.on('message', (channel: string, message: string) => {
      for (const handler of [...(this.handlers.get(channel) ?? [])]) {
        try {
          handler(message);
        } catch (err) {
          this.log.error({ err, channel: channel.slice(this.prefix.length) }, 'a store subscriber threw');
        }
      }
    });
    // A new connection starts with no subscriptions; restore ours. Harmless on the first connect.
    client.on('ready', () => {
      const channels = [...this.handlers.keys()];
      if (channels.length === 0) return;
      client.subscribe(...channels).catch((err: unknown) => {
        // The next 'ready' tries again; until then these channels miss messages, as pub/sub does anyway.
        this.log.warn({ conn: 'subscriber', reason: messageOf(err) }, 'could not resubscribe after reconnect');
      });
    });
    this.sub = sub;
    return sub;
  }
}
