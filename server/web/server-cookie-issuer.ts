import type { Request, Response } from 'express';
import type { HubConfig } from '../config/index.js';
import type { UserRecord } from '../store/repos.js';
import { serverCookieName, serverCookiePath, signServerCookie } from '../auth/server-cookie.js';
import { HANDOFF_PATH, type SignInHandoff, type UserOrigins } from '../proxy/index.js';

export function isSecureRequest(config: HubConfig, req: Request): boolean {
  if (config.secureCookies === 'always') return true;
  if (config.secureCookies === 'never') return false;
  return req.secure || (config.publicUrl?.startsWith('https:') ?? false);
}

/** Give the browser the cookie that opens this user's server, on that server's path only. */
export function issueServerCookie(config: HubConfig, secret: string, req: Request, res: Response, user: UserRecord): void {
  res.cookie(serverCookieName(user.escapedName), signServerCookie(secret, req.sessionID, user.escapedName), {
    path: serverCookiePath(user.escapedName),
    httpOnly: true,
    sameSite: 'lax',
    secure: isSecureRequest(config, req),
    maxAge: config.sessionMaxAgeS * 1000,
  });
}

export function clearServerCookie(config: HubConfig, req: Request, res: Response, user: UserRecord): void {
  res.clearCookie(serverCookieName(user.escapedName), { path: serverCookiePath(user.escapedName), httpOnly: true, sameSite: 'lax', secure: isSecureRequest(config, req) });
}

/**
 * Where to send a signed-in user to open `target` (a /user/NAME/ path of their own server).
 * On a user origin: a one-time code for this session, redeemed there by the proxy, which sets
 * that origin's own cookie; the hub's cookie never goes there. In single-origin mode: the
 * cookie is set here, on the hub's origin, and the target is returned as is.
 */
export async function openServerUrl(
  deps: { config: HubConfig; cookieSecret: string; origins: UserOrigins; handoff: SignInHandoff },
  req: Request,
  res: Response,
  user: UserRecord,
  target: string,
): Promise<string> {
  if (!deps.origins.isolated) {
    issueServerCookie(deps.config, deps.cookieSecret, req, res, user);
    return target;
  }
  const code = await deps.handoff.issue(req.sessionID, user.escapedName);
  const query = new URLSearchParams({ code, next: target });
  return `${deps.origins.contentOrigin(user.escapedName)}/user/${user.escapedName}/${HANDOFF_PATH}?${query.toString()}`;
}
