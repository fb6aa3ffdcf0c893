import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

/**
 * Paths pino blanks out wherever they appear in a log record: cookies, Authorization headers,
 * tokens, passwords, SAML messages. Log fields, never whole requests or bodies, is the rule;
 * these catch the slips (pino's `*` matches one level).
 */
export const REDACT = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-auth-token"]',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  'headers["set-cookie"]',
  'req.body',
  'body',
  'cookie',
  'authorization',
  'token',
  'secret',
  'password',
  'newPassword',
  'apiToken',
  'cookieSecret',
  'SAMLResponse',
  'SAMLRequest',
  'RelayState',
  'assertion',
  '*.cookie',
  '*.authorization',
  '*.token',
  '*.secret',
  '*.password',
  '*.newPassword',
  '*.apiToken',
  '*.SAMLResponse',
  '*.SAMLRequest',
  '*.assertion',
];

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  /** json, pretty (one readable line a record), or auto: pretty when stdout is a terminal. Ignored with a destination. */
  format?: LogFormat;
  /** Whether stdout is a terminal (auto); process.stdout.isTTY when left out. */
  isTTY?: boolean;
}

/**
 * The hub's root logger: JSON lines for log collectors, or readable lines on a terminal. A
 * destination (tests) always gets JSON.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, options: LoggerOptions = {}): Logger {
  const settings = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { app: 'oerhub' } };
  if (destination) return pino(settings, destination);
  const format = options.format ?? 'json';
  const tty = options.isTTY ?? process.stdout.isTTY === true;
  if (format === 'pretty' || (format === 'auto' && tty)) {
    // In-process and synchronous: no worker thread to outlive close(), no line lost at exit.
    const pretty = pinoPretty({ sync: true, singleLine: true, colorize: tty, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app' });
    return pino(settings, pretty);
  }
  return pino(settings);
}

/** What a request id may look like: what load balancers and tracing tools send (UUIDs, hex, base64url), never a log injection. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * The request's id: the front proxy's X-Request-Id when the request came through the front
 * door and the id is well formed (so nginx's and the hub's lines match), otherwise a new UUID.
 * On the TCP port the header is anyone's say-so (user code reaches 127.0.0.1), so it is ignored.
 */
export function requestIdOf(req: http.IncomingMessage, fromFrontDoor: boolean): string {
  const given = req.headers['x-request-id'];
  if (fromFrontDoor && typeof given === 'string' && REQUEST_ID.test(given)) return given;
  return randomUUID();
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
