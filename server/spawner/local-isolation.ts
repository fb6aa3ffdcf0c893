import fs from 'node:fs';
import path from 'node:path';
import type { HubConfig } from '../config/index.js';

/** What the local spawner actually does: each server as its own Unix account, or all as the hub's user. */
export type LocalIsolationMode = 'unix-users' | 'none';

/** The facts about this machine the decision depends on (injected in tests). */
export interface HostFacts {
  /** The hub's effective uid (-1 where there is none, i.e. not POSIX). */
  uid: number;
  /** Whether useradd and userdel can be run. */
  hasUserTools: boolean;
}

export interface LocalIsolationPlan {
  mode: LocalIsolationMode;
  /**
   * Set when servers are not isolated and the hub is reachable from outside: only these
   * (admin) users may start a server; everyone else is refused with a clear message.
   */
  onlyUsers?: readonly string[];
  /** Reasons the hub must not start, each naming its fix. */
  problems: string[];
  /** Things the operator should know at every start. */
  warnings: string[];
}

type IsolationConfig = Pick<HubConfig, 'localIsolation' | 'publicUrl' | 'bindHost' | 'tryMaxServers' | 'adminUsers'>;

export const USERADD = '/usr/sbin/useradd';
export const USERDEL = '/usr/sbin/userdel';

/** The real facts of this process and machine. */
export function hostFacts(): HostFacts {
  const hasUserTools = [USERADD, USERDEL].every((tool) => {
    try {
      fs.accessSync(tool, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return { uid: process.geteuid?.() ?? -1, hasUserTools };
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Why the hub can be reached from other machines, or undefined if it can't: a publicUrl whose
 * host is not loopback, or a bind address that is not loopback.
 */
export function outsideReach(config: Pick<HubConfig, 'publicUrl' | 'bindHost'>): string | undefined {
  if (config.publicUrl && !isLoopback(new URL(config.publicUrl).hostname)) return `publicUrl is ${config.publicUrl}`;
  if (!isLoopback(config.bindHost)) return `bindHost is ${config.bindHost}`;
  return undefined;
}

/**
 * Decides how the local spawner isolates servers, and whether the hub may start at all.
 * Pure: the same config and facts always give the same plan (createHub and createSpawner
 * both ask).
 */
export function planLocalIsolation(config: IsolationConfig, facts: HostFacts): LocalIsolationPlan {
  const problems: string[] = [];
  const warnings: string[] = [];
  const canUseAccounts = facts.uid === 0 && facts.hasUserTools;
  if (config.localIsolation === 'unix-users' && !canUseAccounts) {
    const why = facts.uid !== 0 ? 'the hub does not run as root' : `${USERADD} and ${USERDEL} are missing (Debian: apt-get install passwd)`;
    problems.push(`localIsolation (OERHUB_LOCAL_ISOLATION) is unix-users, but ${why}. Run the hub as root, or use spawner=docker.`);
    return { mode: 'unix-users', problems, warnings };
  }
  const mode: LocalIsolationMode = config.localIsolation === 'none' ? 'none' : canUseAccounts ? 'unix-users' : 'none';
  if (mode === 'unix-users') return { mode, problems, warnings };

  const reach = outsideReach(config);
  const cause = config.localIsolation === 'none' ? 'localIsolation is none' : 'the hub does not run as root, so it cannot give each server its own Unix account';
  if (!reach) {
    warnings.push(
      `Notebook servers are not isolated (${cause}): every server runs as the hub's own user and can read the hub's secrets and other users' files. Acceptable only while the hub is reachable from this machine alone (it is: loopback only).`,
    );
    return { mode, problems, warnings };
  }
  if (config.tryMaxServers > 0) {
    problems.push(
      `Anonymous "Try it" can't be offered: notebook servers are not isolated (${cause}) and the hub is reachable from outside (${reach}), so any visitor's code would run as the hub itself. ` +
        'Fix: run the hub as root (localIsolation=unix-users), or use spawner=docker, or turn "Try it" off with tryMaxServers=0 (OERHUB_TRY_MAX_SERVERS=0), which also limits servers to admins.',
    );
  }
  warnings.push(
    `Notebook servers are not isolated (${cause}) and the hub is reachable from outside (${reach}): only admins (${config.adminUsers.join(', ')}) can start servers. Run the hub as root or use spawner=docker to serve students.`,
  );
  return { mode, onlyUsers: config.adminUsers.map((a) => a.trim().toLowerCase()), problems, warnings };
}

/**
 * Folders on the way to `target` that another Unix account can't pass through (missing o+x),
 * or that it can't read when `needRead` (the venv). Empty when a server's account can reach it.
 */
export function blockedForOthers(target: string, needRead = false): string[] {
  const blocked: string[] = [];
  const resolved = path.resolve(target);
  const parts = resolved.split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    let mode: number;
    try {
      mode = fs.statSync(dir).mode;
    } catch {
      // Not there yet (the hub creates it): the parts above decide.
      break;
    }
    const wanted = needRead && dir === resolved ? 0o005 : 0o001;
    if ((mode & wanted) !== wanted) blocked.push(dir);
  }
  return blocked;
}
