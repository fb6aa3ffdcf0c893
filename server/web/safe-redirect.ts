/**
 * The only redirect targets we accept from a user (`next=`, RelayState): absolute paths on
 * this hub under /hub/ or /user/. Anything that a browser could read as another host
 * (`//e`, `/\e`, `\\e`, `https://e`, `javascript:`), control characters, or a path that
 * normalises elsewhere is refused. Returns the normalised path, or null.
 */
export function safeNext(raw: unknown): string | null {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048) return null;
  if (!raw.startsWith('/') || raw.startsWith('//')) return null;
  // Browsers treat `\` as `/` and drop tabs/newlines; refuse rather than guess.
  if (/[\\\x00-\x20\x7f]/.test(raw)) return null;
  let url: URL;
  try {
    url = new URL(raw, 'http://hub.invalid');
  } catch {
    return null;
  }
  if (url.origin !== 'http://hub.invalid') return null;
  const path = url.pathname + url.search + url.hash;
  if (!(path.startsWith('/hub/') || path.startsWith('/user/'))) return null;
  // Resolved dot segments must not change where we land.
  if (url.pathname !== raw.split(/[?#]/)[0]) return null;
  return path;
}
