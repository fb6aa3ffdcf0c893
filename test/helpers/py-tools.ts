import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface PyTools {
  /** The venv's python, with requests. */
  python: string;
  /** The jupyterhub-idle-culler command, as PyPI ships it. */
  idleCuller: string;
}

/**
 * The test venv with jupyterhub-idle-culler and requests (test/py-tools/build.sh, also run by
 * .ci/run). Builds it when missing (idempotent); throws when that fails, never skips.
 */
export function pyTools(): PyTools {
  const venv = path.resolve(REPO_ROOT, process.env.OERHUB_PY_TOOLS ?? 'test-output/py-tools');
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'test', 'py-tools', 'build.sh')], { env: { ...process.env, OERHUB_PY_TOOLS: venv }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`test/py-tools/build.sh failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  const tools = { python: path.join(venv, 'bin', 'python'), idleCuller: path.join(venv, 'bin', 'jupyterhub-idle-culler') };
  for (const file of Object.values(tools)) fs.accessSync(file, fs.constants.X_OK);
  return tools;
}
