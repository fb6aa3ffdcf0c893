import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { envName, loadConfig } from '../../server/config/index.js';
import { ConfigError } from '../../server/errors.js';

describe('configuration', () => {
  it('has working defaults for a quick start', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.store, 'memory');
    assert.equal(c.spawner, 'local');
    assert.equal(c.port, 8000);
    assert.ok(Object.isFrozen(c));
  });

  it('layers defaults < file < environment < overrides', () => {
    const c = loadConfig({ file: { port: 9000, logLevel: 'warn' }, env: { OERHUB_PORT: '9100', OERHUB_ADMIN_USERS: 'ann, bo' }, overrides: { logLevel: 'error' } });
    assert.equal(c.port, 9100);
    assert.equal(c.logLevel, 'error');
    assert.deepEqual(c.adminUsers, ['ann', 'bo']);
  });

  it('stops with a message naming every bad key and what it expected', () => {
    try {
      loadConfig({ env: { OERHUB_PORT: 'eighty', OERHUB_STORE: 'mongo', OERHUB_NOPE: '1' }, file: { colour: 'red' } });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const text = err.message;
      assert.match(text, /port \(OERHUB_PORT\): Expected number/);
      assert.match(text, /store \(OERHUB_STORE\): Invalid enum value.*'memory' \| 'redis'/);
      assert.match(text, /OERHUB_NOPE: unknown environment variable/);
      assert.match(text, /colour \(config file\): unknown option/);
    }
  });

  it('maps option names to environment variables', () => {
    assert.equal(envName('redisUrl'), 'OERHUB_REDIS_URL');
    assert.equal(envName('startTimeoutS'), 'OERHUB_START_TIMEOUT_S');
  });

  it('lists every option with --help', () => {
    const main = path.resolve(__dirname, '../../dist/server/main.js');
    const out = execFileSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
    for (const key of ['port', 'store', 'redisUrl', 'notebookVenv', 'frontDoorSocket']) assert.match(out, new RegExp(`\\b${key}\\b`));
    assert.match(out, /OERHUB_REDIS_URL/);
  });

  it('refuses a bad value at start with the key in the message and a non-zero exit', () => {
    const main = path.resolve(__dirname, '../../dist/server/main.js');
    try {
      execFileSync(process.execPath, [main], { encoding: 'utf8', env: { ...process.env, OERHUB_PORT: '-1' }, stdio: 'pipe' });
      assert.fail('should have exited non-zero');
    } catch (err) {
      const e = err as { status: number; stderr: string };
      assert.equal(e.status, 1);
      assert.match(e.stderr, /port \(OERHUB_PORT\)/);
    }
  });
});
