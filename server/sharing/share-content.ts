import type http from 'node:http';
import type { Logger } from '../log.js';
import { HubError } from '../errors.js';
import { SHARE_PATH_PREFIX } from './share-origin.js';
import type { ShareService } from './share-service.js';
import { shareErrorPage, shareHeaders } from './share-page.js';

/**
 * The share origin's one handler (runs before express, like the proxy): GET
 * /oerhub-share/ID?e=EXPIRES&s=SIGNATURE answers the pre-rendered page under SHARE_CSP. It
 * reads no cookie and sets none; who may see a share was decided on the hub's origin, which
 * signed the URL. Everything else gets a short page with its status and a log line.
 */
export class ShareContent {
  constructor(private readonly o: { service: ShareService; log: Logger; hubOrigin: () => string }) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.refuse(req, res, 405, 'Shared notebooks can only be read.', 'method');
    // Every browser asks for one after each page: a plain 404, not a refusal worth a log line.
    // Like every answer of this origin, under its CSP and nosniff.
    if (pathname === '/favicon.ico') return void res.writeHead(404, { ...shareHeaders(0), 'cache-control': 'max-age=86400' }).end();
    if (!pathname.startsWith(SHARE_PATH_PREFIX)) return this.refuse(req, res, 404, 'There is no such page at this address.', 'not a view path');
    const id = pathname.slice(SHARE_PATH_PREFIX.length);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const expires = Number(query.get('e') ?? '');
    this.o.service.viewPage({ id, expires, sig: query.get('s') ?? '' }).then(
      ({ rec, html }) => {
        this.o.log.info({ share: rec.id, kind: rec.kind, owner: rec.owner }, 'shared notebook served');
        res.writeHead(200, shareHeaders(html.length));
        res.end(req.method === 'HEAD' ? undefined : html);
      },
      (err: Error) => {
        if (err instanceof HubError && err.status < 500) return this.refuse(req, res, err.status, err.userMessage, err.detail ?? err.code);
        this.o.log.error({ err: err.message }, 'could not serve a shared notebook');
        this.refuse(req, res, 503, 'The hub cannot show this notebook right now. Please retry in a moment.', 'error');
      },
    );
  }

  private refuse(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string, reason: string): void {
    this.o.log.warn({ status, reason, method: req.method, path: (req.url ?? '').split('?')[0]?.slice(0, 120) }, 'refused a request on the share origin');
    const body = Buffer.from(shareErrorPage(status, message, this.o.hubOrigin()));
    res.writeHead(status, shareHeaders(body.length));
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
