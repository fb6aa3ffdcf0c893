import net from 'node:net';
import type { Request, RequestHandler } from 'express';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { UserService } from './users.js';
import { rolesFrom } from './saml/attributes.js';
import { HubError, InvalidUsername } from '../errors.js';
import { normalizeUsername } from '../names.js';

function safeNormalize(raw: string): string | null {
  try {
    return normalizeUsername(raw);
  } catch {
    return null;
  }
}

/** Build the set of proxy addresses; throws naming the bad entry. */
export function proxyAddressList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const [addr, bits] = entry.split('/');
    const family = net.isIP(addr);
    if (!family) throw new HubError('CONFIG', 500, `trustedHeaderProxies: ${entry} is not an IP address or CIDR range`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
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
 * when the TCP connection comes from one of `config.trustedHeaderProxies`. From anywhere else the
 * header is ignored and logged; the proxy itself must strip client-sent copies of the header
 * (the shipped nginx config does). A request without the header keeps whatever session it has.
 */
export function trustedHeaderAuth({ config, users, log }: TrustedHeaderDeps): RequestHandler {
  const header = config.trustedHeader!.toLowerCase();
  const rolesHeader = config.trustedHeaderRoles?.toLowerCase();
  const proxies = proxyAddressList(config.trustedHeaderProxies);
  return (req, _res, next) => {
    const raw = req.headers[header];
    if (raw === undefined) return next();
    const peer = peerAddress(req);
    const family = net.isIP(peer) === 6 ? 'ipv6' : 'ipv4';
    if (!peer || !proxies.check(peer, family)) {
      log.warn({ part: 'trusted-header', peer, header }, 'ignored a sign-in header from an address that is not a trusted proxy');
      return next();
    }
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
