import { isEscapedName } from '../names.js';

export type UserPath =
  | { kind: 'user'; escapedName: string }
  | { kind: 'add-slash'; location: string }
  | { kind: 'bad'; reason: string };

// Encoded `.`, `/` and `\`; their raw forms are checked separately.
const ENCODED_TRAVERSAL = /%(2e|2f|5c)/i;

/**
 * Which user a `/user/NAME/...` URL belongs to. Refuses any path that could be read as
 * another user's once a server, a framework or nginx normalises it: dot segments (plain or
 * percent-encoded), encoded slashes or backslashes, raw backslashes and empty segments.
 * Names are matched exactly in their escaped form, so case variants don't route anywhere.
 */
export function parseUserPath(url: string): UserPath {
  // url starts with "/user/" (checked by the caller)
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const slash = path.indexOf('/', 6);
  const name = slash === -1 ? path.slice(6) : path.slice(6, slash);
  if (!isEscapedName(name)) return { kind: 'bad', reason: 'not a user name' };
  if (slash === -1) return { kind: 'add-slash', location: `/user/${name}/${q === -1 ? '' : url.slice(q)}` };
  const rest = path.slice(slash);
  if (rest.includes('\\') || rest.includes('//') || ENCODED_TRAVERSAL.test(rest)) return { kind: 'bad', reason: 'encoded or empty path segment' };
  if (/\/\.\.?(\/|$)/.test(rest)) return { kind: 'bad', reason: 'dot segment' };
  return { kind: 'user', escapedName: name };
}
