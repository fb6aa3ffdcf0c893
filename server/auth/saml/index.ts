import fs from 'node:fs';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { parse as parseCookies } from 'cookie';
import type { Request } from 'express';
import { DOMParser } from '@xmldom/xmldom';
import { MultiSamlStrategy, SAML, generateServiceProviderMetadata, ValidateInResponseTo, type CacheProvider, type PassportSamlConfig, type Profile, type VerifyWithRequest } from '@node-saml/passport-saml';
import type { HubConfig } from '../../config/index.js';
import type { Logger } from '../../log.js';
import type { Store } from '../../store/store.js';
import type { IdentityService } from '../identities.js';
import type { UserRecord } from '../../store/repos.js';
import { HubError, InvalidUsername } from '../../errors.js';
import { IdpMetadataSource, pemCertificates, type IdpInfo } from './metadata.js';
import { attributeValues, rolesFrom } from './attributes.js';

export { checkSamlResponseShape, checkRedirectMessage, isSha1, signatureAlgorithms, MAX_SAML_RESPONSE_BASE64 } from './guards.js';
export { parseIdpMetadata, type IdpInfo } from './metadata.js';

export const SAML_PATHS = {
  login: '/hub/saml/login',
  acs: '/hub/saml/acs',
  metadata: '/hub/saml/metadata',
  slo: '/hub/saml/slo',
} as const;

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const REQUEST_PREFIX = 'saml:request:';
/** sha256 of the nonce of the browser that started a request, kept beside the request id. */
const BROWSER_PREFIX = 'saml:request-browser:';
const ASSERTION_PREFIX = 'saml:assertion:';
/** Assertions without any expiry are remembered this long (they are refused by age long before). */
const DEFAULT_ASSERTION_MEMORY_MS = 24 * 3600 * 1000;

/** A SAML response we will not sign anyone in with. The message is shown; the detail is logged. */
export class SamlRefused extends HubError {
  constructor(detail: string, status = 403, message = 'Your institution\'s sign-in could not be accepted. Please start again from the sign-in page.') {
    super('SAML_REFUSED', status, message, detail);
  }
}

/** The institution's sign-in can't be reached right now (metadata missing). */
export class SamlUnavailable extends HubError {
  constructor(detail: string) {
    super('SAML_UNAVAILABLE', 503, 'Sign-in with your institution is unavailable at the moment. Please try again in a few minutes.', detail);
  }
}

/** What we keep in the session to ask the IdP for single logout later. */
export interface SamlSessionInfo {
  nameID: string;
  nameIDFormat: string;
  nameQualifier?: string;
  spNameQualifier?: string;
  sessionIndex?: string;
}

export interface SamlDeps {
  config: HubConfig;
  log: Logger;
  store: Store;
  identities: IdentityService;
}

