import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';

/**
 * Publish/subscribe within one process, for the stores that serve one hub process (memory,
 * SQLite). Behaves like Redis pub/sub as the Store contract describes it.
 */
export class LocalBus {
  private readonly bus = new EventEmitter();

  constructor(private readonly log: Logger | undefined) {
    // One listener per subscription; hundreds of open pages must not trigger the leak warning.
    this.bus.setMaxListeners(0);
  }

  publish(channel: string, message: string): void {
    // Redis never calls a subscriber inside publish(); doing the same keeps callers from
    // depending on re-entrancy that breaks once they switch stores.
    setImmediate(() => this.bus.emit(eventOf(channel), message));
  }

  subscribe(channel: string, onMessage: (message: string) => void): () => Promise<void> {
    const event = eventOf(channel);
    // A wrapper per call, so subscribing the same function twice gives two independent subscriptions.
    // It also catches: EventEmitter stops at the first listener that throws, and here that would
    // be an uncaught exception, while RedisStore logs it and goes on.
    const listener = (message: string): void => {
      try {
        onMessage(message);
      } catch (err) {
        if (this.log) this.log.error({ err, channel }, 'a store subscriber threw');
        else process.emitWarning(`a store subscriber on channel ${JSON.stringify(channel)} threw: ${String(err)}`);
      }
    };
    this.bus.on(event, listener);
    return async () => {
      this.bus.off(event, listener);
    };
  }

  close(): void {
    this.bus.removeAllListeners();
  }
}

/** EventEmitter treats 'error' (and 'newListener', 'removeListener') specially; a prefix keeps every channel an ordinary event. */
function eventOf(channel: string): string {
  return `channel:${channel}`;
}
