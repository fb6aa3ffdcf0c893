import type { ServerManager } from '../servers/server-manager.js';
import { isAnonymousName } from '../names.js';

/**
 * The manager the web routes use: the same object, except that any start of an anonymous
 * user's server is ephemeral. Without it, /hub/user-redirect or /hub/spawn after a visitor's
 * server died would start a persistent server (and home folder) for a throwaway user.
 * (Better placed in ServerManager.start itself; that file belongs to the image-profiles work.)
 * Every other member is the manager's own, through the prototype: state stays in one object.
 */
export function anonymousStartsEphemeral(manager: ServerManager): ServerManager {
  const guarded = Object.create(manager) as ServerManager;
  const start = manager.start.bind(manager);
  guarded.start = (user, opts = {}) => start(user, isAnonymousName(user.name) ? { ...opts, ephemeral: true } : opts);
  return guarded;
}
