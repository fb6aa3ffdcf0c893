/**
 * The REST API part: JupyterHub-shaped routes under /hub/api, hashed scoped tokens, the
 * /hub/token page, and the guards other parts use (e.g. /hub/metrics: requireScopes('read:metrics')).
 */
import type { TokenOwner } from './token-repo.js';
import type { IssueOptions, TokenService } from './tokens.js';

export { apiRoutes, JUPYTERHUB_API_VERSION } from './routes.js';
export { tokenPageRoutes } from './token-page.js';
export { tokenAuthentication, isTokenRequest, requireScopes, scopeGuard, principalOf, checkScope, InvalidToken, type Principal } from './auth.js';
export { TokenService, hashToken, tokenFromHeader, type TokenAuth, type IssueOptions, type TokenModel } from './tokens.js';
export { TokenRepo, type TokenOwner, type TokenRecord } from './token-repo.js';
export { SCOPES, allows, expandScopes, intersect, roleScopes, type Grant, type ScopeName } from './scopes.js';

/** Make a token for a user account (or, with `service`, a configured service); returns the token, shown once. */
export async function issueToken(tokens: TokenService, owner: string | TokenOwner, opts: IssueOptions = {}): Promise<{ token: string; id: string }> {
  const o: TokenOwner = typeof owner === 'string' ? { kind: 'user', name: owner } : owner;
  const { token, record } = await tokens.issue(o, opts);
  return { token, id: record.id };
}
