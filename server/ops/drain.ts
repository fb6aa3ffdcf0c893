import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/** How long a refused client should wait before asking again (the next hub process is starting). */
const RETRY_AFTER_S = 5;

/**
 * A graceful shutdown's bookkeeping: the requests in flight, and, once draining, the refusal of
 * new ones. On drain() the listeners stop accepting connections; a request that still arrives on
 * a kept-alive socket gets 503 with Connection: close (a load balancer retries it elsewhere);
 * requests in flight run to their end, bounded by the grace period. Upgraded sockets
 * (WebSockets) are not requests: they are closed with the hub, and browsers reconnect.
 */
export class RequestDrain {
  private readonly inFlight = new Set<http.ServerResponse>();
  private draining = false;
  private wake: (() => void) | undefined;
  /** One listener shared by every response (no closure per request on the hot path). */
  private readonly onClose: (this: http.ServerResponse) => void;

  constructor(private readonly listeners: () => readonly http.Server[]) {
    const inFlight = this.inFlight;
    const drain = this;
    this.onClose = function (this: http.ServerResponse) {
      inFlight.delete(this);
      if (drain.draining) drain.settle();
    };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Requests being answered right now. */
  get size(): number {
    return this.inFlight.size;
  }

  /**
   * Track a new request. Returns false when the hub is draining: the caller must answer it with
   * `refuse` and do nothing else.
   */
  admit(res: http.ServerResponse): boolean {
    if (this.draining) return false;
    this.inFlight.add(res);
    res.once('close', this.onClose);
    return true;
  }

  /** The headers every refused request gets (the body is the caller's: a page or JSON). */
  static refusalHeaders(res: http.ServerResponse): void {
    res.setHeader('connection', 'close');
    res.setHeader('retry-after', String(RETRY_AFTER_S));
    res.shouldKeepAlive = false;
  }

  /** An upgrade that arrives while draining: 503 on the raw socket. */
  static refuseUpgrade(socket: Duplex): void {
    socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${RETRY_AFTER_S}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  /**
   * Stop accepting, then wait until the requests in flight and `alsoWaitFor` (server starts) are
   * done, at most graceMs. Resolves with how many requests were still running when it gave up
   * (0 when all finished). Safe to call twice (the second waits again).
   */
  async drain(graceMs: number, alsoWaitFor: Promise<void>): Promise<{ unfinished: number }> {
    this.draining = true;
    for (const server of this.listeners()) {
      // Stop listening only. http.Server.close() would also drop the kept-alive sockets that sit
      // idle between requests, and a request the client is sending on one just then fails with
      // ECONNRESET; kept, their next request gets a clear 503 with Connection: close instead.
      net.Server.prototype.close.call(server);
    }
    for (const res of this.inFlight) {
      if (!res.headersSent) {
        res.setHeader('connection', 'close');
        res.shouldKeepAlive = false;
      }
    }
    let others = false;
    void alsoWaitFor.finally(() => {
      others = true;
      this.settle();
    });
    const done = new Promise<void>((resolve) => {
      this.wake = () => {
        if (others && this.inFlight.size === 0) resolve();
      };
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    this.settle();
    await Promise.race([done, deadline]);
    clearTimeout(timer);
    this.wake = undefined;
    return { unfinished: this.inFlight.size };
  }

  private settle(): void {
    this.wake?.();
  }
}
