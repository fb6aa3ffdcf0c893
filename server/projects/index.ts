export { ProjectRepo, type InviteRecord, type MemberRole, type ProjectRecord, type ProjectState } from './project-repo.js';
export { ProjectStorage, StorageFailed, type ProjectUsage } from './project-storage.js';
export { SmtpMailer, MailFailed, type Mailer, type OutgoingMail } from './mailer.js';
export { ProjectService, LinkGone, LinkInvalid, hashToken, type NewProject, type ProjectView } from './project-service.js';
export { ProjectAwareSpawner } from './project-spawner.js';
export { projectRoutes, type ProjectRoutesDeps } from './project-routes.js';
