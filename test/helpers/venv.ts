import fs from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The project's notebook venv: $OERHUB_NOTEBOOK_VENV (relative to the repository root, as in
 * images/venv/build.sh) or ./.venv-notebook. Throws rather than skipping: a test suite that
 * quietly skips every spawner test would look green on a hub that can't start a server.
 */
export function notebookVenv(): string {
  const configured = process.env.OERHUB_NOTEBOOK_VENV ?? './.venv-notebook';
  const venv = path.resolve(REPO_ROOT, configured);
  const jupyter = path.join(venv, 'bin', 'jupyter');
  try {
    fs.accessSync(jupyter, fs.constants.X_OK);
  } catch {
    throw new Error(`${jupyter} is missing: build the notebook environment first with \`npm run venv\` (bash images/venv/build.sh).`);
  }
  return venv;
}
