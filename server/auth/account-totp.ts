import { generateSecret, generateURI, verify } from 'otplib';
import type { Store } from '../store/store.js';
import type { Logger } from '../log.js';
import { SealBroken, SecretBox } from './secret-box.js';

const secretKey = (name: string): string => `account-totp:${name}`;
const pendingKey = (name: string): string => `account-totp-pending:${name}`;
const lastStepKey = (name: string): string => `account-totp-step:${name}`;
// Enrolment must be confirmed with a code within this time.
const PENDING_MS = 10 * 60_000;

/**
 * Optional TOTP (RFC 6238, authenticator apps) for local accounts: a secret per account, kept in
 * the store sealed (SecretBox: AES-256-GCM under a key derived from the hub's secret, bound to
 * the account name); a code counts once (the time step of the last accepted code is kept) and
 * one step either side of now is accepted (clock drift). Secrets stored in plain text by an
 * older hub are sealed the first time they are read.
 */
export class TotpService {
  private readonly box: SecretBox;

  constructor(
    private readonly store: Store,
    private readonly issuer: string,
    hubSecret: string,
    private readonly log: Logger,
  ) {
    this.box = new SecretBox(hubSecret, 'totp');
  }

  async isEnabled(name: string): Promise<boolean> {
    return (await this.store.get(secretKey(name))) !== null;
  }

  /** Start enrolment: a new secret (not yet in force) and its otpauth:// URI for the app. */
  async begin(name: string): Promise<{ secret: string; uri: string }> {
    const secret = generateSecret();
    await this.store.set(pendingKey(name), this.box.seal(secret, pendingKey(name)), PENDING_MS);
    return { secret, uri: generateURI({ issuer: this.issuer, label: name, secret }) };
  }

  /** Confirm enrolment with a code from the app. Returns false (nothing changed) for a wrong code. */
  async confirm(name: string, code: string): Promise<boolean> {
    // Pending ones are not re-sealed: they expire within minutes anyway.
    const secret = await this.read(pendingKey(name), false);
    if (!secret || !(await this.check(name, secret, code))) return false;
    await this.store.atomic({ then: [{ type: 'set', key: secretKey(name), value: this.box.seal(secret, secretKey(name)) }, { type: 'delete', key: pendingKey(name) }] });
    return true;
  }

  /** Whether a sign-in's code is right (and not used before). */
  async verify(name: string, code: string): Promise<boolean> {
    const secret = await this.read(secretKey(name), true);
    return secret !== null && this.check(name, secret, code);
  }

  /**
   * The plain secret under `key`, or null. A plaintext value (an older hub's) is sealed in place,
   * only if it is still the value (a disable meanwhile must not be undone). A value that does not
   * open (the hub's secret changed) counts as no secret and is logged: the code can't match.
   */
  private async read(key: string, migrate: boolean): Promise<string | null> {
    const stored = await this.store.get(key);
    if (stored === null) return null;
    if (!SecretBox.isSealed(stored)) {
      if (!migrate) return stored;
      const sealed = this.box.seal(stored, key);
      const done = await this.store.atomic({ if: [{ type: 'equals', key, value: stored }], then: [{ type: 'set', key, value: sealed }] });
      if (done) this.log.info({ key }, 'sealed a TOTP secret that was stored in plain text');
      return stored;
    }
    try {
      return this.box.open(stored, key);
    } catch (err) {
      if (!(err instanceof SealBroken)) throw err;
      this.log.error({ key, err: err.message }, 'a TOTP secret does not open: was the hub\'s cookie secret changed? Restore it, or delete this store key to turn the account\'s two-step sign-in off');
      return null;
    }
  }

  async disable(name: string): Promise<void> {
    await this.store.delete(secretKey(name), pendingKey(name), lastStepKey(name));
  }

  private async check(name: string, secret: string, code: string): Promise<boolean> {
    if (!/^[0-9]{6}$/.test(code)) return false;
    const last = Number((await this.store.get(lastStepKey(name))) ?? '-1');
    const result = await verify({ secret, token: code, epochTolerance: 30, afterTimeStep: last >= 0 ? last : undefined });
    if (!result.valid) return false;
    // TOTP results carry the time step of the matched code (HOTP's do not).
    const step = 'timeStep' in result && typeof result.timeStep === 'number' ? result.timeStep : Math.floor(Date.now() / 30_000);
    await this.store.set(lastStepKey(name), String(step), 10 * 60_000);
    return true;
  }
}
