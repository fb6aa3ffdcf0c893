import type http from 'node:http';
import type { HubConfig } from '../config/index.js';
import { isEscapedName } from '../names.js';

/** What a request's Host header says it is for. */
export type HostKind =
  /** The hub's pages and API (and, in single-origin mode, every user server). */
  | { kind: 'hub' }
  /** A user-content host: `owner` is the one user it serves (subdomain mode), or null for the shared content host. */
  | { kind: 'content'; owner: string | null }
  /** Under the user-content domain, but not a user's host (`a.b.localhost`, `Bad_Name.localhost`). */
  | { kind: 'unknown-content' };

export type OriginMode = HubConfig['originMode'];

type OriginOptions = Pick<HubConfig, 'originMode' | 'userContentDomain' | 'userContentHost' | 'publicUrl' | 'bindHost'>;

/**
 * The origin model (issue 9). Hub pages and the REST API live on the hub's origin; each user
 * server on `NAME.<userContentDomain>` (or all on one shared content host), so a script in a
 * notebook is cross-origin to the hub and to every other user's server. Dispatch is by the
 * Host header, which nginx passes through unchanged; X-Forwarded-Host is never used for it
 * (a kernel on this machine could send any).
 */
export class UserOrigins {
  readonly mode: OriginMode;
  private readonly scheme: string;
  private readonly hubHostname: string | undefined;
  private readonly publicOrigin: string | undefined;
  private readonly publicPort: string;
  private readonly bindHost: string;

  /** `port` tells the port the hub listens on (used when publicUrl is unset; known only after listen). */
  constructor(private readonly config: OriginOptions, private readonly port: () => number) {
    this.mode = config.originMode;
    if (config.publicUrl) {
      const pub = new URL(config.publicUrl);
      this.scheme = pub.protocol.slice(0, -1);
      this.publicPort = pub.port ? `:${pub.port}` : '';
      this.hubHostname = pub.hostname.toLowerCase();
      this.publicOrigin = pub.origin;
    } else {
      this.scheme = 'http';
      this.publicPort = '';
    }
    const bind = config.bindHost === '0.0.0.0' || config.bindHost === '::' ? '127.0.0.1' : config.bindHost;
    this.bindHost = bind.includes(':') ? `[${bind}]` : bind;
  }

  private get portSuffix(): string {
    return this.publicOrigin ? this.publicPort : `:${this.port()}`;
  }

  private get hubUrl(): string {
    return this.publicOrigin ?? `http://${this.bindHost}:${this.port()}`;
  }

  /** Whether user servers are kept off the hub's origin (every mode but `single`). */
  get isolated(): boolean {
    return this.mode !== 'single';
  }

  /** The hub's origin for absolute links from a user origin: publicUrl's, or the listening address. */
  hubOrigin(): string {
    return this.hubUrl;
  }

  /** The origin one user's server is served from, e.g. http://alice.localhost:8000. */
  contentOrigin(escapedName: string): string {
    if (this.mode === 'single') return this.hubUrl;
    const host = this.mode === 'shared-host' ? this.config.userContentHost : `${escapedName}.${this.config.userContentDomain}`;
    return `${this.scheme}://${host}${this.portSuffix}`;
  }

  /** Classify a request by its Host header. */
  classify(req: http.IncomingMessage): HostKind {
    if (this.mode === 'single') return { kind: 'hub' };
    const hostname = hostnameOf(req.headers.host);
    if (hostname === undefined || hostname === this.hubHostname) return { kind: 'hub' };
    if (this.mode === 'shared-host') return hostname === this.config.userContentHost ? { kind: 'content', owner: null } : { kind: 'hub' };
    const suffix = `.${this.config.userContentDomain}`;
    if (!hostname.endsWith(suffix)) return { kind: 'hub' };
    const label = hostname.slice(0, -suffix.length);
    return isEscapedName(label) ? { kind: 'content', owner: label } : { kind: 'unknown-content' };
  }

  /**
   * Whether an Origin header is the hub's own: publicUrl's origin when set, else the origin
   * of the hub host the request came to (never a user-content host).
   */
  isHubOrigin(origin: string, req: http.IncomingMessage, proto: string): boolean {
    if (this.config.publicUrl) return origin === this.hubUrl;
    if (this.classify(req).kind !== 'hub' && this.isolated) return false;
    const host = req.headers.host;
    return host !== undefined && origin === `${proto}://${host.toLowerCase()}`;
  }
}

/** The lower-cased host name of a Host header, without the port; undefined when absent or malformed. */
export function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? undefined : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  const name = colon === -1 ? h : h.slice(0, colon);
  // A trailing dot names the same host; browsers keep it, so strip it here to match.
  return (name.endsWith('.') ? name.slice(0, -1) : name) || undefined;
}
