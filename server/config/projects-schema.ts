import { z } from 'zod';
import { bool, int, list } from './types.js';

/** Options of research project workspaces, invitations and local accounts (issue 12). Merged into schema.ts. */
export const projectsShape = {
  projectUnits: list
    .default(['Health', 'Human Services', 'International'])
    .describe('Units a research project can belong to (the data library\'s list), shown on the new-project form.'),
  projectLibrarians: list
    .default([])
    .describe('Usernames of data librarians: like admins for projects (create, see, manage members, close), nothing else.'),
  projectImageProfiles: list
    .default(['python', 'r'])
    .describe('Image profiles a project may offer its members (names of dockerProfiles, e.g. python, r, and a site-built licensed image such as stata; see README, "For data librarians").'),
  projectOnlyProfiles: list
    .default(['stata'])
    .describe('Image profiles (dockerProfiles names) offered only to members of a project that lists them, such as a licensed Stata image; every other profile is the site\'s default, offered to everyone. The first dockerProfile can\'t be one (it is the default and the "Try it" image).'),
  projectsDir: z
    .string()
    .min(1)
    .optional()
    .describe('Folder that holds each project\'s filesystem image and its mount point. Default: dataDir/projects.'),
  projectMaxCapacityGb: int(1, 100_000).default(500).describe('The largest storage capacity a project may be given, in GB.'),
  inviteTtlS: int(5, 90 * 24 * 3600).default(72 * 3600).describe('How long an invitation or password-reset link stays valid, in seconds (default 72 hours). Each works once.'),
  inviteUseSso: bool
    .default(false)
    .describe('Invited members sign in through the site\'s SSO (SAML or the front proxy) instead of setting a hub password: the invitation page sends them to the sign-in page and adds them to the project once signed in.'),
  smtpHost: z.string().min(1).default('127.0.0.1').describe('SMTP server for invitation and password-reset mail.'),
  smtpPort: int(1, 65535).default(25).describe('Port of the SMTP server (587 for STARTTLS submission, 465 for implicit TLS).'),
  smtpSecurity: z
    .enum(['starttls', 'tls', 'none'])
    .default('starttls')
    .describe('`tls`: TLS from the first byte (port 465); `starttls`: plain connection upgraded with STARTTLS, which must succeed; `none`: no TLS (a local relay only).'),
  smtpUser: z.string().min(1).optional().describe('SMTP user name, if the server needs authentication.'),
  smtpPassword: z.string().min(1).optional().describe('SMTP password (keep it in the environment, OERHUB_SMTP_PASSWORD).'),
  smtpTimeoutS: int(1, 600).default(20).describe('Seconds to wait for the SMTP server before an invitation counts as not sent.'),
  mailFrom: z.string().min(3).default('oerhub <noreply@localhost>').describe('From: address of the hub\'s mail.'),
} satisfies Record<string, z.ZodTypeAny>;

/** Cross-field checks: the default profile (the first) must be one everybody may start. */
export function projectsProblems(c: { dockerProfiles: readonly { name: string }[]; projectOnlyProfiles: readonly string[]; spawner: string }): string[] {
  const first = c.dockerProfiles[0]?.name;
  if (c.spawner !== 'docker' || first === undefined || !c.projectOnlyProfiles.includes(first)) return [];
  return [`projectOnlyProfiles (OERHUB_PROJECT_ONLY_PROFILES): ${first} is the first of dockerProfiles, the default everybody starts; put another profile first, or leave ${first} out of projectOnlyProfiles`];
}
