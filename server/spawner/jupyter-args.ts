import type { SpawnSpec } from './spawner.js';

/** The hub's pages as a server on the hub's own origin sees them. */
export const DEFAULT_HUB_URL = '/hub/';

/** Our Jupyter IdentityProvider (images/venv/oerhub_singleuser): accepts only the proxy's secret header. */
export const IDENTITY_PROVIDER = 'oerhub_singleuser.OerhubIdentityProvider';

/**
 * The Jupyter command-line flags every spawner uses, so the security-relevant ones can't drift
 * apart between local processes and containers. The caller prepends the program.
 */
export function jupyterFlags(spec: Pick<SpawnSpec, 'baseUrl' | 'defaultUrl'>, o: { app: 'lab' | 'server'; ip: string; port: number; rootDir: string; labStaticUrl?: string }): string[] {
  const flags = [
    o.app,
    `--ServerApp.ip=${o.ip}`,
    `--ServerApp.port=${o.port}`,
    // Without this Jupyter quietly takes the next free port, which the hub would never find.
    '--ServerApp.port_retries=0',
    `--ServerApp.base_url=${spec.baseUrl}`,
    `--ServerApp.root_dir=${o.rootDir}`,
    `--ServerApp.default_url=${spec.defaultUrl}`,
    `--ServerApp.identity_provider_class=${IDENTITY_PROVIDER}`,
    // The proxy passes the browser's Host header through; Jupyter's Host allow-list would refuse it.
    '--ServerApp.allow_remote_access=True',
    // A pattern that matches nothing: Jupyter then never echoes an Origin into
    // Access-Control-Allow-Origin (it does so for every token-authenticated request otherwise),
    // while Origin == Host still passes.
    '--ServerApp.allow_origin_pat=(?!)',
    '--no-browser',
  ];
  // Students must not install extensions into the shared environment.
  if (o.app === 'lab') {
    flags.push('--LabApp.extension_manager=readonly');
    // window.jupyterapp: the "Try it" workspace page asks JupyterLab to save open notebooks
    // before "Download my work". Only pages of the same origin can reach it.
    flags.push('--LabApp.expose_app_in_browser=True');
    // JupyterLab's build from the hub (web/lab-static.ts), one URL for every server: cached across workspaces.
    if (o.labStaticUrl) flags.push(`--LabApp.override_static_url=${o.labStaticUrl}`);
  }
  return flags;
}
