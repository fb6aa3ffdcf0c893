import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';
import { normalizeUsername } from '../names.js';

const WINDOW_MS = 15 * 60 * 1000;
/** Cookie that marks a browser in which someone once signed in as a user (OWASP's "device cookie"). */
export const DEVICE_COOKIE = 'oerhub-device';
/** The device cookie is sent only to the sign-in form's POST. */
export const DEVICE_COOKIE_PATH = '/hub/login';
/** How long a browser stays known: about a school year. */
export const DEVICE_COOKIE_MAX_AGE_MS = 400 * 24 * 3600 * 1000;

export interface LoginThrottleLimits {
  /** Failed sign-ins per address and username (unknown browsers), and per known browser, in 15 minutes. */
  perUser: number;
  /** Failed sign-ins per address, over all usernames, in 15 minutes (unknown browsers only). */
  perAddress: number;
}

/**
 * The name failures are counted under: the same NFKC, trimmed, lower-case form sign-in uses,
 * so `ｂｏｂ` and `Bob ` count as `bob`. A name sign-in would refuse still gets a key of its own.
 */
export function throttleName(raw: string): string {
  try {
    return normalizeUsername(raw);
  } catch {
    return raw.normalize('NFKC').trim().toLowerCase();
  }
}

/**
 * Failed sign-ins, counted in the store so every hub process sees them, and checked before the
 * (slow) password hash so a flood costs little.
 *
 * A school puts hundreds of students behind one address, so a lockout by address and username
 * alone would let a classmate lock anyone out by typing wrong passwords under their name. As
 * OWASP's device cookies do: a browser in which someone signed in as a user gets a signed
 * cookie naming that user, and sign-ins as that user from that browser are counted per browser,
 * not per address. Unknown browsers are counted per address and username, and per address over
 * all usernames (password spraying); successful sign-ins never count, so a whole class signing
 * in from one address is never refused.
 */
export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly limits: LoginThrottleLimits,
    private readonly secret: string,
  ) {}

  /**
   * The id of the browser's device cookie if it is genuine and names this user, else null.
   * Pure; never throws.
   */
  knownDevice(cookieValue: string | undefined, username: string): string | null {
    if (!cookieValue) return null;
    const parts = cookieValue.split('.');
    if (parts.length !== 3) return null;
    const [encodedName, id, mac] = parts as [string, string, string];
    const expected = this.mac(encodedName, id);
    if (mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) return null;
    return Buffer.from(encodedName, 'base64url').toString('utf8') === throttleName(username) ? id : null;
  }

  /** Whether this attempt must be refused before checking its password. Rejects when the store is down. */
  async isBlocked(ip: string, username: string, device: string | null): Promise<boolean> {
    if (device) return (await this.count(this.deviceKey(device))) >= this.limits.perUser;
    const [mine, address] = await this.store.getMany([this.userKey(ip, username), this.addressKey(ip)]);
    return Number(mine ?? 0) >= this.limits.perUser || Number(address ?? 0) >= this.limits.perAddress;
  }

  /** Count a failed attempt: against the known browser, or against the address and username. */
  async recordFailure(ip: string, username: string, device: string | null): Promise<void> {
    if (device) {
      await this.store.increment(this.deviceKey(device), WINDOW_MS);
      return;
    }
    await this.store.increment(this.userKey(ip, username), WINDOW_MS);
    await this.store.increment(this.addressKey(ip), WINDOW_MS);
  }

  /**
   * After a successful sign-in: clear this browser's failures for the user and return the
   * device cookie's value to give (or renew in) this browser.
   */
  async succeeded(ip: string, username: string, device: string | null): Promise<string> {
    const id = device ?? randomBytes(16).toString('base64url');
    await this.store.delete(this.userKey(ip, username), this.deviceKey(id));
    const encodedName = Buffer.from(throttleName(username), 'utf8').toString('base64url');
    return `${encodedName}.${id}.${this.mac(encodedName, id)}`;
  }

  /**
   * How a typed username that is no account's appears in the log: a name typed into the form
   * is often a password typed into the wrong box, so only a keyed hash of it, enough to see the
   * same guess coming back.
   */
  unknownNameForLog(username: string): string {
    return 'unknown user ' + createHmac('sha256', this.secret).update(`oerhub-log-name\n${throttleName(username)}`).digest('base64url').slice(0, 12);
  }

  private mac(encodedName: string, id: string): string {
    // The context string keeps these MACs apart from anything else signed with the cookie secret.
    return createHmac('sha256', this.secret).update(`oerhub-device\n${encodedName}\n${id}`).digest('base64url');
  }

  private async count(key: string): Promise<number> {
    return Number((await this.store.get(key)) ?? 0);
  }

  private userKey(ip: string, username: string): string {
    return `login-fail:${ip}\n${throttleName(username)}`;
  }

  private addressKey(ip: string): string {
    return `login-fail-address:${ip}`;
  }

  private deviceKey(id: string): string {
    return `login-fail-device:${id}`;
  }
}
