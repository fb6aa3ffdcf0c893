import type { Store } from '../store/store.js';

/** Why and since when an account can't sign in. */
export interface DisabledAccount {
  at: number;
  /** The admin who disabled it. */
  by: string;
}

const KEY = 'accounts-disabled';

/** Disabled accounts, one hash field per user name. Owns the `accounts-disabled` key. */
export class AccountRepo {
  constructor(private readonly store: Store) {}

  async disabled(name: string): Promise<DisabledAccount | null> {
    const text = await this.store.hashGet(KEY, name);
    if (text === null) return null;
    try {
      return JSON.parse(text) as DisabledAccount;
    } catch {
      // A corrupt entry still means disabled: failing open would let the account back in.
      return { at: 0, by: '?' };
    }
  }

  async allDisabled(): Promise<Map<string, DisabledAccount>> {
    const all = await this.store.hashGetAll(KEY);
    const out = new Map<string, DisabledAccount>();
    for (const [name, text] of Object.entries(all)) {
      try {
        out.set(name, JSON.parse(text) as DisabledAccount);
      } catch {
        out.set(name, { at: 0, by: '?' });
      }
    }
    return out;
  }

  async disable(name: string, entry: DisabledAccount): Promise<void> {
    await this.store.hashSet(KEY, { [name]: JSON.stringify(entry) });
  }

  async enable(name: string): Promise<void> {
    await this.store.hashDelete(KEY, name);
  }
}
