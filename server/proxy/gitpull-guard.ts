/**
 * nbgitpuller (1.3) joins a link's `targetpath`, or else the repository URL's last segment, to the
 * server's root without checking it. A link anyone can send a student, with
 * `targetpath=.ipython/profile_default/startup` (or `repo=https://evil.example/.ipython`), would
 * clone the link author's files where the student's next kernel runs them; an absolute or `..`
 * path writes anywhere the student can. So a pull may only go into a plain folder of the home:
 * relative, every segment non-empty-and-visible (no `.`, `..` or hidden names).
 */

// The status page and its API; not `git-pull/static/…`, the page's own scripts.
const GIT_PULL = /^\/+git-pull(?:\/+api)?\/*$/;

/**
 * Why a request for a user server's nbgitpuller handler must be refused, or null. `rest` is the
 * path after `/user/NAME` (percent-encoded, as sent), `query` the raw query string.
 */
export function refusedGitPull(rest: string, query: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch {
    return null; // Not a path Jupyter routes to a handler either.
  }
  if (!GIT_PULL.test(path)) return null;
  const params = new URLSearchParams(query);
  const repo = params.get('repo') ?? '';
  // The page reads targetpath or targetPath, else the repository's last segment (trailing
  // slashes dropped); its API reads targetpath as given. Each must be safe.
  const given = [...params.getAll('targetpath'), ...params.getAll('targetPath')];
  for (const target of given.length ? given : [repo.replace(/\/+$/, '').split('/').at(-1) ?? '']) {
    const refusal = unsafeTarget(target);
    if (refusal) return refusal;
  }
  return null;
}

function unsafeTarget(target: string): string | null {
  if (target === '') return 'This nbgitpuller link names no folder to pull into.';
  if (/[\\\0]/.test(target) || target.startsWith('/') || target.startsWith('~')) return 'This nbgitpuller link would pull outside your home folder.';
  if (target.split('/').some((segment) => segment.startsWith('.'))) {
    return 'This nbgitpuller link would pull into a hidden folder or outside your home (a path part starts with a dot), where files can run code; ask for a link with a plain folder name.';
  }
  return null;
}

/** The same check for a request's URL (`/user/NAME/git-pull?...`), cheap when it isn't one. */
export function refusedGitPullUrl(url: string, escapedName: string): string | null {
  if (!url.includes('git-pull') && !url.includes('%')) return null;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const prefix = `/user/${escapedName}`;
  if (!path.startsWith(prefix)) return null;
  return refusedGitPull(path.slice(prefix.length), q === -1 ? '' : url.slice(q + 1));
}
