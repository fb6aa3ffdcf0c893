import type { Request, Router } from 'express';
import type { Passport } from 'passport';
import type nunjucks from 'nunjucks';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { UserService } from './users.js';

/** How someone signed in. */
export type AuthMethod = 'local' | 'saml' | 'header' | 'anonymous';

/** What the web app hands each authenticator when it mounts it (built once per hub). */
export interface AuthMount {
  /** Runs before the hub's body parsers and XSRF check, after the session and passport. */
  router: Router;
  passport: InstanceType<typeof Passport>;
  views: nunjucks.Environment;
  log: Logger;
  /** Where a signed-in user goes (next= / RelayState checked like auth-routes' landingFor). */
  landing(user: UserRecord, next: unknown): string;
  /** Validate a redirect target (safeNext). */
  safeNext(raw: unknown): string | null;
}

/**
 * One way of signing in. createHub builds the configured ones (createAuthenticators) and the
 * web app mounts them in that order. Every external one signs in through IdentityService, so
 * no authenticator can take over another's account by name.
 */
export interface Authenticator {
  readonly method: AuthMethod;
  /** A choice on /hub/login (a link that starts this sign-in), if it has one. */
  readonly loginChoice?: { label: string; href: string };
  /**
   * Add the routes or middleware that must run before the body parsers and the XSRF check (an
   * IdP's cross-site POST, a proxy's header). Called once; throws only on a programming error.
   */
  mount?(m: AuthMount): void;
  /**
   * Where to send a browser whose hub session was just ended, to end the sign-in at its source
   * too (single logout), or null. Called before the session is destroyed; never throws.
   */
  signOutUrl?(req: Request): Promise<string | null>;
}

/** Local accounts (invited members, admins): the password form of /hub/login (auth-routes). */
export class LocalAuthenticator implements Authenticator {
  readonly method = 'local' as const;
  constructor(private readonly users: UserService) {}

  /** The account if name and password match, else null; as slow for unknown names. Never throws for bad input. */
  verify(rawName: string, password: string): Promise<UserRecord | null> {
    return this.users.verifyLocal(rawName, password);
  }
}

/** Anonymous "Try it" visitors: a fresh, unguessable user per visit (try-routes). */
export class AnonymousAuthenticator implements Authenticator {
  readonly method = 'anonymous' as const;
  constructor(private readonly users: UserService) {}

  /** A new anonymous user. Throws StoreUnavailable. Never returns a name twice. */
  create(): Promise<UserRecord> {
    return this.users.createAnonymous();
  }

  /** Forget an anonymous user whose server is gone. Refuses anyone else; safe to repeat. */
  remove(user: UserRecord): Promise<void> {
    return this.users.deleteAnonymous(user);
  }
}
