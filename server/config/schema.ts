import { z } from 'zod';
import { apiShape } from './api-schema.js';
import { list, bool, int } from './types.js';
import { dockerShape } from './docker-schema.js';
import { ssoShape } from './sso-schema.js';
import { poolShape } from './pool-schema.js';
import { storeShape } from './store-schema.js';
import { clusterShape } from './cluster-schema.js';
import { serversShape } from './servers-schema.js';
import { cullerShape } from './culler-schema.js';
import { isolationShape } from './isolation-schema.js';
import { frontDoorShape } from './frontdoor-schema.js';
import { originShape } from './origin-schema.js';
import { throttleShape } from './throttle-schema.js';
import { opsShape } from './ops-schema.js';
import { adminShape } from './admin-schema.js';
import { projectsShape } from './projects-schema.js';
import { coursesShape } from './courses-schema.js';
import { sharingShape } from './sharing-schema.js';
import { datasetsShape } from './datasets-schema.js';

// Run as root, the hub gives each local server its own Unix account, which must be able to
// reach the venv and its home: a checkout under /root (0700) can't be, so root's defaults sit
// where system services keep theirs (images/venv/build.sh uses the same venv path).
const AS_ROOT = process.getuid?.() === 0;
export const ROOT_DATA_DIR = '/var/lib/oerhub';
export const ROOT_NOTEBOOK_VENV = '/opt/oerhub/venv-notebook';

/**
 * Every option of the hub. The description is the documentation: `--help` and the README's
 * configuration table are generated from it. Environment variable: OERHUB_ + the key in
 * SCREAMING_SNAKE_CASE (e.g. `redisUrl` -> OERHUB_REDIS_URL).
 */
export const configShape = {
  port: int(0, 65535).default(8000).describe('TCP port the hub listens on (HTTP; nginx terminates TLS in front).'),
  bindHost: z.string().min(1).default('127.0.0.1').describe('Address the hub listens on. Keep 127.0.0.1 behind a local nginx.'),
  publicUrl: z
    .string()
    .url()
    .optional()
    .describe('The URL users type, e.g. https://hub.example.edu. Used for the WebSocket Origin check and Secure cookies; if unset, the Host header is trusted.'),
  dataDir: z
    .string()
    .min(1)
    .default(AS_ROOT ? ROOT_DATA_DIR : './data')
    .describe(`Folder for the hub's own files: the state store, generated secrets, local-process homes, server logs. Default \`./data\`, or \`${ROOT_DATA_DIR}\` when the hub runs as root.`),
  ...storeShape,
  spawner: z.enum(['local', 'docker']).default('local').describe('How notebook servers run. `local`: a jupyter process per user from a Python virtual environment; `docker`: a container per user.'),
  notebookVenv: z
    .string()
    .default(AS_ROOT ? ROOT_NOTEBOOK_VENV : './.venv-notebook')
    .describe(`Python virtual environment with jupyterlab, made by \`npm run venv\` (local spawner). Default \`./.venv-notebook\`, or \`${ROOT_NOTEBOOK_VENV}\` when the hub runs as root.`),
  notebookApp: z.enum(['lab', 'server']).default('lab').describe('Start `jupyter lab` (JupyterLab UI) or plain `jupyter server`.'),
  labStaticFromHub: bool
    .default(true)
    .describe("Serve JupyterLab's front end (17 MB of content-hashed files) once from the hub, at `/hub/static/lab/BUILD/`, for every server (the local spawner's from the hub's environment, the Docker spawner's copied out of each image), so a browser caches it across users' and \"Try it\" workspaces instead of fetching it per origin. `false`: each server serves its own."),
  defaultUrl: z.string().default('/lab').describe('Where a user lands inside their server.'),
  startTimeoutS: int(1, 3600).default(60).describe('Seconds a server may take to answer before its start counts as failed.'),
  stopServersOnExit: bool.default(false).describe('Stop every notebook server when the hub exits. Off by default: a hub restart keeps students\' work running.'),
  adminUsers: list.default(['admin']).describe('Usernames that get the admin role.'),
  adminPassword: z.string().min(8).optional().describe('Password of the first admin account. If unset, one is generated at first start and printed once.'),
  cookieSecret: z.string().min(32).optional().describe('Secret that signs cookies (32+ characters). If unset, one is generated into dataDir and kept.'),
  sessionMaxAgeS: int(1, 60 * 60 * 24 * 90).default(60 * 60 * 24 * 7).describe('How long a sign-in lasts, in seconds.'),
  secureCookies: z.enum(['auto', 'always', 'never']).default('auto').describe('Mark cookies Secure: `auto` does so when publicUrl is https or nginx says (through frontDoorSocket) the request came over TLS.'),
  loginRateLimit: int(1, 10000).default(10).describe('Failed sign-ins allowed per address and username in 15 minutes, and per browser for a user who signed in with it before.'),
  proxyMaxSockets: int(1, 10000).default(64).describe('Keep-alive connections the proxy holds open to each notebook server.'),
  sessionCacheMs: int(0, 600000).default(10000).describe('How long the proxy trusts a checked session before asking the store again. Sign-out on this hub takes effect at once regardless.'),
  activityFlushMs: int(100, 600000).default(30000).describe('How often the proxy writes servers\' last-activity times to the store.'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
  ...dockerShape,
  ...datasetsShape,
  ...ssoShape,
  ...poolShape,
  ...clusterShape,
  ...serversShape,
  ...cullerShape,
  ...isolationShape,
  ...frontDoorShape,
  ...originShape,
  ...throttleShape,
  ...opsShape,
  ...apiShape,
  ...adminShape,
  ...projectsShape,
  ...coursesShape,
  ...sharingShape,
} as const;

export const configSchema = z.object(configShape).strict();

export type HubConfig = Readonly<z.infer<typeof configSchema>>;
export type ConfigKey = keyof typeof configShape;
