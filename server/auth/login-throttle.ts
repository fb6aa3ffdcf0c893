import type { Store } from '../store/store.js';

const WINDOW_MS = 15 * 60 * 1000;

/**
 * Failed sign-ins per address and username, counted in the store so every hub process sees
 * them. Checked before the (slow) password hash, so a flood costs us little.
 */
export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly limit: number,
  ) {}

  private key(ip: string, username: string): string {
    return `login-fail:${ip}\n${username.trim().toLowerCase()}`;
  }

  async isBlocked(ip: string, username: string): Promise<boolean> {
    const count = Number((await this.store.get(this.key(ip, username))) ?? 0);
    return count >= this.limit;
  }

  async recordFailure(ip: string, username: string): Promise<void> {
    await this.store.increment(this.key(ip, username), WINDOW_MS);
  }

  async reset(ip: string, username: string): Promise<void> {
    await this.store.delete(this.key(ip, username));
  }
}
