import { createHash, randomBytes } from 'node:crypto';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { BadRequest, Conflict, Forbidden, HubError, NotFound } from '../errors.js';
import type { UserRecord } from '../store/repos.js';
import type { InviteRecord, MemberRole, ProjectRecord, ProjectRepo } from './project-repo.js';
import type { ProjectStorage, ProjectUsage } from './project-storage.js';
import type { Mailer } from './mailer.js';

/** A link that was never one of ours (a typo, a cut-off copy): malformed 400, well-formed but unknown 404. */
export class LinkInvalid extends HubError {
  constructor(status: 400 | 404) {
    super('LINK_INVALID', status, status === 400 ? 'This link is not complete or has been changed. Open the link from your email again, all of it.' : 'This link is not known here. It may have been changed; open the link from your email again, all of it.');
  }
}

/** A link that worked once but not any more: used, withdrawn, replaced or expired (410). */
export class LinkGone extends HubError {
  constructor(readonly why: 'used' | 'revoked' | 'replaced' | 'expired') {
    const text = {
      used: 'This link has been used already. Each link works once. If that was you, sign in with your password.',
      revoked: 'This invitation was withdrawn. Ask the project lead for a new one.',
      replaced: 'A newer invitation was sent to you; please use the link in the newest email.',
      expired: 'This link has expired. Ask the project lead (or, for a password reset, ask for a new link).',
    }[why];
    super('LINK_GONE', 410, text);
  }
}

export interface NewProject {
  number: string;
  name: string;
  unit: string;
  leadEmail: string;
  capacityGb: number;
  profiles: string[];
}

export interface ProjectView {
  project: ProjectRecord;
  members: { name: string; role: MemberRole }[];
  invites: { email: string; expiresAt: number; expired: boolean }[];
  usage: ProjectUsage | null;
  /** The viewer's running server lacks this project's folder until it restarts (Docker). */
  restartNeeded: boolean;
  /** What the viewer may do. */
  canManage: boolean;
  isAdmin: boolean;
}

export interface ProjectServiceOptions {
  config: HubConfig;
  repo: ProjectRepo;
  storage: ProjectStorage;
  mailer: Mailer;
  log: Logger;
  /** The hub's address for links in mail, e.g. https://hub.example.edu. */
  hubOrigin(): string;
  /** A member's Unix account name (local spawner with isolation), or null where there is none. */
  accountOf(user: UserRecord): string | null;
  /** Lose or gain the folder in a running server: stops it (with a message on their home page). */
  stopServer(user: string, reason: string): Promise<void>;
  /**
   * A member was added: give their running server its folders now, if the spawner can
   * (Spawner.addProjects). 'restart': a server runs but can't be changed (Docker). Unset: never live.
   */
  giveRunningServer?(user: UserRecord, mounts: ProjectMount[]): Promise<'added' | 'restart' | 'not-running'>;
  /** Whether the user's server runs now (for the "restart to see the folder" notice). */
  serverRunning?(user: UserRecord): Promise<boolean>;
}

export type ProjectMount = { number: string; shared: string; datasets: string };

