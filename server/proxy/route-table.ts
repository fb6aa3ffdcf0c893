/** Where one user's server is, and the header that opens it. Kept in memory: the proxy reads it on every request. */
export interface Route {
  user: string;
  escapedName: string;
  /** http://127.0.0.1:PORT, parsed once. */
  target: URL;
  /** `token <secret>`, injected by the proxy; never sent to a browser. */
  authorization: string;
}

/** The proxy's in-memory route table, filled by the server manager (and at start from the store). */
export class RouteTable {
  private readonly routes = new Map<string, Route>();

  get(escapedName: string): Route | undefined {
    return this.routes.get(escapedName);
  }

  add(route: Route): void {
    this.routes.set(route.escapedName, route);
  }

  remove(escapedName: string): void {
    this.routes.delete(escapedName);
  }

  list(): Route[] {
    return [...this.routes.values()];
  }
}
