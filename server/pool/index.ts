import type { Route } from '../proxy/route-table.js';
import type { TrySession } from './pool-repo.js';
import type { WarmPool } from './warm-pool.js';

export { WarmPool, SAMPLES_FOLDER, type WarmPoolOptions, type PoolStatus, type QueuePlace, type ReleaseReason } from './warm-pool.js';
export { PoolRepo, type TrySession } from './pool-repo.js';
export { hasBusyKernel, copyFolderIn, workspaceZip, WorkspaceTooLarge, type ZipLimits } from './jupyter-api.js';

/** What the web routes need of "Try it" (WebDeps.tryIt), built in createHub. */
export interface TryIt {
  pool: WarmPool;
  /** When a visitor's session ends if nothing changes: max age, and idle timeout from the last activity. */
  deadlines(session: TrySession): Promise<{ expiresAt: number; idleAt: number }>;
  /** The route of a server (target and secret), for calls into it such as the zip download. */
  route(escapedName: string): Route | undefined;
  /**
   * Whether the samples are rendered (server/notebooks/sample-gallery.ts), so a visitor whose
   * server is still starting can be shown them at once on their own origin.
   */
  rendersSamples(): boolean;
}
