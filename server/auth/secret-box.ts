import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** A sealed value that can't be opened: another key, changed bytes, or another record's value. */
export class SealBroken extends Error {
  override name = 'SealBroken';
}

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals small secrets (TOTP keys) for the store with AES-256-GCM under a key derived (HKDF-SHA256)
 * from the hub's own secret, the cookie secret kept in config or `dataDir/cookie-secret`: a copy
 * of the store alone (a backup, a Redis dump) does not give the secrets. Format, versioned so the
 * scheme can change: `v1:` + base64url(12-byte IV | 16-byte tag | ciphertext). `context` (e.g. the
 * account name) is bound as associated data, so a value copied to another record does not open.
 */
export class SecretBox {
  private readonly key: Buffer;

  /** `purpose` separates keys derived from the same hub secret for different uses. */
  constructor(hubSecret: string, purpose: string) {
    if (!hubSecret) throw new Error('SecretBox needs the hub secret');
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(hubSecret, 'utf8'), Buffer.from('oerhub secret-box', 'utf8'), Buffer.from(`${purpose}/${VERSION}`, 'utf8'), 32));
  }

  /** Whether a stored value is sealed (by any version), rather than an old plaintext one. */
  static isSealed(stored: string): boolean {
    return /^v[0-9]+:/.test(stored);
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  /** Throws SealBroken for a value this box did not seal for this context. */
  open(sealed: string, context: string): string {
    const [version, data] = sealed.split(':', 2);
    if (version !== VERSION || !data) throw new SealBroken(`unknown sealed format ${JSON.stringify(version)}`);
    const raw = Buffer.from(data, 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SealBroken('sealed value too short');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealBroken('sealed value does not open with this key and context');
    }
  }
}