const NUMBER = /^P-[0-9]{1,8}$/;
const EMAIL = /^[^\s@<>()"',;:]+@[^\s@<>()"',;:]+\.[^\s@<>()"',;:]+$/;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** "72 hours", "10 minutes", "30 seconds". */
function describeDuration(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} hours`;
  if (s % 60 === 0) return `${s / 60} minutes`;
  return `${s} seconds`;
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * Research projects: creation (with their storage), members, invitations by email. The one
 * place that decides who may see or change a project.
 */
export class ProjectService {
  constructor(private readonly o: ProjectServiceOptions) {}

  isLibrarian(user: UserRecord): boolean {
    return user.roles.includes('admin') || this.o.config.projectLibrarians.includes(user.name);
  }

  /** Check and normalise a creation form. Throws BadRequest naming the field. */
  parseNew(body: Record<string, unknown>): NewProject {
    const text = (k: string): string => (typeof body[k] === 'string' ? (body[k] as string).trim() : '');
    const number = text('number').toUpperCase();
    if (!NUMBER.test(number)) throw new BadRequest('The project number must look like P-1234 (P, a dash, up to 8 digits).');
    const name = text('name');
    if (!name || name.length > 200) throw new BadRequest('The project needs a name (at most 200 characters).');
    const unit = text('unit');
    if (!this.o.config.projectUnits.includes(unit)) throw new BadRequest(`Choose the unit from the list: ${this.o.config.projectUnits.join(', ')}.`);
    const leadEmail = text('leadEmail').toLowerCase();
    if (!EMAIL.test(leadEmail) || leadEmail.length > 254) throw new BadRequest("The lead's email address is not valid.");
    const capacityGb = Number(text('capacityGb'));
    if (!Number.isFinite(capacityGb) || capacityGb <= 0 || capacityGb > this.o.config.projectMaxCapacityGb || Math.round(capacityGb * 1024) < 16) {
      throw new BadRequest(`The storage capacity must be a number of GB from 0.016 to ${this.o.config.projectMaxCapacityGb}.`);
    }
    const raw = body.profiles;
    const profiles = (Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : []).filter((p): p is string => typeof p === 'string');
    const unknown = profiles.filter((p) => !this.o.config.projectImageProfiles.includes(p));
    if (unknown.length) throw new BadRequest(`Unknown image profile: ${unknown.join(', ')}.`);
    return { number, name, unit, leadEmail, capacityGb, profiles: profiles.length ? profiles : [this.o.config.projectImageProfiles[0] ?? 'python'] };
  }

  /**
   * Create the project, its filesystem, and invite its lead. All or nothing: if the storage or
   * the lead's email fails, the project and its storage are removed again.
   */
  async create(input: NewProject, by: UserRecord): Promise<ProjectRecord> {
    if (!this.isLibrarian(by)) throw new Forbidden('Only admins and data librarians create projects.');
    const project: ProjectRecord = {
      number: input.number,
      name: input.name,
      unit: input.unit,
      leadEmail: input.leadEmail,
      capacityMb: Math.round(input.capacityGb * 1024),
      profiles: input.profiles,
      state: 'open',
      createdAt: Date.now(),
      createdBy: by.name,
    };
    if (!(await this.o.repo.create(project))) throw new Conflict(`A project numbered ${project.number} exists already.`);
    try {
      await this.o.storage.create(project.number, project.capacityMb);
      await this.sendInvite(project, project.leadEmail, 'lead', by);
    } catch (err) {
      await this.o.storage.remove(project.number).catch((e: Error) => this.o.log.error({ project: project.number, err: e.message }, 'could not remove the storage of a project that failed to be created'));
      await this.o.repo.delete(project.number);
      this.o.log.warn({ project: project.number, err: (err as Error).message }, 'project creation undone');
      throw err;
    }
    this.o.log.info({ project: project.number, unit: project.unit, capacityMb: project.capacityMb, by: by.name }, 'project created');
    return project;
  }

  /** The project, for someone allowed to see it; NotFound for everyone else (its existence is not told). */
  async visible(number: string, user: UserRecord): Promise<{ project: ProjectRecord; role: MemberRole | null }> {
    const project = NUMBER.test(number) ? await this.o.repo.get(number) : null;
    if (!project) throw new NotFound('There is no such project, or you are not one of its members.');
    const role = await this.o.repo.roleOf(number, user.name);
    if (!role && !this.isLibrarian(user)) throw new NotFound('There is no such project, or you are not one of its members.');
    return { project, role };
  }

  async view(number: string, user: UserRecord): Promise<ProjectView> {
    const { project, role } = await this.visible(number, user);
    const members = Object.entries(await this.o.repo.members(number))
      .map(([name, r]) => ({ name, role: r }))
      .sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : a.role === 'lead' ? -1 : 1));
    const canManage = project.state === 'open' && (role === 'lead' || this.isLibrarian(user));
    const invites: ProjectView['invites'] = [];
    if (canManage) {
      for (const [email, hash] of Object.entries(await this.o.repo.invitesOf(number))) {
        const inv = await this.o.repo.getInvite(hash);
        if (inv) invites.push({ email, expiresAt: inv.expiresAt, expired: inv.expiresAt < Date.now() });
      }
    }
    const usage = project.state === 'open' ? await this.o.storage.usage(number).catch(() => null) : null;
    const restartNeeded = role !== null && (await this.restartNeededFor(user)).includes(number);
    return { project, members, invites, usage, restartNeeded, canManage, isAdmin: this.isLibrarian(user) };
  }

  /** The user's projects whose folder their running server lacks until it restarts; [] when no server runs. */
  async restartNeededFor(user: UserRecord): Promise<string[]> {
    const waiting = await this.o.repo.restartNeeded(user.name);
    if (!waiting.length || !this.o.serverRunning) return [];
    return (await this.o.serverRunning(user)) ? waiting : [];
  }

  /** The user's open projects (home page). */
  async projectsOf(user: UserRecord): Promise<ProjectRecord[]> {
    const out: ProjectRecord[] = [];
    for (const n of await this.o.repo.projectsOf(user.name)) {
      const p = await this.o.repo.get(n);
      if (p?.state === 'open') out.push(p);
    }
    return out;
  }

  async list(user: UserRecord): Promise<ProjectRecord[]> {
    return this.isLibrarian(user) ? this.o.repo.list() : this.projectsOf(user);
  }

  /** Invite (or invite again) an email address; the lead, an admin or a librarian may. */
  async invite(number: string, rawEmail: string, by: UserRecord): Promise<void> {
    const project = await this.manageable(number, by);
    const email = rawEmail.trim().toLowerCase();
    if (!EMAIL.test(email) || email.length > 254) throw new BadRequest('That email address is not valid.');
    await this.sendInvite(project, email, email === project.leadEmail ? 'lead' : 'member', by);
  }

  /** Withdraw a pending invitation; its link answers "withdrawn" from now on. */
  async revoke(number: string, email: string, by: UserRecord): Promise<void> {
    await this.manageable(number, by);
    const hash = (await this.o.repo.invitesOf(number))[email];
    if (!hash) throw new NotFound('There is no pending invitation for that address.');
    await this.o.repo.spendInvite(hash, 'revoked');
    this.o.log.info({ project: number, email, by: by.name }, 'invitation revoked');
  }

  /** What an invitation link is, without using it. Throws LinkInvalid or LinkGone. */
  async inspect(token: string): Promise<InviteRecord> {
    if (!TOKEN.test(token)) throw new LinkInvalid(400);
    const hash = hashToken(token);
    const record = await this.o.repo.getInvite(hash);
    if (!record) {
      const spent = await this.o.repo.spentReason(hash);
      if (spent) throw new LinkGone(spent);
      throw new LinkInvalid(404);
    }
    if (record.expiresAt < Date.now()) throw new LinkGone('expired');
    if (record.kind === 'invite') {
      const project = record.project ? await this.o.repo.get(record.project) : null;
      if (project?.state !== 'open') throw new LinkGone('revoked');
    }
    return record;
  }

  /**
   * Use a link once: of two concurrent uses only one succeeds; `use` then does the work. If it
   * throws, the link is put back, so a refused password (say) can be chosen again.
   */
  async redeem<T>(token: string, use: (invite: InviteRecord) => Promise<T>): Promise<T> {
    const checked = await this.inspect(token);
    const record = await this.o.repo.takeInvite(checked.tokenHash);
    if (!record) throw new LinkGone('used');
    try {
      return await use(record);
    } catch (err) {
      await this.o.repo.restoreInvite(record);
      throw err;
    }
  }

  /**
   * Whether a signed-in user is visibly not the invitee: their account has an email address
   * (from the IdP, or recorded with a local account) and it is not the one invited. Such a
   * user gets a page saying so, never the membership; an account without an address may join.
   */
  isOtherInvitee(invite: InviteRecord, user: UserRecord): boolean {
    return typeof user.email === 'string' && user.email !== '' && user.email.trim().toLowerCase() !== invite.email;
  }

  /** Add a user who followed an invitation. */
  async join(invite: InviteRecord, user: UserRecord): Promise<ProjectRecord> {
    if (invite.kind !== 'invite' || !invite.project || !invite.role) throw new LinkInvalid(404);
    const project = await this.o.repo.get(invite.project);
    if (project?.state !== 'open') throw new LinkGone('revoked');
    await this.o.repo.addMember(project.number, user.name, invite.role);
    this.o.log.info({ project: project.number, user: user.name, role: invite.role, email: invite.email }, 'member joined through an invitation');
    await this.offerToRunningServer(user, project.number);
    return project;
  }

  /**
   * A server that runs while its user joins: the local spawner gives it the folder at once; one
   * that can't be changed (Docker) is marked, so the project page and home say "restart". The
   * membership stands either way; a failure here is logged and leaves the restart notice.
   */
  private async offerToRunningServer(user: UserRecord, number: string): Promise<void> {
    if (!this.o.giveRunningServer) return;
    let outcome: 'added' | 'restart' | 'not-running';
    try {
      outcome = await this.o.giveRunningServer(user, await this.mountsOf(user.name));
    } catch (err) {
      this.o.log.error({ project: number, user: user.name, err: (err as Error).message }, 'could not give a running server its new project folder');
      outcome = 'restart';
    }
    if (outcome === 'restart') await this.o.repo.markRestartNeeded(user.name, number);
    if (outcome !== 'not-running') this.o.log.info({ project: number, user: user.name, outcome }, outcome === 'added' ? 'project folder given to a running server' : 'running server needs a restart for its new project folder');
  }

  /**
   * Remove a member: their account loses the folder at once (ACL), and a running server is
   * stopped so nothing it holds open stays reachable.
   */
  async removeMember(number: string, name: string, by: UserRecord, member: UserRecord | null): Promise<void> {
    await this.manageable(number, by);
    const role = await this.o.repo.roleOf(number, name);
    if (!role) throw new NotFound(`${name} is not a member of ${number}.`);
    await this.o.repo.removeMember(number, name);
    const account = member ? this.o.accountOf(member) : null;
    if (account) await this.o.storage.revoke(number, account);
    await this.o.stopServer(name, `You are no longer a member of project ${number}, so its folder was taken out of your server. Start it again to go on with your own files.`);
    this.o.log.info({ project: number, user: name, by: by.name }, 'member removed');
  }

  /**
   * Close a project: members' servers stop, the folder is archived as a tarball the admin can
   * download, then the filesystem is unmounted and deleted.
   */
  async close(number: string, by: UserRecord): Promise<ProjectRecord> {
    if (!this.isLibrarian(by)) throw new Forbidden('Only admins and data librarians close projects.');
    const project = await this.o.repo.get(number);
    if (!project) throw new NotFound('There is no such project.');
    if (project.state === 'closed') return project;
    const members = Object.keys(await this.o.repo.members(number));
    for (const m of members) await this.o.stopServer(m, `Project ${number} was closed; its folder was archived by the data library.`);
    const archive = await this.o.storage.archive(number);
    await this.o.storage.remove(number);
    for (const m of members) await this.o.repo.removeMember(number, m);
    for (const hash of Object.values(await this.o.repo.invitesOf(number))) await this.o.repo.spendInvite(hash, 'revoked');
    const closed: ProjectRecord = { ...project, state: 'closed', archive, closedAt: Date.now() };
    await this.o.repo.put(closed);
    this.o.log.info({ project: number, archive, by: by.name }, 'project closed and archived');
    return closed;
  }

  /**
   * An account is being deleted (its server is stopped): it leaves every project, and its Unix
   * account's ACL entries go from every open project's files, before the account itself goes
   * (a later account could get its uid). Returns the projects it was a member of.
   */
  async forgetUser(user: UserRecord): Promise<string[]> {
    const left = await this.o.repo.projectsOf(user.name);
    for (const n of left) await this.o.repo.removeMember(n, user.name);
    await this.o.repo.clearRestartNeeded(user.name);
    const account = this.o.accountOf(user);
    if (account) {
      for (const p of await this.o.repo.list()) {
        if (p.state === 'open') await this.o.storage.revokeEverywhere(p.number, account);
      }
    }
    this.o.log.info({ user: user.name, projects: left, account }, 'deleted account left its projects; its ACL entries were removed');
    return left;
  }

  /** The archive file of a closed project, for admins. */
  async archiveFile(number: string, by: UserRecord): Promise<{ path: string; name: string }> {
    if (!this.isLibrarian(by)) throw new NotFound();
    const project = await this.o.repo.get(number);
    if (!project?.archive) throw new NotFound('This project has no archive.');
    return { path: this.o.storage.archivePath(project.archive), name: project.archive };
  }

  /**
   * The image profiles this user may start: the site's defaults (every dockerProfile not in
   * projectOnlyProfiles) and the profiles of their open projects. Name -> projects offering it
   * (empty for a default). Only configured dockerProfiles count: a project can't name an image.
   */
  async profilesOf(user: UserRecord): Promise<Map<string, string[]>> {
    const configured = this.o.config.dockerProfiles.map((p) => p.name);
    const out = new Map<string, string[]>();
    for (const name of configured) if (!this.o.config.projectOnlyProfiles.includes(name)) out.set(name, []);
    for (const p of await this.projectsOf(user)) {
      for (const name of p.profiles) {
        if (!configured.includes(name)) continue;
        const via = out.get(name);
        if (via === undefined) out.set(name, [p.number]);
        else if (via.length) via.push(p.number);
      }
    }
    return out;
  }

  /** The folders a server that starts now gets: it has every project, so no restart is waiting. */
  async mountsForStart(userName: string): Promise<ProjectMount[]> {
    await this.o.repo.clearRestartNeeded(userName);
    return this.mountsOf(userName);
  }

  /** Every open project this user is a member of, with its folders (the spawner mounts them). */
  async mountsOf(userName: string): Promise<ProjectMount[]> {
    const out: ProjectMount[] = [];
    for (const n of await this.o.repo.projectsOf(userName)) {
      const p = await this.o.repo.get(n);
      if (p?.state !== 'open') continue;
      await this.o.storage.mount(n);
      out.push({ number: n, shared: this.o.storage.sharedOf(n), datasets: this.o.storage.datasetsOf(n) });
    }
    return out;
  }

  /** Give a starting server's account its projects' folders (ACLs). */
  async grantAccount(userName: string, account: string): Promise<void> {
    for (const n of await this.o.repo.projectsOf(userName)) {
      const p = await this.o.repo.get(n);
      if (p?.state === 'open') await this.o.storage.grant(n, account);
    }
  }

  /** Mount every open project's filesystem (hub start). Failures are logged, not fatal. */
  async mountAll(): Promise<void> {
    for (const p of await this.o.repo.list()) {
      if (p.state !== 'open') continue;
      await this.o.storage.mount(p.number).catch((err: Error) => this.o.log.error({ project: p.number, err: err.message }, 'could not mount a project filesystem'));
    }
  }

  /**
   * Email a one-time password-reset link to the local account with this address, if there is
   * one (recorded when the account was made from an invitation). Resolves the same either way,
   * so the answer does not tell which addresses have accounts; a failed mail is logged.
   */
  async sendReset(rawEmail: string, accountOf: (email: string) => Promise<UserRecord | null>): Promise<void> {
    const email = rawEmail.trim().toLowerCase();
    if (!EMAIL.test(email)) return;
    const user = await accountOf(email);
    if (user?.source !== 'local') {
      this.o.log.info({ email }, 'password reset asked for an address without a local account');
      return;
    }
    const token = randomBytes(32).toString('base64url');
    const record: InviteRecord = { kind: 'reset', tokenHash: hashToken(token), email, user: user.name, invitedBy: user.name, createdAt: Date.now(), expiresAt: Date.now() + Math.min(this.o.config.inviteTtlS, 3600) * 1000 };
    await this.o.repo.putInvite(record);
    try {
      await this.o.mailer.send({
        to: email,
        subject: 'Choose a new password for oerhub',
        text: [
          `Someone (we hope you) asked to reset the password of the account "${user.name}".`,
          '',
          'Open this link to choose a new one:',
          `${this.o.hubOrigin()}/hub/account/reset?token=${token}`,
          '',
          `The link works once and expires in ${describeDuration(Math.min(this.o.config.inviteTtlS, 3600))}. Your current password keeps working until you choose a new one.`,
          'If you did not ask for this, ignore this email.',
        ].join('\n'),
      });
    } catch (err) {
      await this.o.repo.dropInvite(record, undefined);
      this.o.log.error({ user: user.name, err: (err as Error).message }, 'password reset mail not sent');
    }
  }

  private async manageable(number: string, by: UserRecord): Promise<ProjectRecord> {
    const { project, role } = await this.visible(number, by);
    if (project.state !== 'open') throw new Conflict('This project is closed.');
    if (role !== 'lead' && !this.isLibrarian(by)) throw new Forbidden('Only the project lead, an admin or a data librarian can change the members.');
    return project;
  }

  /** One email with a one-time link; a pending link for the same address is replaced. Nothing is kept if the mail fails. */
  private async sendInvite(project: ProjectRecord, email: string, role: MemberRole, by: UserRecord): Promise<void> {
    const previous = (await this.o.repo.invitesOf(project.number))[email];
    const token = randomBytes(32).toString('base64url');
    const invite: InviteRecord = {
      kind: 'invite',
      tokenHash: hashToken(token),
      email,
      project: project.number,
      role,
      invitedBy: by.name,
      createdAt: Date.now(),
      expiresAt: Date.now() + this.o.config.inviteTtlS * 1000,
    };
    // In the query, which the hub's logs redact, never in the path.
    const link = `${this.o.hubOrigin()}/hub/invite?token=${token}`;
    const how = this.o.config.inviteUseSso ? 'sign in with your institution account' : 'choose your own password';
    // Stored before the mail goes out (the invitee may click at once), taken back if it fails.
    await this.o.repo.putInvite(invite);
    try {
      await this.o.mailer.send({
        to: email,
        subject: `Invitation to research project ${project.number}: ${project.name}`,
        text: [
          `You have been invited to join research project ${project.number}, "${project.name}" (${project.unit}), as its ${role}.`,
          '',
          `Open this link to ${how} and see the project's workspace:`,
          link,
          '',
          `The link works once and expires in ${describeDuration(this.o.config.inviteTtlS)}. No password is ever sent by email.`,
          'If you did not expect this, ignore this email.',
        ].join('\n'),
      });
    } catch (err) {
      await this.o.repo.dropInvite(invite, previous);
      throw err;
    }
    if (previous) await this.o.repo.spendInvite(previous, 'replaced', false);
    this.o.log.info({ project: project.number, email, role, by: by.name, replaced: Boolean(previous) }, 'invitation sent');
  }
}
