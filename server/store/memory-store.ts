import { StoreUnavailable } from '../errors.js';
import type { Logger } from '../log.js';
import { WRONG_TYPE, checkAtomicWrites, ttlOf } from './atomic.js';
import { LocalBus } from './local-bus.js';
import type { AtomicCondition, AtomicOperation, AtomicWrite, Store } from './store.js';

type Value =
  | { readonly type: 'string'; value: string }
  | { readonly type: 'hash'; readonly value: Map<string, string> }
  | { readonly type: 'set'; readonly value: Set<string> }
  | { readonly type: 'list'; readonly value: string[] };

interface Containers {
  hash: Map<string, string>;
  set: Set<string>;
  list: string[];
}

interface Entry {
  data: Value;
  /** Epoch ms after which the entry is gone; undefined means it never expires. */
  expiresAt?: number;
}

export interface MemoryStoreOptions {
  /** Where a subscriber that throws is reported; without it, a process warning. */
  log?: Logger;
  /** How often expired entries are dropped even if nobody reads them (reads check expiry anyway). */
  sweepIntervalMs?: number;
}

/**
 * State in this process only: lost on restart and not shared between hub processes. For
 * unit tests (the hub warns at start when it is chosen). Behaves like RedisStore, including Redis'
 * habit of dropping a hash, set or list once it becomes empty.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly bus: LocalBus;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.bus = new LocalBus(options.log);
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 30_000);
    this.sweepTimer.unref();
  }

  async get(key: string): Promise<string | null> {
    return this.readString(key);
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    this.checkOpen();
    return keys.map((key) => this.readString(key));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.checkOpen();
    this.entries.set(key, { data: { type: 'string', value }, expiresAt: this.expiryOf(ttlMs) });
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    this.checkOpen();
    if (this.live(key)) return false;
    this.entries.set(key, { data: { type: 'string', value }, expiresAt: this.expiryOf(ttlMs) });
    return true;
  }

  async take(key: string): Promise<string | null> {
    const value = this.readString(key);
    this.entries.delete(key);
    return value;
  }

  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    if (this.readString(key) !== expected) return false;
    this.entries.delete(key);
    return true;
  }

  async delete(...keys: string[]): Promise<void> {
    this.checkOpen();
    for (const key of keys) this.entries.delete(key);
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    this.checkOpen();
    const entry = this.live(key);
    if (!entry) return false;
    entry.expiresAt = this.expiryOf(ttlMs);
    return true;
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    const current = this.readString(key);
    const entry = this.live(key);
    let count = 1;
    if (current !== null) {
      if (!/^-?\d+$/.test(current)) throw new Error('ERR value is not an integer or out of range');
      count = Number(current) + 1;
    }
    // A counter without a window (e.g. written by set()) would never reset; give it one, as RedisStore does.
    const expiresAt = entry?.expiresAt ?? this.expiryOf(ttlMs);
    this.entries.set(key, { data: { type: 'string', value: String(count) }, expiresAt });
    return count;
  }

  async hashSet(key: string, fields: Readonly<Record<string, string>>): Promise<void> {
    this.hashSetNow(key, fields);
  }

  private hashSetNow(key: string, fields: Readonly<Record<string, string>>): void {
    const pairs = Object.entries(fields);
    const existing = this.read(key, 'hash');
    if (pairs.length === 0) return;
    const hash = existing ?? this.create(key, { type: 'hash', value: new Map<string, string>() });
    for (const [field, value] of pairs) hash.set(field, value);
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.read(key, 'hash')?.get(field) ?? null;
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    // Null prototype: a field named `__proto__` or `constructor` is then just a field.
    const result = Object.create(null) as Record<string, string>;
    for (const [field, value] of this.read(key, 'hash') ?? []) result[field] = value;
    return result;
  }

  async hashDelete(key: string, ...fields: string[]): Promise<void> {
    this.hashDeleteNow(key, fields);
  }

  private hashDeleteNow(key: string, fields: readonly string[]): void {
    const hash = this.read(key, 'hash');
    if (!hash) return;
    for (const field of fields) hash.delete(field);
    if (hash.size === 0) this.entries.delete(key);
  }

  async setAdd(key: string, ...members: string[]): Promise<void> {
    this.setAddNow(key, members);
  }

  private setAddNow(key: string, members: readonly string[]): void {
    const existing = this.read(key, 'set');
    if (members.length === 0) return;
    const set = existing ?? this.create(key, { type: 'set', value: new Set<string>() });
    for (const member of members) set.add(member);
  }

  async setRemove(key: string, ...members: string[]): Promise<void> {
    this.setRemoveNow(key, members);
  }

  private setRemoveNow(key: string, members: readonly string[]): void {
    const set = this.read(key, 'set');
    if (!set) return;
    for (const member of members) set.delete(member);
    if (set.size === 0) this.entries.delete(key);
  }

  async setMembers(key: string): Promise<string[]> {
    return [...(this.read(key, 'set') ?? [])];
  }

  async listPush(key: string, ...values: string[]): Promise<number> {
    return this.listPushNow(key, values);
  }

  private listPushNow(key: string, values: readonly string[]): number {
    const existing = this.read(key, 'list');
    if (values.length === 0) return existing?.length ?? 0;
    const list = existing ?? this.create(key, { type: 'list', value: [] });
    list.push(...values);
    return list.length;
  }

  async listShift(key: string): Promise<string | null> {
    const list = this.read(key, 'list');
    if (!list) return null;
    const first = list.shift() ?? null;
    if (list.length === 0) this.entries.delete(key);
    return first;
  }

  async listRemove(key: string, value: string): Promise<number> {
    return this.listRemoveNow(key, value);
  }

  private listRemoveNow(key: string, value: string): number {
    const list = this.read(key, 'list');
    if (!list) return 0;
    const kept = list.filter((v) => v !== value);
    const removed = list.length - kept.length;
    list.splice(0, list.length, ...kept);
    if (list.length === 0) this.entries.delete(key);
    return removed;
  }

  async listRange(key: string): Promise<string[]> {
    return [...(this.read(key, 'list') ?? [])];
  }

  async atomic(operation: AtomicOperation): Promise<boolean> {
    this.checkOpen();
    // Everything below runs without an await, so no other call can come in between.
    for (const condition of operation.if ?? []) if (!this.holds(condition)) return false;
    checkAtomicWrites(operation, (key) => this.live(key)?.data.type ?? 'none');
    for (const write of operation.then) this.apply(write);
    return true;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.checkOpen();
    this.bus.publish(channel, message);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    this.checkOpen();
    return this.bus.subscribe(channel, onMessage);
  }

  async ping(): Promise<void> {
    this.checkOpen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.bus.close();
    this.entries.clear();
  }

  private holds(condition: AtomicCondition): boolean {
    const data = this.live(condition.key)?.data;
    switch (condition.type) {
      case 'absent':
        return data === undefined;
      case 'equals':
        return data?.type === 'string' && data.value === condition.value;
      case 'hashEquals':
        if (data === undefined) return condition.value === null;
        return data.type === 'hash' && (data.value.get(condition.field) ?? null) === condition.value;
      case 'listIncludes':
        return data?.type === 'list' && data.value.includes(condition.value);
      default:
        throw new Error(`unknown atomic condition ${String((condition as { type: unknown }).type)}`);
    }
  }

  private apply(write: AtomicWrite): void {
    switch (write.type) {
      case 'set':
        this.entries.set(write.key, { data: { type: 'string', value: write.value }, expiresAt: this.expiryOf(write.ttlMs) });
        return;
      case 'delete':
        this.entries.delete(write.key);
        return;
      case 'hashSet':
        return this.hashSetNow(write.key, write.fields);
      case 'hashDelete':
        return this.hashDeleteNow(write.key, write.fields);
      case 'setAdd':
        return this.setAddNow(write.key, write.members);
      case 'setRemove':
        return this.setRemoveNow(write.key, write.members);
      case 'listPush':
        this.listPushNow(write.key, write.values);
        return;
      case 'listRemove':
        this.listRemoveNow(write.key, write.value);
        return;
    }
  }

  private checkOpen(): void {
    // Same failure a closed RedisStore gives, so shutdown-order bugs look the same in both.
    if (this.closed) throw new StoreUnavailable('store is closed');
  }

  private expiryOf(ttlMs: number | undefined): number | undefined {
    return ttlMs === undefined ? undefined : Date.now() + ttlOf(ttlMs);
  }

  /** The entry if present and not expired; drops it on the spot when expired. */
  private live(key: string): Entry | undefined {
    this.checkOpen();
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private readString(key: string): string | null {
    const entry = this.live(key);
    if (!entry) return null;
    if (entry.data.type !== 'string') throw new Error(WRONG_TYPE);
    return entry.data.value;
  }

  private read<T extends keyof Containers>(key: string, type: T): Containers[T] | undefined {
    const entry = this.live(key);
    if (!entry) return undefined;
    if (entry.data.type !== type) throw new Error(WRONG_TYPE);
    // The check above is the narrowing TypeScript can't follow through a generic.
    return entry.data.value as Containers[T];
  }

  private create<V extends Value>(key: string, data: V): V['value'] {
    this.entries.set(key, { data });
    return data.value;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.entries.delete(key);
    }
  }
}
