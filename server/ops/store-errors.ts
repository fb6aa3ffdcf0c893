import type { Store } from '../store/store.js';

/**
 * The store, with every failed operation counted (store_errors_total) by its method name, a
 * fixed set. A Proxy rather than a copy of the interface, so new Store methods are counted too.
 */
export function countStoreErrors(store: Store, onError: (operation: string) => void): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'close') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]): unknown => {
        let result: unknown;
        try {
          result = method.apply(target, args);
        } catch (err) {
          onError(prop);
          throw err;
        }
        if (result instanceof Promise) result.catch(() => onError(prop));
        return result;
      };
    },
  });
}
