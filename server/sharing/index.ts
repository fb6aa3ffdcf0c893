/**
 * Read-only sharing (issue 11): a notebook snapshot rendered by the hub, sanitised, shown on
 * an origin that is neither the hub's nor any user's, under a CSP sandbox. Other parts import
 * only from here.
 */
export { ShareRepo, type ShareRecord, type Audience } from './share-repo.js';
export { ShareService, AUDIENCES, COPY_TTL_MS, notebookPath, type ShareServiceOptions } from './share-service.js';
export { ShareOrigin, SHARE_HOST_LABEL, SHARE_PATH_PREFIX } from './share-origin.js';
export { ShareContent } from './share-content.js';
export { shareRoutes } from './share-routes.js';
export { sharePage, SHARE_CSP } from './share-page.js';
export * from './errors.js';
