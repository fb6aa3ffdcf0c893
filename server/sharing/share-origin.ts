import type http from 'node:http';
import type { HubConfig } from '../config/index.js';
import { hostnameOf } from '../proxy/origins.js';

/**
 * The host label of the shared-notebook origin in `subdomain` mode. escapeName() writes a `-`
 * only before two hex digits (or `-z` plus a hash at position 37), so `-s` never comes out of
 * it: no username can ever be served from this host.
 */
export const SHARE_HOST_LABEL = 'oerhub-share';
/** The path prefix of shared views on the shared content host (`shared-host` mode), never a /user/ path. */
export const SHARE_PATH_PREFIX = '/oerhub-share/';

type Options = Pick<HubConfig, 'originMode' | 'userContentDomain' | 'userContentHost' | 'publicUrl'>;

/**
 * Where shared notebooks are served: an origin that is neither the hub's nor any user's, so a
 * page there is cross-origin to the hub (its cookie never goes there) and to every server.
 * `subdomain` mode: `oerhub-share.<userContentDomain>`. `shared-host` mode: the shared content
 * host under /oerhub-share/ (apart from the hub; the pages are sandboxed to an opaque origin
 * anyway). `single` mode has no origin apart from the hub's: sharing is off there.
 */
export class ShareOrigin {
  constructor(private readonly config: Options, private readonly port: () => number) {}

  /** Whether this hub can serve shared notebooks at all. */
  get available(): boolean {
    return this.config.originMode !== 'single';
  }

  private get host(): string {
    return this.config.originMode === 'shared-host' ? this.config.userContentHost! : `${SHARE_HOST_LABEL}.${this.config.userContentDomain}`;
  }

  /** The absolute URL prefix of views, e.g. http://oerhub-share.localhost:8000/oerhub-share/. */
  base(): string {
    if (this.config.publicUrl) {
      const pub = new URL(this.config.publicUrl);
      return `${pub.protocol}//${this.host}${pub.port ? `:${pub.port}` : ''}${SHARE_PATH_PREFIX}`;
    }
    return `http://${this.host}:${this.port()}${SHARE_PATH_PREFIX}`;
  }

  /**
   * Whether a request is for the share origin. In `subdomain` mode every path of its host is
   * (the handler refuses what it doesn't serve); in `shared-host` mode only the prefix.
   */
  matches(req: http.IncomingMessage): boolean {
    if (!this.available) return false;
    const hostname = hostnameOf(req.headers.host);
    if (hostname !== this.host) return false;
    return this.config.originMode === 'subdomain' || (req.url ?? '').startsWith(SHARE_PATH_PREFIX);
  }
}
