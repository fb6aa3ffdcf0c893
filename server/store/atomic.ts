import type { AtomicOperation, AtomicWrite } from './store.js';

/** Redis' own wording, so a bug shows the same message with every store. */
export const WRONG_TYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

export type KeyType = 'string' | 'hash' | 'set' | 'list' | 'none';

/** The type each write needs its key to have (or to be missing); set and delete take any key. */
const NEEDS: Readonly<Record<AtomicWrite['type'], KeyType | undefined>> = {
  set: undefined,
  delete: undefined,
  hashSet: 'hash',
  hashDelete: 'hash',
  setAdd: 'set',
  setRemove: 'set',
  listPush: 'list',
  listRemove: 'list',
};

/**
 * Whole milliseconds, at least 1, because Redis' PX takes integers: every store then rounds the same way.
 * Throws RangeError for anything but a positive finite number.
 */
export function ttlOf(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive number, got ${ttlMs}`);
  return Math.max(1, Math.ceil(ttlMs));
}

/**
 * Throw before anything is written if a write would meet a key of the wrong type, so an
 * atomic operation never stops half-way. The types are followed through the writes (a `set`
 * makes a string, a `delete` makes nothing); a remove keeps the type even if it empties the
 * key, the same rule as the Lua script in redis-store.ts, so all stores agree on edge cases.
 */
export function checkAtomicWrites(operation: AtomicOperation, typeOf: (key: string) => KeyType): void {
  const planned = new Map<string, KeyType>();
  for (const write of operation.then) {
    if (write.type === 'set' && write.ttlMs !== undefined) ttlOf(write.ttlMs);
    // hasOwn: `write.type` comes from callers and may be anything at run time, `constructor` included.
    if (!Object.hasOwn(NEEDS, write.type)) throw new Error(`unknown atomic write ${String(write.type)}`);
    const current = planned.get(write.key) ?? typeOf(write.key);
    const needed = NEEDS[write.type];
    if (needed && current !== 'none' && current !== needed) throw new Error(WRONG_TYPE);
    planned.set(write.key, typeAfter(write, current));
  }
}

function typeAfter(write: AtomicWrite, current: KeyType): KeyType {
  switch (write.type) {
    case 'set':
      return 'string';
    case 'delete':
      return 'none';
    case 'hashSet':
      return Object.keys(write.fields).length ? 'hash' : current;
    case 'setAdd':
      return write.members.length ? 'set' : current;
    case 'listPush':
      return write.values.length ? 'list' : current;
    default:
      return current;
  }
}
