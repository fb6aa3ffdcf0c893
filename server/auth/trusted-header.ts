import net from 'node:net';
import type { Request, RequestHandler } from 'express';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type nunjucks from 'nunjucks';
import type { Authenticator, AuthMount } from './authenticator.js';
import { IdentityConflict, type IdentityService } from './identities.js';
import { PAGE_HEADERS } from '../web/render.js';
import { rolesFrom } from './saml/attributes.js';
import { HubError, InvalidUsername } from '../errors.js';
import { cameThroughFrontDoor } from './front-door.js';

/** The TCP peer, as the hub's socket sees it (never X-Forwarded-For), IPv4-mapped addresses unwrapped. */
export function peerAddress(req: Request): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export interface TrustedHeaderDeps {
  config: HubConfig;
  identities: IdentityService;
  views: nunjucks.Environment;
  log: Logger;
}

declare module 'express-session' {
  interface SessionData {
    /** The trusted-header value this session was signed in with (skips the store on every request). */
    headerUser?: string;
  }
}

/**
 * Trusted-header sign-on (front proxy does the SSO, e.g. Shibboleth SP, mod_auth_mellon,
 * an nginx auth_request agent): the user named in `config.trustedHeader` is signed in, but only
 * when the request came through the front door (the Unix socket nginx proxies to, see
 * front-door.ts). On the TCP port the header is ignored and logged, whatever the peer address:
 * a kernel on this machine connects from 127.0.0.1 too. nginx itself must overwrite client-sent
 * copies of the header (the shipped configs do). A request without the header keeps whatever
 * session it has. The identity is (header, header name, value): it never takes over a local
 * account of the same name (a 409 page instead, until an admin links them).
 */
export class TrustedHeaderAuthenticator implements Authenticator {
  readonly method = 'header' as const;
  constructor(private readonly deps: TrustedHeaderDeps) {}

  mount({ router }: AuthMount): void {
    router.use(this.middleware());
  }

  private middleware(): RequestHandler {
    const { config, identities, views, log } = this.deps;
    const header = config.trustedHeader!.toLowerCase();
    const rolesHeader = config.trustedHeaderRoles?.toLowerCase();
    return (req, res, next) => {
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
      const subject = value.trim();
      const groupsRaw = rolesHeader ? req.headers[rolesHeader] : undefined;
      const groups = (Array.isArray(groupsRaw) ? groupsRaw.join(',') : (groupsRaw ?? '')).split(/[;,]/).map((g) => g.trim()).filter(Boolean);
      const roles = rolesFrom(groups, { instructorValues: config.roleInstructorValues, adminValues: config.roleAdminValues });
      const current = req.user;
      // Same person as this session already has: nothing to write (roles refresh with each new session).
      if (current && req.session.headerUser === subject) return next();
      identities.signIn({ method: 'header', issuer: config.trustedHeader!, subject }, subject, roles).then(
        (user) => {
          if (current && current.name === user.name) {
            req.user = user;
            req.session.headerUser = subject;
            return next();
          }
          // A different (or no) user: a fresh session, as with any sign-in.
          req.login(user, (err: unknown) => {
            if (err) return next(err);
            req.session.headerUser = subject;
            log.info({ part: 'trusted-header', user: user.name, roles: user.roles, peer }, 'signed in from trusted header');
            next();
          });
        },
        (err: unknown) => {
          if (err instanceof IdentityConflict) {
            const html = views.render('identity-conflict.njk', { message: err.userMessage, method: 'trusted header', user: null, csrfToken: '' });
            res.status(409).set(PAGE_HEADERS).send(html);
            return;
          }
          if (err instanceof InvalidUsername) {
            log.warn({ part: 'trusted-header', peer, reason: err.userMessage }, 'refused the user named in the trusted header');
            return next(new HubError('FORBIDDEN', 403, err.userMessage));
          }
          next(err);
        },
      );
    };
  }
}

export type { UserRecord };
