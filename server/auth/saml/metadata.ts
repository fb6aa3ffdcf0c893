import fs from 'node:fs';
import { DOMParser } from '@xmldom/xmldom';
import type { Logger } from '../../log.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const MAX_METADATA_BYTES = 2 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 10_000;

/** What the hub needs from an identity provider's metadata. */
export interface IdpInfo {
  entityId: string;
  /** SingleSignOnService, HTTP-Redirect binding. */
  ssoUrl: string;
  /** SingleLogoutService, HTTP-Redirect binding, if the IdP offers single logout. */
  sloUrl?: string;
  /** Signing certificates, PEM. */
  certs: string[];
}

export class MetadataError extends Error {
  override name = 'MetadataError';
}

function toPem(base64: string): string {
  const body = base64.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** Every PEM certificate in a file's text. */
export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => c + '\n') ?? [];
}

/**
 * Read an IdP's entity from SAML metadata (an EntityDescriptor, or an EntitiesDescriptor
 * holding exactly one IdP). Throws MetadataError saying what is missing.
 */
export function parseIdpMetadata(xml: string): IdpInfo {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new MetadataError('metadata must not contain a DOCTYPE');
  const errors: string[] = [];
  const doc = new DOMParser({
    errorHandler: { warning: () => undefined, error: (m: string) => errors.push(m), fatalError: (m: string) => errors.push(m) },
  }).parseFromString(xml, 'text/xml');
  if (errors.length || !doc?.documentElement) throw new MetadataError(`metadata is not well-formed XML: ${errors[0] ?? 'empty'}`);
  const idps = Array.from(doc.getElementsByTagNameNS(MD, 'IDPSSODescriptor'));
  if (idps.length !== 1) throw new MetadataError(`metadata must describe exactly one identity provider (found ${idps.length} IDPSSODescriptor)`);
  const idp = idps[0];
  const entity = idp.parentNode as Element | null;
  const entityId = entity?.getAttribute?.('entityID');
  if (!entityId) throw new MetadataError('metadata has no entityID');
  const service = (name: string): string | undefined =>
    Array.from(idp.getElementsByTagNameNS(MD, name)).find((e) => e.parentNode === idp && e.getAttribute('Binding') === REDIRECT)?.getAttribute('Location') ?? undefined;
  const ssoUrl = service('SingleSignOnService');
  if (!ssoUrl) throw new MetadataError('metadata has no SingleSignOnService with the HTTP-Redirect binding');
  const certs = Array.from(idp.getElementsByTagNameNS(MD, 'KeyDescriptor'))
    .filter((k) => k.parentNode === idp && (!k.getAttribute('use') || k.getAttribute('use') === 'signing'))
    .flatMap((k) => Array.from(k.getElementsByTagNameNS(DS, 'X509Certificate')))
    .map((c) => toPem(c.textContent ?? ''))
    .filter((pem) => pem.length > 80);
  if (!certs.length) throw new MetadataError('metadata has no signing certificate (KeyDescriptor use="signing")');
  return { entityId, ssoUrl, sloUrl: service('SingleLogoutService'), certs };
}

export interface MetadataSourceOptions {
  file?: string;
  url?: string;
  refreshMs: number;
  /** Overrides the metadata's certificates (samlIdpCertFile). */
  pinnedCerts?: string[];
  log: Logger;
}

/**
 * The IdP's metadata: read from a file once at start (bad files stop the start), or fetched
 * from a URL on first use and refreshed; a failed refresh keeps the last good copy.
 */
export class IdpMetadataSource {
  private current: { info: IdpInfo; at: number } | undefined;
  private loading: Promise<IdpInfo> | undefined;

  constructor(private readonly options: MetadataSourceOptions) {
    if (options.file) {
      let text: string;
      try {
        text = fs.readFileSync(options.file, 'utf8');
      } catch (err) {
        throw new MetadataError(`samlIdpMetadataFile ${options.file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      try {
        this.current = { info: this.withPins(parseIdpMetadata(text)), at: Date.now() };
      } catch (err) {
        throw new MetadataError(`samlIdpMetadataFile ${options.file}: ${(err as Error).message}`);
      }
    }
  }

  /** The IdP, loading or refreshing URL metadata when due. Rejects only if no good copy was ever loaded. */
  async get(): Promise<IdpInfo> {
    const { url, refreshMs, log } = this.options;
    if (!url) return this.current!.info;
    if (this.current && Date.now() - this.current.at < refreshMs) return this.current.info;
    this.loading ??= this.fetchOnce(url).finally(() => {
      this.loading = undefined;
    });
    try {
      return await this.loading;
    } catch (err) {
      if (this.current) {
        log.warn({ url, err: (err as Error).message }, 'could not refresh IdP metadata; keeping the last good copy');
        this.current.at = Date.now();
        return this.current.info;
      }
      throw err;
    }
  }

  private async fetchOnce(url: string): Promise<IdpInfo> {
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
    if (!res.ok) throw new MetadataError(`IdP metadata ${url} answered ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_METADATA_BYTES) throw new MetadataError(`IdP metadata ${url} is too large`);
    const text = await res.text();
    if (text.length > MAX_METADATA_BYTES) throw new MetadataError(`IdP metadata ${url} is too large`);
    const info = this.withPins(parseIdpMetadata(text));
    this.current = { info, at: Date.now() };
    this.options.log.info({ url, idp: info.entityId }, 'IdP metadata loaded');
    return info;
  }

  private withPins(info: IdpInfo): IdpInfo {
    return this.options.pinnedCerts?.length ? { ...info, certs: this.options.pinnedCerts } : info;
  }
}
