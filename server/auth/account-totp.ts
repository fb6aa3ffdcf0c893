import { generateSecret, generateURI, verify } from 'otplib';
import type { Store } from '../store/store.js';

const secretKey = (name: string): string => `account-totp:${name}`;
const pendingKey = (name: string): string => `account-totp-pending:${name}`;
const lastStepKey = (name: string): string => `account-totp-step:${name}`;
// Enrolment must be confirmed with a code within this time.
const PENDING_MS = 10 * 60_000;

/**
 * Optional TOTP (RFC 6238, authenticator apps) for local accounts: a secret per account, kept in
 * the store; a code counts once (the time step of the last accepted code is kept) and one step
 * either side of now is accepted (clock drift).
 */
export class TotpService {
  constructor(
    private readonly store: Store,
    private readonly issuer: string,
  ) {}

  async isEnabled(name: string): Promise<boolean> {
    return (await this.store.get(secretKey(name))) !== null;
  }

  /** Start enrolment: a new secret (not yet in force) and its otpauth:// URI for the app. */
  async begin(name: string): Promise<{ secret: string; uri: string }> {
    const secret = generateSecret();
    await this.store.set(pendingKey(name), secret, PENDING_MS);
    return { secret, uri: generateURI({ issuer: this.issuer, label: name, secret }) };
  }

  /** Confirm enrolment with a code from the app. Returns false (nothing changed) for a wrong code. */
  async confirm(name: string, code: string): Promise<boolean> {
    const secret = await this.store.get(pendingKey(name));
    if (!secret || !(await this.check(name, secret, code))) return false;
    await this.store.atomic({ then: [{ type: 'set', key: secretKey(name), value: secret }, { type: 'delete', key: pendingKey(name) }] });
    return true;
  }

  /** Whether a sign-in's code is right (and not used before). */
  async verify(name: string, code: string): Promise<boolean> {
    const secret = await this.store.get(secretKey(name));
    return secret !== null && this.check(name, secret, code);
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
