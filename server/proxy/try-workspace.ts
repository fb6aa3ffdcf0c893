import { createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type nunjucks from 'nunjucks';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { ServerStatus } from '../servers/server-manager.js';
import type { TryIt } from '../pool/index.js';
import { SAMPLES_FOLDER } from '../pool/index.js';
import { HubError } from '../errors.js';
import { isAnonymousEscapedName } from '../names.js';
import { serverCookieHeader } from '../auth/server-cookie.js';
import { PAGE_HEADERS } from '../web/render.js';
import { TRY_ENDED, TRY_WORKSPACE_SUBPATH, sendWorkspaceZip, trySessionInfo, tryLifetime, workspaceState, type TryConfig, type WorkspacePageUrls } from '../web/try-shared.js';
import type { SessionCheck } from './session-check.js';
import type { SampleGallery } from '../notebooks/sample-gallery.js';
import type { BokehJs } from '../notebooks/bokeh-assets.js';
import { samplePage } from '../notebooks/sample-page.js';
import type { UserOrigins } from './origins.js';

/** One request to a path under an anonymous server's base path, with what the proxy knows of it. */
export interface ContentRequest {
  escapedName: string;
  /** The session the proxy checked for this user origin. */
  check: SessionCheck;
  /** Whether the request carries the proxy's XSRF pair (X-XSRFToken equal to the _xsrf cookie). */
  xsrfPair: boolean;
  /** Whether cookies set in the answer must be Secure. */
  secure: boolean;
}

/** Hub-owned pages the proxy answers on a user origin, before forwarding to the notebook server. */
export interface ContentOriginPages {
  /**
   * Answer the request if it is one of these pages (at once or later) and return true; return
   * false, having done nothing, when it is the notebook server's to answer. Never throws: a
   * failure becomes an error page or JSON. Only called on a user-content host, after the
   * session check.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, r: ContentRequest): boolean;
  /**
   * Optional: answer any request for PREVIEW_NAME's path, with no session (the waiting page's
   * preview of the samples). Never throws.
   */
  handlePreview?(req: http.IncomingMessage, res: http.ServerResponse): void;
}

export interface TryWorkspaceDeps {
  config: TryConfig;
  tryIt: TryIt;
  manager: { status(user: UserRecord): Promise<ServerStatus> };
  users: { get(name: string): Promise<UserRecord | null> };
  views: nunjucks.Environment;
  origins: UserOrigins;
  /** The error page or JSON the proxy shows elsewhere. */
  error(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string): void;
  log: Logger;
  /** Keys the per-page "End session" token. */
  cookieSecret: string;
  /**
   * End this hub session as sign-out does: destroy it in the store, revoke it in every hub
   * process (cached checks, open WebSockets) and release the visitor's server. Safe to repeat.
   */
  endSession(sid: string, userName: string): Promise<void>;
  /** The samples, executed and rendered once, shown at `oerhub/samples/NAME` before JupyterLab is up. */
  samples?: SampleGallery;
  /** The BokehJS the hub serves, for the rendered samples' plots. */
  bokeh?: BokehJs;
}

/**
 * The content host that shows visitors waiting in line the rendered samples (`-7e-preview`):
 * never a user's, since escapeName writes `-` only before two hex digits, and `-pr` is not.
 * Its pages need no session: they are the hub's own rendered samples, with no kernel behind them.
 */
export const PREVIEW_NAME = '-7e-preview';
const PREVIEW_PAGE = new RegExp(`^/user/${PREVIEW_NAME}/oerhub/samples/([A-Za-z0-9_-]{1,100})(?:\\?.*)?$`);

const PAGES = ['workspace', 'session', 'download', 'end'] as const;
type Page = (typeof PAGES)[number] | 'sample';
const SAMPLE_PAGE = /^samples\/([A-Za-z0-9_-]{1,100})$/;
const BASE = TRY_WORKSPACE_SUBPATH.slice(0, TRY_WORKSPACE_SUBPATH.lastIndexOf('/') + 1);
const MAX_FORM_BYTES = 4096;

/**
 * The "Try it" workspace on the visitor's own origin: `/user/NAME/oerhub/workspace` (the bar
 * around a same-origin JupyterLab frame), `.../session` (deadlines as JSON), `.../download`
 * (the zip) and `POST .../end` (End session). Framed from the hub's origin, JupyterLab would
 * be cross-site: the browser withholds its cookie and storage there, and it never loads. The
 * page's scripts and styles still come from the hub's origin, by absolute URL, and its CSP
 * allows exactly those files.
 */
export class TryWorkspace implements ContentOriginPages {
  constructor(private readonly deps: TryWorkspaceDeps) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse, r: ContentRequest): boolean {
    if (!isAnonymousEscapedName(r.escapedName)) return false;
    const found = pageOf(req.url ?? '/', r.escapedName);
    if (!found) return false;
    const { page, stem } = found;
    const method = req.method ?? 'GET';
    if (page === 'end' ? method !== 'POST' : method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: page === 'end' ? 'POST' : 'GET, HEAD', 'cache-control': 'no-store' }).end();
      return true;
    }
    this.answer(req, res, page, r, stem).catch((err: unknown) => {
      const known = err instanceof HubError;
      if (known) this.deps.log.warn({ user: r.check.user, page, err: err.message }, 'try workspace request refused');
      else this.deps.log.error({ user: r.check.user, page, err: (err as Error).message }, 'try workspace request failed');
      if (res.headersSent) return void res.destroy();
      this.deps.error(req, res, known ? err.status : 500, known ? err.userMessage : 'Something went wrong on the hub. Please try again.');
    });
    return true;
  }

  /**
   * GET /user/-7e-preview/oerhub/samples/NAME: a rendered sample for a visitor waiting in line,
   * framed by the hub's waiting page, on a content origin of its own (never the hub's). No
   * kernel, no "Edit and run": there is no server yet. Anything else on this host is a 404.
   */
  handlePreview(req: http.IncomingMessage, res: http.ServerResponse): void {
    const stem = PREVIEW_PAGE.exec(req.url ?? '')?.[1];
    const sample = stem ? this.deps.samples?.get(stem) : undefined;
    if (!sample || !this.deps.bokeh || (req.method !== 'GET' && req.method !== 'HEAD')) {
      return this.deps.error(req, res, 404, 'There is no such page at this address.');
    }
    const hub = this.deps.origins.hubOrigin();
    const { html, csp } = samplePage(this.deps.views, sample, this.deps.bokeh, { hub, labUrl: '', serverBase: '', notebookPath: `${SAMPLES_FOLDER}/${sample.file}`, framedBy: hub });
    // Framed by the hub's waiting page, another origin: its CSP's frame-ancestors names it (no X-Frame-Options, which can't).
    const { 'x-frame-options': _denied, ...headers } = PAGE_HEADERS;
    res.writeHead(200, { ...headers, 'content-security-policy': csp, 'content-length': Buffer.byteLength(html) });
    res.end(req.method === 'HEAD' ? undefined : html);
  }

  /** The token the workspace page's "End session" form carries: bound to the session, useless elsewhere. */
  endToken(sid: string): string {
    return createHmac('sha256', this.deps.cookieSecret).update(`try-end\n${sid}`).digest('base64url');
  }

  /** The first page in the workspace's frame: the rendered index when the samples are ready, else JupyterLab. */
  landing(escapedName: string): string {
    return this.deps.samples?.get('index') ? `/user/${escapedName}/${BASE}samples/index` : `/user/${escapedName}/lab/tree/${SAMPLES_FOLDER}/index.ipynb`;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse, page: Page, r: ContentRequest, stem: string): Promise<void> {
    const hub = this.deps.origins.hubOrigin();
    if (page === 'end') return this.end(req, res, r, hub);
    if (page === 'sample') return this.sample(req, res, r, hub, stem);
    const found = await this.deps.users.get(r.check.user);
    // The culler forgets the visitor with their server; their cookie may outlive both.
    const user = found && found.source === 'anonymous' && found.escapedName === r.escapedName ? found : null;
    if (page === 'session') return sendJson(res, await trySessionInfo(this.deps.tryIt, this.deps.config, user));
    if (page === 'download') return sendWorkspaceZip(this.deps.tryIt, this.deps.log, user, req, res);
    // A server being started and seeded for this visitor: say so at once rather than wait for it.
    const seeding = user !== null && this.deps.tryIt.pool.isSeeding(user.name) && (await this.deps.tryIt.pool.session(user)) !== null;
    const state = seeding ? 'starting' : user ? await workspaceState(this.deps.tryIt, this.deps.manager, user) : 'none';
    if (!user || state === 'none' || state === 'failed') return redirect(res, hub + TRY_ENDED);
    // Still starting: the rendered samples need nothing from the server, so show them now, with
    // a banner the page's script takes down once the server is ready. Without rendered samples
    // there is nothing to show yet but the progress page.
    const starting = state === 'starting';
    if (starting && !this.deps.tryIt.rendersSamples()) return redirect(res, `${hub}/hub/spawn-pending/${user.escapedName}?next=${encodeURIComponent('/hub/try/workspace')}`);
    const base = `/user/${user.escapedName}/${BASE}`;
    const urls: WorkspacePageUrls = {
      hub,
      landing: this.landing(user.escapedName),
      sessionUrl: `${base}session`,
      downloadUrl: `${base}download`,
      endUrl: `${base}end`,
    };
    const html = this.deps.views.render('try-workspace.njk', {
      user,
      csrfToken: this.endToken(r.check.sid),
      lifetime: tryLifetime(this.deps.config),
      warningS: this.deps.config.tryWarningS,
      starting,
      ...urls,
    });
    const assets = (files: string[]): string => files.map((f) => `${hub}/hub/static/${f}`).join(' ');
    // Only the hub's files this page uses; the frame is this origin's JupyterLab; the form may
    // post here and be sent on to the hub's "session ended" page.
    const csp = [
      "default-src 'none'",
      `script-src ${assets(['try-workspace.js'])}`,
      `style-src ${assets(['hub.css', 'try.css'])}`,
      `img-src ${assets(['favicon.svg'])}`,
      "connect-src 'self'",
      "frame-src 'self'",
      "frame-ancestors 'none'",
      `form-action 'self' ${hub}`,
      "base-uri 'none'",
    ].join('; ');
    res.writeHead(200, { ...PAGE_HEADERS, 'content-security-policy': csp, 'content-length': Buffer.byteLength(html) });
    res.end(req.method === 'HEAD' ? undefined : html);
  }

  /**
   * GET .../samples/NAME: the sample as executed and rendered by the hub, on the visitor's own
   * origin, under its own strict CSP. Served whether or not the visitor's server is up yet
   * (it needs nothing from it); the page joins the notebook's kernel by itself once it runs.
   */
  private sample(req: http.IncomingMessage, res: http.ServerResponse, r: ContentRequest, hub: string, stem: string): void {
    const sample = this.deps.samples?.get(stem);
    if (!sample || !this.deps.bokeh) {
      // Not rendered (yet, or not a sample): the live notebook, if there is one of that name.
      return redirect(res, `/user/${r.escapedName}/lab/tree/${SAMPLES_FOLDER}/${encodeURIComponent(stem)}.ipynb`);
    }
    const notebookPath = `${SAMPLES_FOLDER}/${sample.file}`;
    const { html, csp } = samplePage(this.deps.views, sample, this.deps.bokeh, {
      hub,
      labUrl: `/user/${r.escapedName}/lab/tree/${notebookPath}`,
      serverBase: `/user/${r.escapedName}/`,
      notebookPath,
    });
    // The visitor has something to look at: the pool's next warm-up may start now.
    this.deps.tryIt.pool.workspaceLoaded(r.check.user);
    // Framed by the workspace page, on this same origin.
    res.writeHead(200, { ...PAGE_HEADERS, 'x-frame-options': 'SAMEORIGIN', 'content-security-policy': csp, 'content-length': Buffer.byteLength(html) });
    res.end(req.method === 'HEAD' ? undefined : html);
  }

  /** POST .../end: End session, then the hub's "session ended" page, top-level. */
  private async end(req: http.IncomingMessage, res: http.ServerResponse, r: ContentRequest, hub: string): Promise<void> {
    const form = await readForm(req);
    const given = form.get('_csrf') ?? headerValue(req.headers['x-csrf-token']) ?? '';
    if (!r.xsrfPair && !sameToken(given, this.endToken(r.check.sid))) {
      throw new HubError('XSRF', 403, 'This request is missing its XSRF token. Reload the page and try again.');
    }
    // Even when the visitor was already forgotten (culled): the hub session goes too.
    await this.deps.endSession(r.check.sid, r.check.user);
    this.deps.log.info({ user: r.check.user }, 'try session ended from the workspace');
    res
      .writeHead(303, {
        location: hub + TRY_ENDED,
        // The session is gone already; the cookie would only send the visitor through sign-in.
        'set-cookie': serverCookieHeader(r.escapedName, '', { secure: r.secure, maxAgeS: 0 }),
        'cache-control': 'no-store',
      })
      .end();
  }
}

function pageOf(url: string, escapedName: string): { page: Page; stem: string } | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const prefix = `/user/${escapedName}/${BASE}`;
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  const sample = SAMPLE_PAGE.exec(rest);
  if (sample) return { page: 'sample', stem: sample[1]! };
  return (PAGES as readonly string[]).includes(rest) ? { page: rest as Page, stem: '' } : undefined;
}

function redirect(res: http.ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store' }).end();
}

function sendJson(res: http.ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(text);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A small url-encoded form body (the End session form); anything else reads as empty. */
async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    req.resume();
    return new URLSearchParams();
  }
  let body = '';
  for await (const chunk of req) {
    body += (chunk as Buffer).toString('latin1');
    if (body.length > MAX_FORM_BYTES) throw new HubError('TOO_LARGE', 413, 'That form is too large.');
  }
  return new URLSearchParams(body);
}
