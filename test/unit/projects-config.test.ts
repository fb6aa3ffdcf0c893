import assert from 'node:assert/strict';
import { loadConfig } from '../../server/config/index.js';
import { ConfigError } from '../../server/errors.js';

describe('research project configuration', () => {
  const profiles = [
    { name: 'stata', displayName: 'Stata', image: 'site/stata:18', description: '' },
    { name: 'python', displayName: 'Python', image: 'oerhub/python:latest', description: '' },
  ];

  it('refuses a project-only profile as the default (first) Docker profile, naming the keys', () => {
    assert.throws(
      () => loadConfig({ env: {}, overrides: { spawner: 'docker', dockerProfiles: profiles } }),
      (err: unknown) => err instanceof ConfigError && /projectOnlyProfiles \(OERHUB_PROJECT_ONLY_PROFILES\): stata is the first of dockerProfiles/.test(err.message),
    );
  });

  it('accepts it once another profile comes first, or once it is not project-only', () => {
    assert.equal(loadConfig({ env: {}, overrides: { spawner: 'docker', dockerProfiles: [profiles[1], profiles[0]] } }).projectOnlyProfiles.includes('stata'), true);
    assert.deepEqual(loadConfig({ env: {}, overrides: { spawner: 'docker', dockerProfiles: profiles, projectOnlyProfiles: [] } }).projectOnlyProfiles, []);
  });
});
