import { HubError } from '../errors.js';

/** No share has this id (never made, or a copy view that expired and was forgotten). */
export class ShareNotFound extends HubError {
  constructor(detail?: string) {
    super('SHARE_NOT_FOUND', 404, 'There is no shared notebook at this link. Check the link, or ask the person who shared it for a new one.', detail);
  }
}

/** The share was revoked by its owner, or the instructor's view of a copy has expired. */
export class ShareGone extends HubError {
  constructor(message: string, detail?: string) {
    super('SHARE_GONE', 410, message, detail);
  }
}

/** The viewer is signed in but not in the share's audience. */
export class ShareForbidden extends HubError {
  constructor(message: string, detail?: string) {
    super('SHARE_FORBIDDEN', 403, message, detail);
  }
}

/** The viewer must sign in first (the route sends them through sign-in and back). */
export class ShareNeedsSignIn extends HubError {
  constructor() {
    super('SHARE_SIGN_IN', 401, 'Sign in to open this shared notebook.');
  }
}

/** This hub has no origin apart from its own to serve shared notebooks from (originMode=single). */
export class SharingUnavailable extends HubError {
  constructor() {
    super('SHARING_UNAVAILABLE', 409, 'Read-only sharing is off on this hub: it needs a content origin apart from the hub\'s (originMode subdomain or shared-host). Ask the hub\'s operator.');
  }
}

/** The server holding the notebook is not running, so there is nothing to snapshot now. */
export class ServerNotRunning extends HubError {
  constructor(message: string, detail?: string) {
    super('SERVER_NOT_RUNNING', 409, message, detail);
  }
}
