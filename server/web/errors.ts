import type { ErrorRequestHandler, RequestHandler } from 'express';
import type nunjucks from 'nunjucks';
import { logUrl, type Logger } from '../log.js';
import { HubError, NotFound, StoreUnavailable } from '../errors.js';
import { headingFor, wantsJson, PAGE_HEADERS } from './render.js';

interface HttpishError {
  status?: number;
  statusCode?: number;
  code?: string;
  type?: string;
  message?: string;
}

/** Turn what a library threw into one of ours, so every failure has a status and a safe message. */
function toHubError(err: unknown): HubError | null {
  if (err instanceof HubError) return err;
  const e = err as HttpishError;
  if (e?.code === 'EBADCSRFTOKEN' || e?.message === 'invalid csrf token') {
    return new HubError('XSRF', 403, 'This form has expired or was sent from another site. Reload the page and try again.');
  }
  if (e?.type === 'entity.too.large') return new HubError('TOO_LARGE', 413, 'That request is too large.');
  if (e?.type === 'entity.parse.failed' || e?.type === 'encoding.unsupported') return new HubError('BAD_REQUEST', 400, 'That request body could not be read.');
  if (e?.message && /ECONNREFUSED|Connection is closed|Stream isn't writeable|MaxRetriesPerRequest/i.test(e.message)) return new StoreUnavailable(e.message);
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new HubError('BAD_REQUEST', status, 'That request was not understood.');
  return null;
}

const STORE_OUTAGE_HEADING = 'The hub\'s state store is unreachable';
const STORE_OUTAGE_MESSAGE =
  'The hub\'s state store is unreachable, so signing in and starting or stopping servers do not work right now. Your running notebooks keep working: go back to their tab. Please retry this page in a minute.';

export function notFound(): RequestHandler {
  return (_req, _res, next) => next(new NotFound());
}

/** The one place errors become responses: JSON under /hub/api, a page elsewhere. Unknown errors become a plain 500. */
export function errorHandler(views: nunjucks.Environment, rootLog: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const hubError = toHubError(err);
    const status = hubError?.status ?? 500;
    const message = hubError instanceof StoreUnavailable ? STORE_OUTAGE_MESSAGE : hubError?.userMessage ?? 'Something went wrong on our side. It has been logged.';
    const code = hubError?.code ?? 'INTERNAL';
    const fields = { status, code, method: req.method, url: logUrl(req.originalUrl) };
    // The request's own logger (pino-http) carries its id; errors before it was attached use the root.
    const log = (req.log as Logger | undefined) ?? rootLog;
    if (status >= 500 && !hubError) log.error({ ...fields, err }, 'unexpected error');
    else if (status >= 500) log.error({ ...fields, detail: hubError?.detail }, hubError?.message ?? 'error');
    else log.warn({ ...fields, detail: hubError?.detail }, message);
    if (res.headersSent) {
      // Failed after answering (e.g. saving the session once the page was sent): the reply
      // stands; cut it only if it is still being written.
      if (!res.writableEnded) res.destroy();
      return;
    }
    if (status === 503) res.setHeader('retry-after', '5');
    // The store can't be written (down, disk full): the answer must not save or touch the session
    // again. That failure would reach express's final handler after the reply, which prints a
    // stack and cuts the keep-alive connection, so the browser's next request fails too.
    if (hubError instanceof StoreUnavailable) Reflect.deleteProperty(req, 'session');
    if (wantsJson(req)) {
      res.status(status).json({ status, code, message });
      return;
    }
    // A store outage says what is wrong and what still works, so nobody closes a running notebook.
    const heading = hubError instanceof StoreUnavailable ? STORE_OUTAGE_HEADING : hubError?.code === 'ACCOUNT_DISABLED' ? 'This account is disabled' : headingFor(status);
    const html = views.render('error.njk', { status, code, message, heading, user: null });
    res.status(status).set(PAGE_HEADERS).send(html);
  };
}
