import type { Request } from 'express';
import type { Strategy } from 'passport';
import type nunjucks from 'nunjucks';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { AnonymousAuthenticator, LocalAuthenticator, type Authenticator, type AuthMount } from './authenticator.js';
import { IdentityService } from './identities.js';
import { SamlAuthenticator } from './saml/index.js';
import { samlLogoutUrl, samlRoutes } from './saml/routes.js';
import { TrustedHeaderAuthenticator } from './trusted-header.js';
import type { UserService } from './users.js';

export { AnonymousAuthenticator, LocalAuthenticator, type Authenticator, type AuthMethod, type AuthMount } from './authenticator.js';
export { IdentityConflict, IdentityService, mergeRoles, type ExternalIdentity, type PendingConflict } from './identities.js';
export { identityRoutes } from './identity-routes.js';

/** SAML as an Authenticator: SamlAuthenticator (the service provider) plus its routes. */
export class SamlSignOn implements Authenticator {
  readonly method = 'saml' as const;
  readonly loginChoice: { label: string; href: string };

  constructor(
    readonly saml: SamlAuthenticator,
    private readonly config: HubConfig,
    private readonly log: Logger,
  ) {
    this.loginChoice = { label: config.samlLoginLabel, href: '/hub/saml/login' };
  }

  mount(m: AuthMount): void {
    // passport-saml is typed against express 4's Request; at runtime it is a passport Strategy.
    m.passport.use('saml', this.saml.strategy as unknown as Strategy);
    m.router.use(samlRoutes({ saml: this.saml, allowSha1: this.config.samlAllowSha1, passport: m.passport, views: m.views, log: m.log, landing: m.landing, safeNext: m.safeNext }));
  }

  signOutUrl(req: Request): Promise<string | null> {
    return samlLogoutUrl(this.saml, req, this.log);
  }
}

export interface AuthenticatorDeps {
  config: HubConfig;
  log: Logger;
  store: Store;
  users: UserService;
  identities: IdentityService;
  views: nunjucks.Environment;
}

/** The configured authenticators, in mount order: trusted header, SAML, local, anonymous. */
export function createAuthenticators({ config, log, store, users, identities, views }: AuthenticatorDeps): Authenticator[] {
  const out: Authenticator[] = [];
  if (config.trustedHeader) out.push(new TrustedHeaderAuthenticator({ config, identities, views, log }));
  if (config.samlEnabled) out.push(new SamlSignOn(new SamlAuthenticator({ config, log: log.child({ part: 'saml' }), store, identities }), config, log));
  out.push(new LocalAuthenticator(users), new AnonymousAuthenticator(users));
  return out;
}
