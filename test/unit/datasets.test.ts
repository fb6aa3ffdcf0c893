import assert from 'node:assert/strict';
import { loadConfig } from '../../server/config/index.js';
import { ConfigError } from '../../server/errors.js';
import { datasetsFor } from '../../server/spawner/docker-spawner.js';

describe('datasets are mounted only where they belong', () => {
  const config = loadConfig({
    env: {},
    overrides: {
      dockerProfiles: [
        { name: 'python', displayName: 'Python', image: 'oerhub/python:latest', datasets: ['grades', 'maps'] },
        { name: 'r', displayName: 'R', image: 'oerhub/r:latest' },
      ],
      dockerDatasets: [
        { source: '/srv/grades', name: 'grades' },
        { source: 'maps-volume', name: 'maps', public: true },
        { source: '/srv/survey', name: 'survey' },
      ],
    },
  });
  const [python, r] = config.dockerProfiles;
  const names = (profile: typeof python, ephemeral: boolean): string[] => datasetsFor(config.dockerDatasets, profile!, ephemeral).map((d) => d.name);

  it('a student gets the datasets of their profile, or all of them when the profile lists none', () => {
    assert.deepEqual(names(python, false), ['grades', 'maps']);
    assert.deepEqual(names(r, false), ['grades', 'maps', 'survey']);
  });

  it("a course's datasets are mounted besides the profile's, and only configured ones", () => {
    assert.deepEqual(datasetsFor(config.dockerDatasets, python!, false, ['survey', 'unknown']).map((d) => d.name), ['grades', 'maps', 'survey']);
    // A visitor's workspace still gets only public data, whatever the course lists.
    assert.deepEqual(datasetsFor(config.dockerDatasets, python!, true, ['survey']).map((d) => d.name), ['maps']);
  });

  it('a "Try it" visitor gets only the public ones', () => {
    assert.deepEqual(names(python, true), ['maps']);
    assert.deepEqual(names(r, true), ['maps']);
  });

  it('a dataset is not public unless it says so', () => {
    assert.equal(config.dockerDatasets[0]!.public, false);
  });

  it('a profile naming a dataset that is not configured stops the start with a message naming it', () => {
    assert.throws(
      () => loadConfig({ env: {}, overrides: { dockerProfiles: [{ name: 'python', displayName: 'Python', image: 'x', datasets: ['gradez'] }] } }),
      (err: Error) => err instanceof ConfigError && /profile python lists dataset "gradez"/.test(err.message),
    );
  });
});
