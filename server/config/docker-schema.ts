import { z } from 'zod';
import { int, json } from './types.js';

/** A name that is safe inside Docker object names, labels and folder names. */
const simpleName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,39}$/, 'lower-case letters, digits, ".", "_" or "-", at most 40, starting with a letter or digit');

export const dockerProfileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits and "-", at most 31'),
    displayName: z.string().min(1).max(80),
    image: z.string().min(1).max(255),
    description: z.string().max(300).default(''),
    /** Names of the datasets this profile mounts; unset: every dataset. */
    datasets: z.array(simpleName).optional(),
  })
  .strict();

export const dockerDatasetSchema = z
  .object({
    /** A named Docker volume, or an absolute host folder. */
    source: z.string().refine((s) => s.startsWith('/') ? !s.split('/').includes('..') : /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(s), 'a volume name or an absolute host folder without ".."'),
    /** Folder name under <dockerNotebookHome>/datasets/. */
    name: simpleName,
    /** Also mounted into anonymous "Try it" servers. Off by default: a course's data is not for visitors. */
    public: z.boolean().default(false),
  })
  .strict();

export type DockerProfile = z.infer<typeof dockerProfileSchema>;
export type DockerDataset = z.infer<typeof dockerDatasetSchema>;

/**
 * Options of the Docker spawner (issue 3). Merged into the one config schema in schema.ts;
 * same rules: every key has a description, env var OERHUB_ + SCREAMING_SNAKE_CASE.
 */
export const dockerShape = {
  dockerSocket: z.string().min(1).default('/var/run/docker.sock').describe('Unix socket of the Docker engine (spawner=docker). The hub talks to it; no notebook container ever gets it.'),
  dockerInstance: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,23}$/, 'lower-case letters, digits and "-", at most 24')
    .default('oerhub')
    .describe('Name of this hub on the Docker engine: prefix of its containers (`<instance>-nb-<user>`), home volumes (`<instance>-home-<user>`) and network, and the value of their `org.oerhub.instance` label. Two hubs on one engine need different values.'),
  dockerProfiles: json(z.array(dockerProfileSchema).min(1))
    .default([
      { name: 'python', displayName: 'Python', image: 'oerhub/python:latest', description: 'JupyterLab with pandas, numpy, bokeh and folium' },
      { name: 'r', displayName: 'R', image: 'oerhub/r:latest', description: 'JupyterLab with the R kernel' },
    ])
    .describe('Images a student may choose from (JSON list of {name, displayName, image, description, datasets?}); the first is the default, and the one "Try it" servers use. `datasets` lists the names of the dockerDatasets its servers mount (unset: all). Users only ever send a profile name; the image comes from here.'),
  dockerNetwork: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/)
    .optional()
    .describe('Docker network of the notebook containers (default `<instance>-notebooks`). Created if missing as a bridge with inter-container traffic off.'),
  dockerDatasets: json(z.array(dockerDatasetSchema))
    .default([])
    .describe('Read-only datasets (JSON list of {source, name, public?}): source is a Docker volume or an absolute host folder; it appears at `<dockerNotebookHome>/datasets/<name>` in the servers of every profile that lists it (or of every profile without a list), and in those started from the link of a course that lists it. Anonymous "Try it" servers get only those marked `public: true`.'),
  dockerNotebookHome: z
    .string()
    .regex(/^\/[a-zA-Z0-9_/.-]+$/)
    .default('/home/student')
    .describe('Home folder of the notebook user inside the images; the home volume is mounted here.'),
  dockerMemLimitMb: int(64, 1024 * 1024).default(2048).describe('Memory limit per container in MiB, swap included (a cell that allocates more kills its kernel, not the hub).'),
  dockerCpuLimit: z.coerce.number().min(0.05).max(256).default(1).describe('CPU limit per container, in cores (e.g. 0.5).'),
  dockerPidsLimit: int(16, 1_000_000).default(512).describe('Most processes and threads a container may run (stops fork bombs).'),
  dockerLogMaxSizeMb: int(1, 1024).default(10).describe('Size of a container log file before it is rotated, in MiB.'),
  dockerLogMaxFiles: int(1, 100).default(3).describe('Rotated container log files kept.'),
  dockerStopGraceS: int(0, 300).default(5).describe('Seconds a container gets to shut its kernels down after SIGTERM before it is killed.'),
} satisfies Record<string, z.ZodTypeAny>;

/** Cross-field checks of the Docker options: every dataset a profile lists must be configured. */
export function dockerProblems(config: { dockerProfiles: readonly DockerProfile[]; dockerDatasets: readonly DockerDataset[] }): string[] {
  const names = new Set(config.dockerDatasets.map((d) => d.name));
  return config.dockerProfiles.flatMap((p) =>
    (p.datasets ?? []).filter((n) => !names.has(n)).map((n) => `dockerProfiles (OERHUB_DOCKER_PROFILES): profile ${p.name} lists dataset ${JSON.stringify(n)}, which is not in dockerDatasets`),
  );
}
