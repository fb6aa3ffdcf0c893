import { int } from './types.js';

/**
 * Options of courses and publishing (issue 11). Merged into the one config schema in
 * schema.ts; every key has a description.
 */
export const coursesShape = {
  courseMaxFileMb: int(1, 10_240).default(100).describe('Largest single file an instructor may publish into a course, in MiB (a notebook, a data file, or a file inside a zip).'),
  courseMaxUploadMb: int(1, 10_240).default(200).describe('Largest upload (all files of one publication together, or a zip\'s unpacked content), in MiB.'),
  courseMaxFiles: int(1, 100_000).default(500).describe('Most files one publication may hold.'),
  courseMaxOutputMb: int(1, 10_240).default(10).describe('Largest single cell output inside a published notebook, in MiB: a notebook that carries a huge output (an embedded video, a giant table) is refused, since every student would copy it.'),
  courseSyncTimeoutS: int(1, 3600).default(60).describe('Seconds the hub spends copying a course\'s files into a student\'s server when they open a course link, before it gives up with a message (nothing half-copied is recorded as received).'),
} as const;
