import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log record. */
const REDACT = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  'token',
  'secret',
  'password',
  '*.token',
  '*.secret',
  '*.password',
  'SAMLResponse',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { app: 'oerhub' } }, destination);
}

/** Longest path kept in a log line. */
const MAX_LOGGED_PATH = 200;

/**
 * A request URL as it may be logged: the path (cut to 200 characters) and the names of its query
 * parameters, never their values. Query strings carry secrets: SAML responses and requests,
 * RelayState, repository tokens in nbgitpuller links, `?token=` on Jupyter URLs.
 */
export function logUrl(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  const path = (q === -1 ? url : url.slice(0, q)).slice(0, MAX_LOGGED_PATH);
  if (q === -1) return path;
  const names = url
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .slice(0, 20)
    .map((pair) => pair.split('=')[0]!.slice(0, 40) + '=[redacted]');
  return `${path}?${names.join('&')}`;
}
