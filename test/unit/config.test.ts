import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { envName, loadConfig } from '../../server/config/index.js';
import { ConfigError, StoreUnavailable } from '../../server/errors.js';
import { describeStoreFailure, redactRedisUrl } from '../../server/store/index.js';

describe('configuration', () => {
  it('has working defaults for a quick start', () => {
    const c = loadConfig({ env: {} });
    // Durable by default: a restart keeps accounts, sign-ins and servers.
    assert.equal(c.store, 'sqlite');
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
      assert.match(text, /store \(OERHUB_STORE\): Invalid enum value.*'sqlite' \| 'redis' \| 'memory'/);
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

  describe('store=redis', () => {
    const secret = 'c'.repeat(32);

    function problemsOf(env: NodeJS.ProcessEnv): string {
      try {
        loadConfig({ env });
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message;
      }
      return '';
    }

    it('refuses to start without a configured cookie secret, naming the key', () => {
      const text = problemsOf({ OERHUB_STORE: 'redis', OERHUB_REDIS_URL: 'redis://:pw@127.0.0.1:6379/0' });
      assert.match(text, /cookieSecret \(OERHUB_COOKIE_SECRET\): store=redis needs a configured cookie secret/);
    });

    it('refuses Redis over TCP without a password, saying how to give one', () => {
      const text = problemsOf({ OERHUB_STORE: 'redis', OERHUB_COOKIE_SECRET: secret, OERHUB_REDIS_URL: 'redis://127.0.0.1:6379/0' });
      assert.match(text, /redisPassword \(OERHUB_REDIS_PASSWORD\): store=redis over TCP needs Redis' password/);
      assert.match(text, /redis:\/\/:PASSWORD@host:6379\/0/);
      assert.match(text, /unix socket/);
      // The default redisUrl has no password either.
      assert.match(problemsOf({ OERHUB_STORE: 'redis', OERHUB_COOKIE_SECRET: secret }), /redisPassword/);
    });

    it('accepts the password in redisPassword, in the URL, or a unix socket without one', () => {
      const ok = [
        { OERHUB_REDIS_PASSWORD: 'pw' },
        { OERHUB_REDIS_URL: 'redis://:pw@127.0.0.1:6379/0' },
        { OERHUB_REDIS_URL: 'rediss://hub:pw@redis.example.edu:6380/1' },
        { OERHUB_REDIS_URL: 'redis://127.0.0.1:6379/0?password=pw' },
        { OERHUB_REDIS_URL: '/run/redis/redis.sock' },
      ];
      for (const env of ok) {
        const c = loadConfig({ env: { OERHUB_STORE: 'redis', OERHUB_COOKIE_SECRET: secret, ...env } });
        assert.equal(c.store, 'redis', JSON.stringify(env));
      }
    });

    it('refuses a redisUrl that is neither a redis:// URL nor a socket path', () => {
      assert.match(problemsOf({ OERHUB_STORE: 'redis', OERHUB_COOKIE_SECRET: secret, OERHUB_REDIS_URL: 'http://127.0.0.1:6379' }), /redisUrl \(OERHUB_REDIS_URL\): expected redis:\/\//);
    });

    it('other stores need neither, so the quick start stays one command', () => {
      assert.equal(loadConfig({ env: {} }).store, 'sqlite');
      assert.equal(loadConfig({ env: { OERHUB_STORE: 'memory' } }).store, 'memory');
    });

    it('never shows the Redis password in a start-up message', () => {
      assert.equal(redactRedisUrl('redis://:s3cret@127.0.0.1:6379/0'), 'redis://:***@127.0.0.1:6379/0');
      assert.equal(redactRedisUrl('rediss://hub:s3cret@redis.example.edu:6380'), 'rediss://hub:***@redis.example.edu:6380');
      assert.equal(redactRedisUrl('redis://127.0.0.1:6379/0?password=s3cret&db=1'), 'redis://127.0.0.1:6379/0?password=***&db=1');
      assert.equal(redactRedisUrl('redis://127.0.0.1:6379/0'), 'redis://127.0.0.1:6379/0');
      const config = loadConfig({ env: { OERHUB_STORE: 'redis', OERHUB_COOKIE_SECRET: secret, OERHUB_REDIS_URL: 'redis://:s3cret@127.0.0.1:1/0' } });
      const message = describeStoreFailure(config, new StoreUnavailable('connect ECONNREFUSED to redis://:s3cret@127.0.0.1:1/0'));
      assert.doesNotMatch(message, /s3cret/);
      assert.match(message, /redisUrl=redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/);
      assert.match(message, /ECONNREFUSED/);
    });
  });
});
