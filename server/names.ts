import { createHash } from 'node:crypto';
import { InvalidUsername } from './errors.js';

export const MAX_USERNAME_LENGTH = 64;
/**
 * First character of every anonymous ("Try it") user's name. normalizeUsername refuses it, so
 * no sign-in (local, SAML, trusted header) can ever produce or take over such a name.
 */
export const ANONYMOUS_PREFIX = '~';
/** escapeName(ANONYMOUS_PREFIX): how an anonymous user's server shows up in /user/ paths. */
export const ANONYMOUS_ESCAPED_PREFIX = '-7e';
/** Escaped names longer than this are shortened with a hash (see escapeName). */
const MAX_ESCAPED_PLAIN = 48;

/**
 * The one normalisation of a username, for every authenticator: Unicode NFKC, trimmed,
 * lower case. Refuses empty names, names over MAX_USERNAME_LENGTH characters, `/`, `\`,
 * control or invisible characters, and names starting with ANONYMOUS_PREFIX (anonymous users').
 */
export function normalizeUsername(raw: string): string {
  if (typeof raw !== 'string') throw new InvalidUsername('it is not text');
  const name = raw.normalize('NFKC').trim().toLowerCase();
  if (!name) throw new InvalidUsername('it is empty');
  if ([...name].length > MAX_USERNAME_LENGTH) throw new InvalidUsername(`it is longer than ${MAX_USERNAME_LENGTH} characters`);
  if (/[/\\]/.test(name)) throw new InvalidUsername('it contains a slash');
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(name)) throw new InvalidUsername('it contains control or invisible characters');
  if (name === '.' || name === '..') throw new InvalidUsername('it is a path');
  if (name.startsWith(ANONYMOUS_PREFIX)) throw new InvalidUsername(`it starts with ${ANONYMOUS_PREFIX}, which is kept for anonymous visitors`);
  return name;
}

/**
 * Injective, DNS-label-safe form of a normalised name, used wherever a name becomes a
 * container, volume, folder or route. [a-z0-9] stay; every other UTF-8 byte (`-` included)
 * becomes `-xx` (two hex digits), so decoding is unambiguous and two names never collide.
 * Results longer than 48 characters become exactly 50: a 37-character prefix, `-z`, and 11
 * hex digits of a SHA-256 of the name (collisions are then as unlikely as a hash collision,
 * and the lengths keep shortened and plain forms apart).
 */
export function escapeName(normalized: string): string {
  let out = '';
  for (const byte of Buffer.from(normalized, 'utf8')) {
    const isSafe = (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39);
    out += isSafe ? String.fromCharCode(byte) : '-' + byte.toString(16).padStart(2, '0');
  }
  if (out.length <= MAX_ESCAPED_PLAIN) return out;
  const hash = createHash('sha256').update(normalized, 'utf8').digest('hex').slice(0, 11);
  return `${out.slice(0, 37)}-z${hash}`;
}

/** Whether a string is shaped like the output of escapeName (for routes in URLs). */
export function isEscapedName(s: string): boolean {
  return /^[a-z0-9-]{1,50}$/.test(s);
}

/** Whether a normalised name is an anonymous visitor's (made only by UserService.createAnonymous). */
export function isAnonymousName(name: string): boolean {
  return name.startsWith(ANONYMOUS_PREFIX);
}

/** Whether an escaped name (a /user/ path segment) is an anonymous visitor's. */
export function isAnonymousEscapedName(escapedName: string): boolean {
  return escapedName.startsWith(ANONYMOUS_ESCAPED_PREFIX);
}
