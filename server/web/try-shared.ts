import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { UserRecord } from '../store/repos.js';
import type { ServerStatus } from '../servers/server-manager.js';
import { HubError, NotFound } from '../errors.js';
import { WorkspaceTooLarge, workspaceZip, type TryIt } from '../pool/index.js';

/**
 * What the "Try it" workspace page and its requests need, wherever they are served: the hub's
 * /hub/try/... routes (single-origin mode) and the proxy on the visitor's own origin.
 */

/** The hub's "session ended" page. */
export const TRY_ENDED = '/hub/try/ended';
/** The workspace page under an anonymous server's base path, on its own origin (served by the proxy). */
export const TRY_WORKSPACE_SUBPATH = 'oerhub/workspace';

// A zip of a throwaway workspace; larger trees are refused rather than streamed for minutes.
const ZIP_LIMITS = { maxFiles: 5000, maxBytes: 500 * 1024 * 1024 };

export type TryConfig = Pick<HubConfig, 'tryIdleTimeoutS' | 'tryMaxAgeS' | 'tryWarningS'>;

/** Where a visitor's workspace stands: no session, still starting, its start failed, or ready. */
export type WorkspaceState = 'none' | 'starting' | 'failed' | 'ready';

/** The session's deadlines as the workspace page's script reads them. */
export interface TrySessionInfo {
  state: 'ended' | 'starting' | 'active';
  now: number;
  expiresAt?: number;
  idleAt?: number;
  warningS?: number;
}

function minutes(seconds: number): string {
  if (seconds < 120) return `${seconds} seconds`;
  if (seconds < 2 * 3600) return `${Math.round(seconds / 60)} minutes`;
  return `${Math.round(seconds / 3600)} hours`;
}

/** The lifetime in words, for the pages ("20 minutes idle or 1 hours in all"). */
export function tryLifetime(config: TryConfig): { idle: string; maxAge: string } {
  return { idle: minutes(config.tryIdleTimeoutS), maxAge: minutes(config.tryMaxAgeS) };
}

/** Whether the workspace page can be shown to this anonymous user now. */
export async function workspaceState(tryIt: TryIt, manager: { status(user: UserRecord): Promise<ServerStatus> }, user: UserRecord): Promise<WorkspaceState> {
  if (!(await tryIt.pool.session(user))) return 'none';
  if ((await manager.status(user)) === 'starting') return 'starting';
  return (await tryIt.pool.whenSeeded(user)) ? 'ready' : 'failed';
}

/** The session's state and deadlines (GET /hub/try/session and its twin on the user origin). */
export async function trySessionInfo(tryIt: TryIt, config: TryConfig, user: UserRecord | null): Promise<TrySessionInfo> {
  const session = user ? await tryIt.pool.session(user) : null;
  if (!user || !session) return { state: 'ended', now: Date.now() };
  const { expiresAt, idleAt } = await tryIt.deadlines(session);
  const state = tryIt.pool.isSeeding(user.name) ? 'starting' : 'active';
  return { state, now: Date.now(), expiresAt, idleAt, warningS: config.tryWarningS };
}

/**
 * Send everything in the visitor's server as a zip. Throws a HubError (before any header is
 * sent) when there is no workspace or it can't be read; once streaming, a failure cuts the
 * download so the browser sees it failed.
 */
export async function sendWorkspaceZip(tryIt: TryIt, log: Logger, user: UserRecord | null, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (!user || !(await tryIt.pool.session(user))) throw new NotFound('This temporary workspace has ended.');
  const route = tryIt.route(user.escapedName);
  if (!route) throw new NotFound('This temporary workspace is not running.');
  const abort = new AbortController();
  req.on('close', () => abort.abort());
  let zip;
  try {
    zip = await workspaceZip(route, ZIP_LIMITS, abort.signal);
  } catch (err) {
    if (err instanceof WorkspaceTooLarge) throw new HubError('TOO_LARGE', 413, 'Your workspace is too large for one download; download the files you need from JupyterLab.');
    throw new HubError('DOWNLOAD_FAILED', 502, 'Your workspace could not be read for the download. Please try again.', (err as Error).message);
  }
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  res.writeHead(200, {
    'content-type': 'application/zip',
    'content-disposition': `attachment; filename="oerhub-workspace-${stamp}.zip"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  log.info({ user: user.name, files: zip.files }, 'workspace downloaded');
  await pipeline(zip.stream, res).catch((err: Error) => {
    log.warn({ user: user.name, err: err.message }, 'workspace download cut short');
    res.destroy();
  });
}

/** The URLs views/try-workspace.njk links to, which differ by where the page is served. */
export interface WorkspacePageUrls {
  /** Prefix of the hub's own pages and static files: '' on the hub's origin, its absolute origin elsewhere. */
  hub: string;
  /** The frame's first page. */
  landing: string;
  sessionUrl: string;
  downloadUrl: string;
  /** Where the "End session" form posts. */
  endUrl: string;
}
