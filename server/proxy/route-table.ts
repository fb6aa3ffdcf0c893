import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { ServerRecord } from '../store/repos.js';

/** Where one user's server is, and the header that opens it. Read from a local cache on every proxied request. */
export interface Route {
  user: string;
  escapedName: string;
  /** http://127.0.0.1:PORT, parsed once. */
  target: URL;
  /** `token <secret>`, injected by the proxy; never sent to a browser. */
  authorization: string;
}

/** The server records a route's secret comes from (ServerRepo): it is stored there only, never twice. */
export interface RouteRecords {
  get(escapedName: string): Promise<ServerRecord | null>;
  list(): Promise<ServerRecord[]>;
}

export interface RouteTableOptions {
  store: Store;
  records: RouteRecords;
  log: Logger;
  /**
   * How often the whole table is read again from the store, in case an invalidation was missed
   * (pub/sub drops messages while the store is unreachable). 0: never.
   */
  resyncMs: number;
}

// The routes hash (escapedName -> {user, target}) and the channel that says one name changed.
const ROUTES_KEY = 'routes';
const CHANNEL = 'routes-changed';

interface StoredRoute {
  user: string;
  target: string;
}

/**
 * The proxy's route table, shared by every hub process on the store: `add` and `remove`
 * write the `routes` hash and publish the changed name; every process (this one included)
 * re-reads that name into its local Map, so `get` stays synchronous and cheap on the proxy's
 * hot path. A server started through one hub process is routed by all of them. The secret
 * is not in the hash: it is taken from the server's record.
 */
export class RouteTable {
  private readonly cache = new Map<string, Route>();
  /** Per name, the sequence number of the newest change or re-read: an older re-read that finishes late is dropped. */
  private readonly latest = new Map<string, number>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private loading: Promise<void> | undefined;
  private closed = false;

  /** Writes the store has not taken yet (it was unreachable): name -> route, or null for a removal. */
  private readonly unsynced = new Map<string, Route | null>();

  /** Without options, a table of this process only (unit tests with no store). */
  constructor(private readonly o?: RouteTableOptions) {}

  /**
   * Subscribe to changes, then read every route (so no change between the two is missed), and
   * re-read them every resyncMs. Throws StoreUnavailable if the store can't be reached.
   */
  async start(): Promise<void> {
    if (!this.o) return;
    this.unsubscribe ??= await this.o.store.subscribe(CHANNEL, (name) => void this.refresh(name));
    await this.load();
    if (this.o.resyncMs > 0 && !this.timer) {
      const { log } = this.o;
      this.timer = setInterval(() => {
        this.load().catch((err: Error) => log.debug({ err: err.message }, 'could not re-read the routes; trying again later'));
      }, this.o.resyncMs);
      this.timer.unref();
    }
  }

  /** The route of a user's server in this process's cache, or undefined. */
  get(escapedName: string): Route | undefined {
    return this.cache.get(escapedName);
  }

  /**
   * Route the server, in this process at once and in every other hub process on the store once
   * the returned promise resolves (await it before telling the user the server is ready). The
   * server's record, with its secret, must already be in the store. Never rejects: if the store
   * can't be reached, the write is kept and made again before the next re-read (until then only
   * this process routes it). Safe to repeat.
   */
  add(route: Route): Promise<void> {
    this.mark(route.escapedName);
    this.cache.set(route.escapedName, route);
    return this.writeThrough(route.escapedName, route);
  }

  /** Stop routing the server, here at once and in every hub process once the promise resolves. Never rejects, as `add`. Safe to repeat. */
  remove(escapedName: string): Promise<void> {
    this.mark(escapedName);
    this.cache.delete(escapedName);
    return this.writeThrough(escapedName, null);
  }

  /** Every route in this process's cache. */
  list(): Route[] {
    return [...this.cache.values()];
  }

  /** Read every route from the store again (also after an outage). One at a time; a call during a read joins it. */
  load(): Promise<void> {
    this.loading ??= this.readAll().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.loading?.catch(() => undefined);
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.();
  }

  private mark(escapedName: string): number {
    const seq = ++this.seq;
    this.latest.set(escapedName, seq);
    return seq;
  }

  private async writeThrough(escapedName: string, route: Route | null): Promise<void> {
    if (!this.o) return;
    this.unsynced.delete(escapedName);
    try {
      await this.write(this.o, escapedName, route);
    } catch (err) {
      // Unless a newer change of this name came meanwhile, keep it for the next re-read.
      if (route === null ? !this.cache.has(escapedName) : this.cache.get(escapedName) === route) this.unsynced.set(escapedName, route);
      this.o.log.warn({ server: escapedName, err: (err as Error).message }, 'could not share a route change with the other hub processes; retrying');
    }
  }

  private async write(o: RouteTableOptions, escapedName: string, route: Route | null): Promise<void> {
    if (route) {
      const stored: StoredRoute = { user: route.user, target: route.target.origin };
      await o.store.hashSet(ROUTES_KEY, { [escapedName]: JSON.stringify(stored) });
    } else {
      await o.store.hashDelete(ROUTES_KEY, escapedName);
    }
    await o.store.publish(CHANNEL, escapedName);
  }

  private async readAll(): Promise<void> {
    if (!this.o) return;
    const o = this.o;
    // First the writes the store missed: this process's routes are the truth about its starts.
    for (const [name, route] of [...this.unsynced]) {
      await this.write(o, name, route);
      if (this.unsynced.get(name) === route) this.unsynced.delete(name);
    }
    const startedAt = this.seq;
    const [stored, records] = await Promise.all([o.store.hashGetAll(ROUTES_KEY), o.records.list()]);
    if (this.closed) return;
    const byName = new Map(records.map((r) => [r.escapedName, r]));
    const fresh = new Map<string, Route>();
    for (const [name, text] of Object.entries(stored)) {
      const route = this.toRoute(name, text, byName.get(name) ?? null);
      if (route) fresh.set(name, route);
    }
    // A change made or heard while we read is newer than what we read: keep it.
    const untouched = (name: string): boolean => (this.latest.get(name) ?? 0) <= startedAt;
    for (const name of [...this.cache.keys()]) if (!fresh.has(name) && untouched(name)) this.cache.delete(name);
    for (const [name, route] of fresh) if (untouched(name)) this.cache.set(name, route);
  }

  private async refresh(escapedName: string): Promise<void> {
    if (!this.o) return;
    const o = this.o;
    const seq = this.mark(escapedName);
    try {
      const [text, record] = await Promise.all([o.store.hashGet(ROUTES_KEY, escapedName), o.records.get(escapedName)]);
      if (this.closed || this.latest.get(escapedName) !== seq) return;
      const route = this.toRoute(escapedName, text, record);
      if (route) this.cache.set(escapedName, route);
      else this.cache.delete(escapedName);
    } catch (err) {
      // The periodic re-read repairs it once the store answers.
      o.log.warn({ server: escapedName, err: (err as Error).message }, 'could not re-read a changed route');
    }
  }

  private toRoute(escapedName: string, text: string | null, record: ServerRecord | null): Route | undefined {
    if (text === null || !record?.secret) return undefined;
    try {
      const stored = JSON.parse(text) as StoredRoute;
      return { user: stored.user, escapedName, target: new URL(stored.target), authorization: `token ${record.secret}` };
    } catch {
      this.o?.log.warn({ server: escapedName }, 'ignoring a corrupt route in the store');
      return undefined;
    }
  }
}