type XmlJs = { $?: Record<string, string>; _?: string } & Record<string, unknown>;
function children(node: unknown, name: string): XmlJs[] {
  const v = (node as Record<string, unknown> | undefined)?.[name];
  return Array.isArray(v) ? (v as XmlJs[]) : [];
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/**
 * The SAML service provider (SamlAuthenticator): SP-initiated sign-in with
 * @node-saml/passport-saml, and the checks that library leaves to us:
 * Recipient/Destination, issuer, the request id consumed atomically in the store (so two
 * concurrent POSTs of one response sign in at most once, in any hub process), and every
 * assertion id remembered until it expires (replays are refused across restarts with Redis).
 */
export class SamlAuthenticator {
  readonly entityId: string;
  readonly acsUrl: string;
  readonly sloUrl: string;
  private readonly metadata: IdpMetadataSource;
  private readonly spKey?: string;
  private readonly spCert?: string;
  private readonly cacheProvider: CacheProvider;
  /** The browser (hash of its nonce) whose sign-in is being started, for saveAsync to record. */
  private readonly startingBrowser = new AsyncLocalStorage<string>();
  readonly strategy: MultiSamlStrategy;
  /** The cookie that ties each AuthnRequest to the browser that started it (login CSRF). */
  readonly browserCookie: { name: string; path: string; secure: boolean; sameSite: 'none' | 'lax'; maxAgeMs: number };

  constructor(private readonly deps: SamlDeps) {
    const { config, log, store } = deps;
    const base = config.publicUrl!.replace(/\/+$/, '');
    this.entityId = config.samlSpEntityId ?? `${base}${SAML_PATHS.metadata}`;
    this.acsUrl = `${base}${SAML_PATHS.acs}`;
    this.sloUrl = `${base}${SAML_PATHS.slo}`;
    const pinned = config.samlIdpCertFile ? pemCertificates(readFile(config.samlIdpCertFile, 'samlIdpCertFile')) : undefined;
    if (pinned && !pinned.length) throw new HubError('CONFIG', 500, `samlIdpCertFile ${config.samlIdpCertFile} holds no PEM certificate`);
    this.metadata = new IdpMetadataSource({
      file: config.samlIdpMetadataFile,
      url: config.samlIdpMetadataUrl,
      refreshMs: config.samlIdpMetadataRefreshS * 1000,
      pinnedCerts: pinned,
      log,
    });
    if (config.samlSpKeyFile && config.samlSpCertFile) {
      this.spKey = readFile(config.samlSpKeyFile, 'samlSpKeyFile');
      this.spCert = readFile(config.samlSpCertFile, 'samlSpCertFile');
    }
    const ttlMs = config.samlRequestTtlS * 1000;
    // The IdP POSTs the response cross-site: over https the cookie must be SameSite=None to come
    // with it, and __Host- so no other host (a user-content subdomain) can plant its own. Over
    // plain http (a trial) only Lax is possible, so the IdP must be same-site (e.g. localhost).
    const https = base.startsWith('https:');
    this.browserCookie = https
      ? { name: '__Host-oerhub-saml', path: '/', secure: true, sameSite: 'none', maxAgeMs: ttlMs }
      : { name: 'oerhub-saml', path: '/hub/saml/', secure: false, sameSite: 'lax', maxAgeMs: ttlMs };
    if (config.samlAllowSha1) log.warn({ key: 'samlAllowSha1' }, 'SAML responses signed or digested with SHA-1 are accepted (samlAllowSha1); ask the IdP to sign with SHA-256 and turn this off');
    this.cacheProvider = {
      saveAsync: async (key, value) => {
        await store.set(REQUEST_PREFIX + key, value, ttlMs);
        const browser = this.startingBrowser.getStore();
        if (browser) await store.set(BROWSER_PREFIX + key, browser, ttlMs);
        return { value, createdAt: Date.now() };
      },
      getAsync: (key) => store.get(REQUEST_PREFIX + key),
      // node-saml removes ids with a get-then-delete that two concurrent POSTs can both pass.
      // The id is consumed instead by consumeRequest (an atomic take) once everything else checked out.
      removeAsync: async (key) => key,
    };
    // passport-saml is typed against express 4; the request objects are the same at runtime.
    const signon: VerifyWithRequest = (req, profile, done) => {
      this.verify(req as unknown as Request, profile).then(
        ({ user, session }) => done(null, user as unknown as Record<string, unknown>, session as unknown as Record<string, unknown>),
        (err: Error) => done(err),
      );
    };
    // IdP-initiated LogoutRequests are not accepted (see README); refuse them.
    const noLogoutRequests: VerifyWithRequest = (_req, _profile, done) => done(new SamlRefused('IdP-initiated logout is not supported', 400));
    this.strategy = new MultiSamlStrategy(
      {
        name: 'saml',
        passReqToCallback: true,
        getSamlOptions: (_req, done) => {
          this.options().then((o) => done(null, o), (err: Error) => done(err));
        },
      },
      signon,
      noLogoutRequests,
    );
  }

  /**
   * The nonce of this browser's sign-in cookie: the one it has (so sign-ins in two tabs both
   * work), or a new one. The caller sets it with browserCookie.
   */
  browserNonce(req: Request): string {
    const have = parseCookies(req.headers.cookie ?? '')[this.browserCookie.name];
    return have && /^[A-Za-z0-9_-]{32}$/.test(have) ? have : randomBytes(24).toString('base64url');
  }

  /** Run `start` (passport's redirect to the IdP) so that the request it makes is tied to `nonce`. */
  startFor(nonce: string, start: () => void): void {
    this.startingBrowser.run(sha256(nonce), start);
  }

  /** The IdP as its metadata describes it; SamlUnavailable if it was never loaded. */
  async idp(): Promise<IdpInfo> {
    try {
      return await this.metadata.get();
    } catch (err) {
      throw new SamlUnavailable((err as Error).message);
    }
  }

  /** Whether sign-out can go on to the IdP: it offers single logout and we can sign the request. */
  async canSingleLogout(): Promise<boolean> {
    if (!this.spKey) return false;
    return this.idp().then((i) => Boolean(i.sloUrl), () => false);
  }

  /** Options for node-saml, from config and the current metadata. */
  async options(): Promise<PassportSamlConfig> {
    const { config } = this.deps;
    const idp = await this.idp();
    return {
      issuer: this.entityId,
      callbackUrl: this.acsUrl,
      logoutCallbackUrl: this.sloUrl,
      entryPoint: idp.ssoUrl,
      logoutUrl: idp.sloUrl ?? '',
      idpIssuer: idp.entityId,
      idpCert: idp.certs,
      audience: this.entityId,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: config.samlWantResponseSigned,
      acceptedClockSkewMs: config.samlClockSkewS * 1000,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: config.samlRequestTtlS * 1000,
      cacheProvider: this.cacheProvider,
      // The username comes from attributes; let the IdP choose its NameID format.
      identifierFormat: null,
      // Don't demand password login: IdPs with MFA or Kerberos would refuse.
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      ...(this.spKey ? { privateKey: this.spKey, publicCert: this.spCert } : {}),
    };
  }

  /** SP metadata for the IdP's administrator to register. */
  spMetadata(): string {
    const xml = generateServiceProviderMetadata({
      issuer: this.entityId,
      callbackUrl: this.acsUrl,
      logoutCallbackUrl: this.spKey ? this.sloUrl : undefined,
      wantAssertionsSigned: true,
      identifierFormat: null,
      publicCerts: this.spCert ?? null,
      privateKey: this.spKey,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
    });
    if (!this.spKey) return xml;
    // node-saml lists single logout with the POST binding only; most IdPs answer with a redirect.
    const redirect = `<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${this.sloUrl}"/>`;
    return xml.replace(/(<SingleLogoutService [^>]*\/>)/, `${redirect}$1`);
  }

  /** The IdP URL that ends the user's session there (SP-initiated single logout), or null. */
  async logoutUrl(session: SamlSessionInfo | undefined): Promise<string | null> {
    if (!session || !(await this.canSingleLogout())) return null;
    const saml = new SAML(await this.options());
    return saml.getLogoutUrlAsync({ issuer: this.entityId, ...session } as Profile, '', {});
  }

  /** A SAML object for validating messages at the SLO endpoint. */
  async service(): Promise<SAML> {
    return new SAML(await this.options());
  }

  /**
   * After node-saml verified the signature, audience and time window: the checks it leaves to
   * us, then the atomic consumption of the request id and the replay guard, then the user.
   */
  private async verify(req: Request, profile: Profile | null): Promise<{ user: UserRecord; session: SamlSessionInfo }> {
    const { config, store, identities } = this.deps;
    if (!profile) throw new SamlRefused('no profile in response');
    const idp = await this.idp();
    if (profile.issuer !== idp.entityId) throw new SamlRefused(`assertion issuer ${String(profile.issuer)} is not ${idp.entityId}`);
    const requestId = typeof profile.inResponseTo === 'string' ? profile.inResponseTo : '';
    if (!requestId) throw new SamlRefused('response has no InResponseTo');

    const assertion = (profile.getAssertion?.() as { Assertion?: XmlJs } | undefined)?.Assertion;
    if (!assertion) throw new SamlRefused('no signed assertion');
    // Recipient and InResponseTo of the signed assertion's bearer confirmation must be ours.
    const confirmations = children(children(assertion, 'Subject')[0], 'SubjectConfirmation').filter((c) => c.$?.Method === BEARER);
    const data = confirmations.flatMap((c) => children(c, 'SubjectConfirmationData'));
    const now = Date.now();
    const skew = config.samlClockSkewS * 1000;
    const usable = data.find((d) => d.$?.Recipient === this.acsUrl && d.$?.InResponseTo === requestId);
    if (!usable) {
      const seen = data.map((d) => `Recipient=${d.$?.Recipient} InResponseTo=${d.$?.InResponseTo}`).join('; ');
      throw new SamlRefused(`no bearer SubjectConfirmationData for recipient ${this.acsUrl} and request ${requestId} (${seen || 'none'})`);
    }
    const destination = responseDestination(req);
    if (destination !== undefined && destination !== this.acsUrl) throw new SamlRefused(`response Destination ${destination} is not ${this.acsUrl}`);

    // Remember the assertion until it can no longer be used, plus the skew.
    const expiries = [usable.$?.NotOnOrAfter, children(assertion, 'Conditions')[0]?.$?.NotOnOrAfter]
      .map((t) => (t ? Date.parse(t) : NaN))
      .filter((t) => Number.isFinite(t));
    const memoryMs = expiries.length ? Math.max(60_000, Math.max(...expiries) + skew - now) : DEFAULT_ASSERTION_MEMORY_MS;
    const assertionId = assertion.$?.ID;
    if (!assertionId) throw new SamlRefused('assertion has no ID');

    // Of two concurrent POSTs of the same response, exactly one gets the request id.
    if ((await store.take(REQUEST_PREFIX + requestId)) === null) throw new SamlRefused(`request ${requestId} was already answered or never made here`);
    // Login CSRF: a response (even a fresh, valid one) is accepted only in the browser that asked
    // for it, so an attacker's unused response posted from another site signs nobody in.
    const startedBy = await store.take(BROWSER_PREFIX + requestId);
    const nonce = parseCookies(req.headers.cookie ?? '')[this.browserCookie.name];
    if (startedBy === null || !nonce || sha256(nonce) !== startedBy) {
      throw new SamlRefused(
        `request ${requestId} was started in another browser (${nonce ? 'other sign-in cookie' : `no ${this.browserCookie.name} cookie`}): login CSRF?`,
        403,
        'This sign-in was started in another browser. Please start again from the sign-in page here.',
      );
    }
    if (!(await store.setIfAbsent(ASSERTION_PREFIX + sha256(`${idp.entityId}\n${assertionId}`), String(now), memoryMs))) {
      throw new SamlRefused(`assertion ${assertionId} was used before (replay)`);
    }

    const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
    const nameSource = config.samlUsernameAttribute;
    const names = nameSource === 'nameID' ? [profile.nameID].filter(Boolean) : attributeValues(attributes, nameSource);
    if (names.length !== 1) throw new SamlRefused(`attribute ${nameSource} has ${names.length} values, need exactly 1`, 403, "Your institution didn't tell us your username. Ask its IT service to release it to this hub.");
    const displayName = attributeValues(attributes, config.samlDisplayNameAttribute)[0];
    const email = attributeValues(attributes, config.samlEmailAttribute)[0];
    const roles = rolesFrom(attributeValues(attributes, config.samlRolesAttribute), { instructorValues: config.roleInstructorValues, adminValues: config.roleAdminValues });
    // The person at this IdP: a persistent NameID if the IdP gives one, else the username it sends.
    const subject = profile.nameIDFormat === PERSISTENT && profile.nameID ? profile.nameID : names[0];
    let user: UserRecord;
    try {
      user = await identities.signIn({ method: 'saml', issuer: idp.entityId, subject }, names[0], roles, { ...(displayName ? { displayName } : {}), ...(email ? { email } : {}) });
    } catch (err) {
      if (err instanceof InvalidUsername) throw new SamlRefused(`username ${JSON.stringify(names[0])}: ${err.userMessage}`, 403, err.userMessage);
      throw err;
    }
    const session: SamlSessionInfo = {
      nameID: profile.nameID,
      nameIDFormat: profile.nameIDFormat,
      ...(profile.nameQualifier ? { nameQualifier: profile.nameQualifier } : {}),
      ...(profile.spNameQualifier ? { spNameQualifier: profile.spNameQualifier } : {}),
      ...(profile.sessionIndex ? { sessionIndex: profile.sessionIndex } : {}),
    };
    return { user, session };
  }
}

/** Destination attribute of the POSTed Response (its shape was checked before: one root, no DOCTYPE). */
function responseDestination(req: Request): string | undefined {
  const xml = (req.res?.locals as { samlXml?: string } | undefined)?.samlXml;
  if (!xml) return undefined;
  const doc = new DOMParser({ errorHandler: { warning: () => undefined, error: () => undefined, fatalError: () => undefined } }).parseFromString(xml, 'text/xml');
  const root = doc?.documentElement;
  return root?.hasAttribute('Destination') ? (root.getAttribute('Destination') ?? undefined) : undefined;
}

function readFile(file: string, key: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new HubError('CONFIG', 500, `${key} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
