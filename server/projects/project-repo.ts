import type { Store } from '../store/store.js';
import { parseRecord } from '../store/repos.js';

export type ProjectState = 'open' | 'closed';
export type MemberRole = 'lead' | 'member';

export interface ProjectRecord {
  /** e.g. `P-1234`; also the folder and URL name. */
  number: string;
  name: string;
  unit: string;
  leadEmail: string;
  capacityMb: number;
  /** Image profiles (dockerProfiles names) offered to members. */
  profiles: string[];
  state: ProjectState;
  createdAt: number;
  createdBy: string;
  /** Closed projects: the archive's file name under the projects folder. */
  archive?: string;
  closedAt?: number;
}

/** A pending invitation (or password-reset link); stored under the SHA-256 of its token, never the token. */
export interface InviteRecord {
  kind: 'invite' | 'reset';
  tokenHash: string;
  email: string;
  /** Invitations: the project and the role the invitee gets. */
  project?: string;
  role?: MemberRole;
  /** Resets: the account. */
  user?: string;
  invitedBy: string;
  createdAt: number;
  expiresAt: number;
}

/** Why a link no longer works, kept for a while after it stopped, so the page can say so. */
export type SpentReason = 'used' | 'revoked' | 'replaced';

// How long a spent or expired link is remembered (to answer 410 rather than 404).
const REMEMBER_MS = 30 * 24 * 3600 * 1000;

const projectKey = (n: string): string => `project:${n}`;
const membersKey = (n: string): string => `project-members:${n}`;
const invitesKey = (n: string): string => `project-invites:${n}`;
const userProjectsKey = (u: string): string => `user-projects:${u}`;
const inviteKey = (h: string): string => `invite:${h}`;
const spentKey = (h: string): string => `invite-spent:${h}`;
const restartKey = (u: string): string => `project-restart:${u}`;
const PROJECTS = 'projects';

/** Projects, their members and invitations. Owns every key it names; multi-key changes are atomic. */
export class ProjectRepo {
  constructor(private readonly store: Store) {}

  async get(number: string): Promise<ProjectRecord | null> {
    return parseRecord<ProjectRecord>(await this.store.get(projectKey(number)));
  }

  /** Create only if the number is free. Returns false when a project has it (even a closed one). */
  create(p: ProjectRecord): Promise<boolean> {
    return this.store.atomic({
      if: [{ type: 'absent', key: projectKey(p.number) }],
      then: [
        { type: 'set', key: projectKey(p.number), value: JSON.stringify(p) },
        { type: 'setAdd', key: PROJECTS, members: [p.number] },
      ],
    });
  }

  async put(p: ProjectRecord): Promise<void> {
    await this.store.set(projectKey(p.number), JSON.stringify(p));
  }

  /** Forget a project entirely (rollback of a creation that could not finish). */
  async delete(number: string): Promise<void> {
    const members = Object.keys(await this.store.hashGetAll(membersKey(number)));
    await this.store.atomic({
      then: [
        { type: 'delete', key: projectKey(number) },
        { type: 'delete', key: membersKey(number) },
        { type: 'delete', key: invitesKey(number) },
        { type: 'setRemove', key: PROJECTS, members: [number] },
        ...members.map((m) => ({ type: 'setRemove' as const, key: userProjectsKey(m), members: [number] })),
      ],
    });
  }

  async list(): Promise<ProjectRecord[]> {
    const numbers = (await this.store.setMembers(PROJECTS)).sort();
    const texts = await this.store.getMany(numbers.map(projectKey));
    return texts.map((t) => parseRecord<ProjectRecord>(t)).filter((p): p is ProjectRecord => p !== null);
  }

  /** name -> role. */
  async members(number: string): Promise<Record<string, MemberRole>> {
    return (await this.store.hashGetAll(membersKey(number))) as Record<string, MemberRole>;
  }

  async roleOf(number: string, user: string): Promise<MemberRole | null> {
    return (await this.store.hashGet(membersKey(number), user)) as MemberRole | null;
  }

  async projectsOf(user: string): Promise<string[]> {
    return (await this.store.setMembers(userProjectsKey(user))).sort();
  }

