/**
 * The state store seam: a few atomic primitives over string keys and string values. Every
 * piece of hub state (users, sessions, servers, routes, locks, rate limits, the pool,
 * courses, projects) is kept through typed repositories (repos.ts) built on these, so a new
 * backend implements only this interface and passes test/contracts/store.contract.ts.
 *
 * Keys and values are arbitrary strings (`__proto__`, unicode, spaces included). All methods
 * reject with StoreUnavailable when the backend can't be reached; none hang for long.
 */
/** Which backend a Store is: `sqlite` (durable, one process), `redis` (several processes), `memory` (tests). */
export type StoreKind = 'sqlite' | 'redis' | 'memory';

/**
 * A check of an atomic operation, read at the moment the writes happen. A key of another
 * type than the check expects never matches (no WRONGTYPE error from a check), and an
 * expired key counts as absent.
 */
export type AtomicCondition =
  /** The key holds exactly this string value. */
  | { readonly type: 'equals'; readonly key: string; readonly value: string }
  /** The key does not exist, whatever its type would be. */
  | { readonly type: 'absent'; readonly key: string }
  /** The hash field holds this value; with `value: null`, the field (or the whole hash) is missing. */
  | { readonly type: 'hashEquals'; readonly key: string; readonly field: string; readonly value: string | null }
  /** The list holds this value at least once (e.g. a name still waiting in the warm pool). */
  | { readonly type: 'listIncludes'; readonly key: string; readonly value: string };

/** A write of an atomic operation; each means what the Store method of the same name does. */
export type AtomicWrite =
  | { readonly type: 'set'; readonly key: string; readonly value: string; readonly ttlMs?: number }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'hashSet'; readonly key: string; readonly fields: Readonly<Record<string, string>> }
  | { readonly type: 'hashDelete'; readonly key: string; readonly fields: readonly string[] }
  | { readonly type: 'setAdd'; readonly key: string; readonly members: readonly string[] }
  | { readonly type: 'setRemove'; readonly key: string; readonly members: readonly string[] }
  | { readonly type: 'listPush'; readonly key: string; readonly values: readonly string[] }
  | { readonly type: 'listRemove'; readonly key: string; readonly value: string };

/** Writes that happen together, only if every condition holds. */
export interface AtomicOperation {
  /** All must hold for the writes to happen; none means the writes always happen (still all together). */
  readonly if?: readonly AtomicCondition[];
  /** Applied in order, all or none. */
  readonly then: readonly AtomicWrite[];
}

export interface Store {
  readonly kind: StoreKind;

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

  /**
   * Check the conditions and apply the writes as one step: no other call, in this process or
   * another hub process sharing the store, sees some of the writes without the rest, or
   * slips in between the checks and the writes. Use it wherever a record and its indexes (or
   * two lists) must agree, so that a failure half-way can't leave, say, a server nobody tracks.
   *
   * Returns true if the conditions held and every write was made, false if a condition failed
   * (then nothing was written). Of several concurrent callers whose conditions exclude each
   * other (e.g. `absent` on the same key), exactly one gets true.
   *
   * Throws StoreUnavailable when the backend can't be reached; then either all writes happened
   * or none did, and the caller may repeat the operation (make it safe to repeat with a
   * condition when that matters). Throws a plain Error (a bug, never an outage) when a write
   * meets a key of another type, counting the types earlier writes of the same call give;
   * again nothing is written.
   */
  atomic(operation: AtomicOperation): Promise<boolean>;

  /** Deliver a message to every subscriber, in every hub process sharing the store. */
  publish(channel: string, message: string): Promise<void>;
  /** Receive messages on a channel until the returned function is called. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;

  /** Resolves when the backend answers; rejects with StoreUnavailable otherwise. */
  ping(): Promise<void>;
  /** Release connections and timers. Safe to call twice. */
  close(): Promise<void>;
}
