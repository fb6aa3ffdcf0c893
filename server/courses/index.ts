/**
 * Courses (issue 11): instructors publish versioned notebooks; students open them from one
 * link and their edits are never lost. Other parts import only from here.
 */
export { CourseRepo, type CourseRecord, type VersionRecord, type SyncRecord, type ManifestEntry } from './course-repo.js';
export { CourseFiles } from './course-files.js';
export { CourseService, LOCAL_PROFILE, diffOf, type CourseInput } from './course-service.js';
export { courseRoutes, homeCourses, type CoursesWeb } from './course-routes.js';
export { planMerge, besideName, asideName, type MergeAction, type MergeDecision } from './merge.js';
export { JupyterFolder, SyncFailed, type StudentFolder } from './course-sync.js';
export { UploadRefused, checkCoursePath, checkNotebook } from './upload.js';
