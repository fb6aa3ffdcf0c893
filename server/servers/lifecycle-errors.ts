import { HubError } from '../errors.js';

/*
 * The lifecycle's own typed errors. They extend HubError, so the one error middleware turns
 * them into a page or JSON with the right status (503 answers carry Retry-After).
 */

/** A start arrived while the same server is still being stopped (or another start holds its lock) for longer than serverStopWaitS. */
export class ServerBusy extends HubError {
  constructor(detail?: string) {
    super('SERVER_BUSY', 503, 'Your server is still stopping. Please try again in a few seconds.', detail);
  }
}

/** The hub has just started and is still finding the servers that kept running; nothing may start or stop until then. */
export class HubStarting extends HubError {
  constructor() {
    super('HUB_STARTING', 503, 'The hub is starting. Your server is safe; this page works again in a few seconds.');
  }
}
