import fs from 'node:fs';
import path from 'node:path';
import { ROOT_NOTEBOOK_VENV } from '../../server/config/schema.js';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The project's notebook venv: $OERHUB_NOTEBOOK_VENV (relative to the repository root, as in
 * images/venv/build.sh) or the default (./.venv-notebook, or /opt/oerhub/venv-notebook as root). Throws rather than skipping: a test suite that
 * quietly skips every spawner test would look green on a hub that can't start a server.
 */
export function notebookVenv(): string {
  // The same default as the hub's and images/venv/build.sh's.
  const configured = process.env.OERHUB_NOTEBOOK_VENV ?? (process.getuid?.() === 0 ? ROOT_NOTEBOOK_VENV : './.venv-notebook');
  const venv = path.resolve(REPO_ROOT, configured);
  const jupyter = path.join(venv, 'bin', 'jupyter');
  try {
    fs.accessSync(jupyter, fs.constants.X_OK);
  } catch {
    throw new Error(`${jupyter} is missing: build the notebook environment first with \`npm run venv\` (bash images/venv/build.sh).`);
  }
  return venv;
}
