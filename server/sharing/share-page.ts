import fs from 'node:fs';
import type http from 'node:http';
import type nunjucks from 'nunjucks';
import type { ShareRecord } from './share-repo.js';

/**
 * The share origin's one policy: a sandboxed document (an opaque origin, no scripts, no
 * forms, no popups, no plugins) that loads nothing but its own inline styles and data: images.
 * Even if the sanitiser let a script through, the browser would not run it.
 */
export const SHARE_CSP = ["sandbox", "default-src 'none'", "style-src 'unsafe-inline'", 'img-src data:', "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"].join('; ');

export function shareHeaders(length: number): http.OutgoingHttpHeaders {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-length': length,
    'content-security-policy': SHARE_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store, private',
  };
}

/** The page around a rendered notebook: its styles inline (the CSP allows no stylesheet from elsewhere). */
export function sharePage(views: nunjucks.Environment, cssFile: string): (rec: ShareRecord, article: string, note: string | null) => string {
  const css = fs.readFileSync(cssFile, 'utf8').replace(/<\/style/gi, '');
  return (rec, article, note) =>
    views.render('share-view.njk', { rec, article, note, css, created: new Date(rec.createdAt).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' });
}

/** A short page for refusals on the share origin (same policy; nothing from the hub loads here). */
export function shareErrorPage(status: number, message: string, hubOrigin: string): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${status} · oerhub</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}</style></head><body><h1>${status === 410 ? 'This link has expired or was revoked' : status === 404 ? 'Not found' : 'Not allowed'}</h1><p id="message">${esc(message)}</p><p><a href="${esc(hubOrigin)}/hub/home">Go to the hub</a></p></body></html>`;
}
