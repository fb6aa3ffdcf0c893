import path from 'node:path';

/** The checkout oerhub runs from (server/cli/ under it, or dist/server/cli/ once built). */
export const REPO_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');
