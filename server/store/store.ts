/**
 * The state store seam: a few atomic primitives over string keys and string values. Every
 * piece of hub state (users, sessions, servers, routes, locks, rate limits, the pool,
 * courses, projects) is kept through typed repositories (repos.ts) built on these, so a new
 * backend implements only this interface and passes test/contracts/store.contract.ts.
 *
 * Keys and values are arbitrary strings (`__proto__`, unicode, spaces included). All methods
 * reject with StoreUnavailable when the backend can't be reached; none hang for long.
 */
export interface Store {
  readonly kind: 'memory' | 'redis';

  /** The value, or null when missing or expired. */
  get(key: string): Promise<string | null>;
  /** Several values at once, null for each missing one, in the order asked. */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  /** Set a value; with ttlMs it expires (and any earlier expiry is replaced). Idempotent. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Set only if the key is missing. Returns true if this call set it (locks, replay guards). */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>;
  /** Atomically read and remove. Returns the value, or null if there was none; of two concurrent calls only one gets it. */
  take(key: string): Promise<string | null>;
  /** Remove the key only if it still holds `expected` (releasing a lock you own). Returns true if removed. */
  deleteIfEquals(key: string, expected: string): Promise<boolean>;
  /** Remove keys of any type; missing keys are fine. */
  delete(...keys: string[]): Promise<void>;
  /** Reset a key's expiry. Returns false if the key does not exist. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /** Add 1 and return the new count; the first increment starts a ttlMs window (rate limits). */
  increment(key: string, ttlMs: number): Promise<number>;

  /** Hash fields: set several at once. */
  hashSet(key: string, fields: Readonly<Record<string, string>>): Promise<void>;
  hashGet(key: string, field: string): Promise<string | null>;
  /** All fields, as a null-prototype object ({} when missing). */
  hashGetAll(key: string): Promise<Record<string, string>>;
  hashDelete(key: string, ...fields: string[]): Promise<void>;

  /** Set members (indexes such as "all users"). */
  setAdd(key: string, ...members: string[]): Promise<void>;
  setRemove(key: string, ...members: string[]): Promise<void>;
  setMembers(key: string): Promise<string[]>;

  /** FIFO queue operations (the warm pool, waiting visitors). */
  listPush(key: string, ...values: string[]): Promise<number>;
  /** Remove and return the first value, or null when empty. */
  listShift(key: string): Promise<string | null>;
  /** Remove every occurrence of value; returns how many. */
  listRemove(key: string, value: string): Promise<number>;
  listRange(key: string): Promise<string[]>;

  /** Deliver a message to every subscriber, in every hub process sharing the store. */
  publish(channel: string, message: string): Promise<void>;
  /** Receive messages on a channel until the returned function is called. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;

  /** Resolves when the backend answers; rejects with StoreUnavailable otherwise. */
  ping(): Promise<void>;
  /** Release connections and timers. Safe to call twice. */
  close(): Promise<void>;
}
