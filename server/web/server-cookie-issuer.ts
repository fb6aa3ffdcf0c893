import type { Request, Response } from 'express';
import type { HubConfig } from '../config/index.js';
import type { UserRecord } from '../store/repos.js';
import { serverCookieName, serverCookiePath, signServerCookie } from '../auth/server-cookie.js';

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