  /** Member and the user's index together. A lead stays lead if re-added as member. */
  async addMember(number: string, user: string, role: MemberRole): Promise<void> {
    const current = await this.roleOf(number, user);
    const next = current === 'lead' ? 'lead' : role;
    await this.store.atomic({
      then: [
        { type: 'hashSet', key: membersKey(number), fields: { [user]: next } },
        { type: 'setAdd', key: userProjectsKey(user), members: [number] },
      ],
    });
  }

  async removeMember(number: string, user: string): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'hashDelete', key: membersKey(number), fields: [user] },
        { type: 'setRemove', key: userProjectsKey(user), members: [number] },
        { type: 'setRemove', key: restartKey(user), members: [number] },
      ],
    });
  }

  // --- projects a running server can't have until it restarts (Docker: no new binds) ---

  async markRestartNeeded(user: string, number: string): Promise<void> {
    await this.store.setAdd(restartKey(user), number);
  }

  async restartNeeded(user: string): Promise<string[]> {
    return (await this.store.setMembers(restartKey(user))).sort();
  }

  /** A server start reads the membership again: nothing is waiting any more. */
  async clearRestartNeeded(user: string): Promise<void> {
    await this.store.delete(restartKey(user));
  }

  // --- invitations and reset links ---

  /** Store a new link; for an invitation it becomes the project's current one for that email. */
  async putInvite(invite: InviteRecord): Promise<void> {
    const ttl = invite.expiresAt - Date.now() + REMEMBER_MS;
    await this.store.atomic({
      then: [
        { type: 'set', key: inviteKey(invite.tokenHash), value: JSON.stringify(invite), ttlMs: ttl },
        ...(invite.project ? [{ type: 'hashSet' as const, key: invitesKey(invite.project), fields: { [invite.email]: invite.tokenHash } }] : []),
      ],
    });
  }

  async getInvite(tokenHash: string): Promise<InviteRecord | null> {
    return parseRecord<InviteRecord>(await this.store.get(inviteKey(tokenHash)));
  }

  /** Take a link for use: of two concurrent callers only one gets it; the link is spent either way. */
  async takeInvite(tokenHash: string): Promise<InviteRecord | null> {
    const record = parseRecord<InviteRecord>(await this.store.take(inviteKey(tokenHash)));
    if (record) await this.markSpent(record, 'used');
    return record;
  }

  /** Put a taken link back (its use failed before anything changed). */
  async restoreInvite(invite: InviteRecord): Promise<void> {
    await this.store.delete(spentKey(invite.tokenHash));
    await this.putInvite(invite);
  }

  /** Withdraw a link (revoke, or replaced by a resent one). Safe to repeat. `unlist`: also drop it from the project's pending list. */
  async spendInvite(tokenHash: string, reason: SpentReason, unlist = true): Promise<InviteRecord | null> {
    const record = parseRecord<InviteRecord>(await this.store.take(inviteKey(tokenHash)));
    if (record) await this.markSpent(record, reason, unlist);
    return record;
  }

  /** Forget a link whose mail could not be sent, as if it never was; the previous one (if any) is listed again. */
  async dropInvite(invite: InviteRecord, previous: string | undefined): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'delete', key: inviteKey(invite.tokenHash) },
        ...(invite.project
          ? [previous ? { type: 'hashSet' as const, key: invitesKey(invite.project), fields: { [invite.email]: previous } } : { type: 'hashDelete' as const, key: invitesKey(invite.project), fields: [invite.email] }]
          : []),
      ],
    });
  }

  async spentReason(tokenHash: string): Promise<SpentReason | null> {
    return (await this.store.get(spentKey(tokenHash))) as SpentReason | null;
  }

  /** email -> the current link's hash, for a project's pending invitations. */
  async invitesOf(number: string): Promise<Record<string, string>> {
    return this.store.hashGetAll(invitesKey(number));
  }

  private async markSpent(record: InviteRecord, reason: SpentReason, unlist = true): Promise<void> {
    await this.store.atomic({
      then: [
        { type: 'set', key: spentKey(record.tokenHash), value: reason, ttlMs: REMEMBER_MS },
        ...(record.project && unlist ? [{ type: 'hashDelete' as const, key: invitesKey(record.project), fields: [record.email] }] : []),
      ],
    });
  }
}
