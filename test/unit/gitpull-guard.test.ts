import assert from 'node:assert/strict';
import { refusedGitPull, refusedGitPullUrl } from '../../server/proxy/gitpull-guard.js';

describe('nbgitpuller links may pull only into a plain folder of the home', () => {
  const link = (query: Record<string, string | undefined>): string => `/user/ada/git-pull?${new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined))}`;

  it('lets an ordinary link through: named folder, or the repository\'s name', () => {
    assert.equal(refusedGitPullUrl(link({ repo: 'https://git.example.edu/ada/cs101', urlpath: 'lab/tree/cs101/a.ipynb' }), 'ada'), null);
    assert.equal(refusedGitPullUrl(link({ repo: 'https://git.example.edu/ada/cs101.git', targetpath: 'courses/cs101' }), 'ada'), null);
    assert.equal(refusedGitPullUrl('/user/ada/lab/tree/.ipython', 'ada'), null, 'not a git-pull request');
    assert.equal(refusedGitPullUrl('/user/ada/git-pull/static/dist/bundle.js?v=1', 'ada'), null, 'the page\'s own script');
    assert.equal(refusedGitPullUrl(link({ repo: 'https://git.example.edu/ada/cs101/' }), 'ada'), null, 'a trailing slash is dropped, as nbgitpuller does');
  });

  it('refuses hidden folders (where startup files run), absolute paths, .. and an empty target, from targetpath or the repo URL', () => {
    for (const query of [
      { repo: 'https://evil.example/x', targetpath: '.ipython/profile_default/startup' },
      { repo: 'https://evil.example/x', targetpath: 'ok/.config' },
      { repo: 'https://evil.example/x', targetpath: '/etc' },
      { repo: 'https://evil.example/x', targetpath: '../oh-bob' },
      { repo: 'https://evil.example/x', targetpath: '~/x' },
      { repo: 'https://evil.example/x', targetpath: 'a\\..\\b' },
      { repo: 'https://evil.example/.ipython' },
      { repo: 'https://evil.example/x', targetPath: '.jupyter' },
      { repo: 'https://evil.example/x', targetpath: '' },
    ]) {
      assert.ok(refusedGitPullUrl(link(query), 'ada'), JSON.stringify(query));
      assert.ok(refusedGitPullUrl(link(query).replace('/git-pull?', '/git-pull/api?'), 'ada'), `api: ${JSON.stringify(query)}`);
    }
  });

  it('sees through encoded and doubled slashes in the handler\'s path', () => {
    assert.ok(refusedGitPull('/git%2Dpull', 'repo=x&targetpath=.jupyter'));
    assert.ok(refusedGitPull('//git-pull/', 'repo=x&targetpath=.jupyter'));
    assert.ok(refusedGitPullUrl('/user/ada/%67it-pull?repo=x&targetpath=.jupyter', 'ada'));
  });
});
