import { z } from 'zod';
import { json } from './types.js';

export const localDatasetSchema = z
  .object({
    /** An absolute host folder. */
    source: z.string().refine((s) => s.startsWith('/') && !s.split('/').includes('..') && !s.includes('\0'), 'an absolute host folder without ".."'),
    /** Link name under <home>/datasets/. */
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,39}$/, 'lower-case letters, digits, ".", "_" or "-", at most 40, starting with a letter or digit'),
  })
  .strict();

export type LocalDataset = z.infer<typeof localDatasetSchema>;

/**
 * Read-only datasets of the local-process spawner (issue 11: per-course datasets). The Docker
 * spawner's are dockerDatasets (docker-schema.ts). Merged into the one config schema in schema.ts.
 */
export const datasetsShape = {
  localDatasets: json(z.array(localDatasetSchema))
    .default([])
    .describe('Read-only datasets of the local spawner (JSON list of {source, name}): source is an absolute host folder. A course that lists one gets it linked at `~/datasets/<name>` in the servers its students start from the course link, readable (never writable) by their account through an ACL entry the hub adds and removes; nobody else gets it. Keep the folder closed to other accounts (e.g. 0750 root:root), or every local server can read it.'),
} satisfies Record<string, z.ZodTypeAny>;
