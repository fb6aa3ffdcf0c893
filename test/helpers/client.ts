/**
 * A browser-like HTTP client for tests: a cookie jar that honours Path (so the hub's
 * /hub/ and /user/NAME/ cookie scoping is exercised as a browser would), manual redirects,
 * and helpers to sign in through the real login form.
 */
export interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  location: string | null;
}

/** A browser's cookie jar in miniature: Path-scoped, honouring expiry and deletion. */
export class CookieJar {
  readonly cookies = new Map<string, StoredCookie>();

  /** The Cookie header a browser would send for this path. */
  header(path: string): string {
    return [...this.cookies.values()]
      .filter((c) => path.startsWith(c.path) || path === c.path.replace(/\/$/, ''))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  find(name: string): StoredCookie | undefined {
    for (const c of this.cookies.values()) if (c.name === name) return c;
    return undefined;
  }

  /** Take one Set-Cookie line received for a request to requestPath. */
  store(line: string, requestPath: string): void {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = requestPath.slice(0, requestPath.lastIndexOf('/') + 1) || '/';
    let expired = false;
    for (const a of attrs) {
      const [k, v = ''] = a.split('=');
      const key = k.trim().toLowerCase();
      if (key === 'path') path = v.trim();
      if (key === 'max-age' && Number(v) <= 0) expired = true;
      if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
    }
    const id = `${name}\n${path}`;
    if (expired || value === '') this.cookies.delete(id);
    else this.cookies.set(id, { name, value, path });
  }
}

export class HubClient {
  readonly jar = new CookieJar();

  constructor(readonly baseUrl: string) {}

  get cookies(): Map<string, StoredCookie> {
    return this.jar.cookies;
  }

  cookieHeader(path: string): string {
    return this.jar.header(path);
  }

  cookie(name: string): StoredCookie | undefined {
    return this.jar.find(name);
  }

  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: string; form?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    const cookie = this.cookieHeader(path);
    if (cookie && !headers.cookie) headers.cookie = cookie;
    let body = init.body;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(this.baseUrl + path, { method, headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.jar.store(line, path);
    return { status: res.status, headers: res.headers, body: await res.text(), location: res.headers.get('location') };
  }

  get(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.request('GET', path, { headers });
  }

  /** GET and follow redirects on this hub (at most 10). Returns the last reply and its path. */
  async follow(path: string, headers?: Record<string, string>): Promise<Reply & { path: string }> {
    let current = path;
    for (let i = 0; i < 10; i++) {
      const reply = await this.get(current, headers);
      if (reply.status < 300 || reply.status >= 400 || !reply.location) return { ...reply, path: current };
      const next = new URL(reply.location, this.baseUrl + current);
      if (next.origin !== new URL(this.baseUrl).origin) return { ...reply, path: current };
      current = next.pathname + next.search;
    }
    throw new Error(`too many redirects from ${path}`);
  }

  /** The hidden XSRF field of a hub form page. */
  static csrfFrom(html: string): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (!m) throw new Error('no _csrf field in page');
    return m[1];
  }

  /** Sign in through the real form; returns the reply to the POST. */
  async login(username: string, password: string, next?: string): Promise<Reply> {
    const q = next ? `?next=${encodeURIComponent(next)}` : '';
    const page = await this.get(`/hub/login${q}`);
    return this.request('POST', `/hub/login${q}`, { form: { _csrf: HubClient.csrfFrom(page.body), username, password } });
  }
}
