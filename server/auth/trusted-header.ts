import net from 'node:net';
import type { Request, RequestHandler } from 'express';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { UserService } from './users.js';
import { rolesFrom } from './saml/attributes.js';
import { HubError, InvalidUsername } from '../errors.js';
import { cameThroughFrontDoor } from './front-door.js';
import { normalizeUsername } from '../names.js';

function safeNormalize(raw: string): string | null {
  try {
    return normalizeUsername(raw);
  } catch {
    return null;
  }
}

/** The TCP peer, as the hub's socket sees it (never X-Forwarded-For), IPv4-mapped addresses unwrapped. */
export function peerAddress(req: Request): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export interface TrustedHeaderDeps {
  config: HubConfig;
  users: UserService;
  log: Logger;
}

/**
 * Trusted-header sign-on (front proxy does the SSO, e.g. Shibboleth SP, mod_auth_mellon,
 * an nginx auth_request agent): the user named in `config.trustedHeader` is signed in, but only
 * when the request came through the front door (the Unix socket nginx proxies to, see
 * front-door.ts). On the TCP port the header is ignored and logged, whatever the peer address:
 * a kernel on this machine connects from 127.0.0.1 too. nginx itself must overwrite client-sent
 * copies of the header (the shipped configs do). A request without the header keeps whatever
 * session it has.
 */
export function trustedHeaderAuth({ config, users, log }: TrustedHeaderDeps): RequestHandler {
  const header = config.trustedHeader!.toLowerCase();
  const rolesHeader = config.trustedHeaderRoles?.toLowerCase();
  return (req, _res, next) => {
    const raw = req.headers[header];
    if (raw === undefined) return next();
    if (!cameThroughFrontDoor(req)) {
      log.warn({ part: 'trusted-header', peer: peerAddress(req), header }, 'ignored a sign-in header that did not come through the front door');
      return next();
    }
    const peer = req.ip;
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (Array.isArray(raw) || value.trim() === '') {
      log.warn({ part: 'trusted-header', peer }, 'ignored an empty or repeated sign-in header');
      return next();
    }
    const groupsRaw = rolesHeader ? req.headers[rolesHeader] : undefined;
    const groups = (Array.isArray(groupsRaw) ? groupsRaw.join(',') : (groupsRaw ?? '')).split(/[;,]/).map((g) => g.trim()).filter(Boolean);
    const roles = rolesFrom(groups, { instructorValues: config.roleInstructorValues, adminValues: config.roleAdminValues });
    const current = req.user;
    // Same user as this session already has: nothing to write (roles refresh with each new session).
    if (current?.source === 'header' && current.name === safeNormalize(value)) return next();
    users
      .upsertExternal(value, 'header', roles)
      .then(
        (user) => {
          if (current && current.name === user.name) {
            req.user = user;
            return next();
          }
          // A different (or no) user: a fresh session, as with any sign-in.
          req.login(user, (err: unknown) => {
            if (err) return next(err);
            log.info({ part: 'trusted-header', user: user.name, roles: user.roles, peer }, 'signed in from trusted header');
            next();
          });
        },
        (err: unknown) => {
          if (err instanceof InvalidUsername) {
            log.warn({ part: 'trusted-header', peer, reason: err.userMessage }, 'refused the user named in the trusted header');
            return next(new HubError('FORBIDDEN', 403, err.userMessage));
          }
          next(err);
        },
      );
  };
}

export type { UserRecord };
