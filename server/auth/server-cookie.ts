import { createHmac, timingSafeEqual } from 'node:crypto';

/** The hub's own session cookie; it lives on /hub/ only. */
export const SESSION_COOKIE = 'oerhub-session';
/** Everything starting with this is ours and is stripped before a request reaches a notebook server. */
export const COOKIE_PREFIX = 'oerhub-';

/**
 * The cookie that opens one user's server; it lives on /user/NAME/ only, and (unless the hub
 * runs in single-origin mode) host-only on that user's own origin, set by the proxy when it
 * redeems a sign-in handoff code.
 */
export const serverCookieName = (escapedName: string): string => `oerhub-user-${escapedName}`;
export const serverCookiePath = (escapedName: string): string => `/user/${escapedName}/`;

function mac(secret: string, sid: string, escapedName: string): string {
  return createHmac('sha256', secret).update(`${sid}\n${escapedName}`).digest('base64url');
}

/**
 * `<sid>.<mac>`: binds the hub session to one server's path, so a cookie minted for one
 * server can't open another, and signing out (session gone) closes every server at once.
 */
export function signServerCookie(secret: string, sid: string, escapedName: string): string {
  return `${sid}.${mac(secret, sid, escapedName)}`;
}

/** The session id if the cookie is ours and untampered, else null. */
export function verifyServerCookie(secret: string, value: string, escapedName: string): string | null {
  const dot = value.lastIndexOf('.');
  if (dot <= 0 || value.length > 256) return null;
  const sid = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1));
  const expected = Buffer.from(mac(secret, sid, escapedName));
  return given.length === expected.length && timingSafeEqual(given, expected) ? sid : null;
}

/** Value of one cookie from a Cookie header, without parsing the rest (hot path). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let v = header.slice(eq + 1, end).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
    start = end + 1;
  }
  return undefined;
}

/** The Cookie header without any of our cookies; undefined if nothing is left. */
export function stripOurCookies(header: string | undefined): string | undefined {
  if (!header || !header.includes(COOKIE_PREFIX)) return header;
  const kept = header
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && !c.startsWith(COOKIE_PREFIX));
  return kept.length ? kept.join('; ') : undefined;
}

/** Attributes of a server cookie set by the proxy on a user origin. */
export interface ServerCookieOptions {
  secure: boolean;
  maxAgeS: number;
}

/**
 * The Set-Cookie line for a server cookie on a user origin: host-only (no Domain, so no other
 * user's host and not the hub ever sees it), on /user/NAME/ only, HttpOnly, SameSite=Lax.
 */
export function serverCookieHeader(escapedName: string, value: string, o: ServerCookieOptions): string {
  return `${serverCookieName(escapedName)}=${value}; Path=${serverCookiePath(escapedName)}; Max-Age=${o.maxAgeS}; HttpOnly; SameSite=Lax${o.secure ? '; Secure' : ''}`;
}
