import path from 'node:path';
import type http from 'node:http';
import nunjucks from 'nunjucks';

export type PageContext = Record<string, unknown>;

/** One nunjucks environment per hub (autoescaped), over views/. */
export function createViews(viewsDir: string): nunjucks.Environment {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(path.resolve(viewsDir), { noCache: false }), {
    autoescape: true,
    throwOnUndefined: false,
  });
  return env;
}

export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  // Hub pages run only our own script and are never framed (user servers share this origin).
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'x-frame-options': 'DENY',
};

/** Render a page onto a raw response (used by the proxy, outside express). */
export function sendPage(views: nunjucks.Environment, res: http.ServerResponse, status: number, template: string, ctx: PageContext): void {
  const html = views.render(template, ctx);
  res.writeHead(status, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

/** Headings for error pages, by status. */
export function headingFor(status: number): string {
  if (status === 400) return 'That request was not understood';
  if (status === 401) return 'Please sign in';
  if (status === 403) return 'Not allowed';
  if (status === 404) return 'Page not found';
  if (status === 429) return 'Too many attempts';
  if (status === 502 || status === 504) return 'Your server is not answering';
  if (status === 503) return 'Temporarily unavailable';
  return 'Something went wrong';
}

/** Whether the client wants JSON rather than a page. */
export function wantsJson(req: http.IncomingMessage): boolean {
  const url = req.url ?? '';
  if (url.startsWith('/hub/api/') || url.includes('/api/')) return true;
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}
