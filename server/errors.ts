/**
 * Typed errors. Each carries a stable code, an HTTP status and a message that is safe to show a
 * user. Only the error middleware (web/errors.ts) and the proxy turn them into responses.
 */
export class HubError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    readonly userMessage: string,
    /** Extra detail for the log only, never for the browser. */
    readonly detail?: string,
  ) {
    super(detail ? `${userMessage} (${detail})` : userMessage);
    this.name = new.target.name;
  }
}

export class BadRequest extends HubError {
  constructor(message: string, detail?: string) {
    super('BAD_REQUEST', 400, message, detail);
  }
}

export class InvalidUsername extends HubError {
  constructor(reason: string) {
    super('INVALID_USERNAME', 400, `That username can't be used: ${reason}.`);
  }
}

export class NotSignedIn extends HubError {
  constructor() {
    super('NOT_SIGNED_IN', 401, 'Please sign in first.');
  }
}

export class Forbidden extends HubError {
  constructor(message = 'You are not allowed to do that.', detail?: string) {
    super('FORBIDDEN', 403, message, detail);
  }
}

export class NotFound extends HubError {
  constructor(message = 'There is nothing here.') {
    super('NOT_FOUND', 404, message);
  }
}

export class Conflict extends HubError {
  constructor(message: string, detail?: string) {
    super('CONFLICT', 409, message, detail);
  }
}

/** The state store (Redis) can't be reached. Running servers keep working through the proxy. */
export class StoreUnavailable extends HubError {
  constructor(detail?: string) {
    super('STORE_UNAVAILABLE', 503, 'The hub has lost its database for a moment. Your work is safe; please retry in a few seconds.', detail);
  }
}

/**
 * The durable store's file is held by another hub process. SQLite serves one hub process;
 * two would each believe they own every server. Only ever thrown at start.
 */
export class StoreInUse extends HubError {
  constructor(detail: string) {
    super('STORE_IN_USE', 503, 'The hub\'s database is in use by another hub process.', detail);
  }
}

/** A server could not be started. `userMessage` says why in words a student understands. */
export class SpawnFailed extends HubError {
  constructor(message: string, detail?: string) {
    super('SPAWN_FAILED', 500, message, detail);
  }
}

export class SpawnTimeout extends HubError {
  constructor(seconds: number) {
    super('SPAWN_TIMEOUT', 504, `Your server did not become ready within ${seconds} seconds.`);
  }
}

export class ServerNotRunning extends HubError {
  constructor() {
    super('SERVER_NOT_RUNNING', 503, 'Your server is not running.');
  }
}

export class TooManyRequests extends HubError {
  constructor(message = 'Too many attempts. Please wait a few minutes and try again.') {
    super('TOO_MANY_REQUESTS', 429, message);
  }
}

/** A configuration value is wrong; start-up stops with this message. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export function isHubError(err: unknown): err is HubError {
  return err instanceof HubError;
}

/** The account was disabled by an admin: sign-in is refused with this page until it is enabled again. */
export class AccountDisabled extends HubError {
  constructor(name: string) {
    super('ACCOUNT_DISABLED', 403, `The account ${name} has been disabled by an administrator, so it can't sign in. Its files are kept. If you think this is a mistake, contact the people who run this hub.`);
  }
}
