import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { generate } from 'otplib';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { clientFor, startTestHub } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { formPost } from '../helpers/projects.js';

/**
 * Issue 12, TOTP secrets at rest: the store (a real Redis here, read directly as someone with a
 * copy of it would) never holds a TOTP secret in plain text, a secret an older hub stored in
 * plain text is sealed the first time it is used, and sign-in with the code keeps working.
 */

const PREFIX = 'pj2-totp:';
const TINA_PASSWORD = 'granite willow comet basin';
const MILO_PASSWORD = 'harbour violet engine sixty';

describe('TOTP secrets are encrypted in the store, and two-step sign-in still works', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let raw: Redis;
  let hub: Hub;
  let tinaSecret = '';

  /** Every string in the store under this hub's prefix: keys, values, hash fields, members. */
  async function everything(): Promise<string[]> {
    const out: string[] = [];
    for (const key of await raw.keys(`${PREFIX}*`)) {
      out.push(key);
      const type = await raw.type(key);
      if (type === 'string') out.push((await raw.get(key)) ?? '');
      else if (type === 'hash') out.push(...Object.entries(await raw.hgetall(key)).flat());
      else if (type === 'set') out.push(...(await raw.smembers(key)));
      else if (type === 'list') out.push(...(await raw.lrange(key, 0, -1)));
      else if (type === 'zset') out.push(...(await raw.zrange(key, 0, -1)));
    }
    return out;
  }

  async function signInWithCode(name: string, password: string, code: string): Promise<number> {
    const c = clientFor(hub);
    const first = await c.login(name, password);
    assert.equal(first.location, '/hub/login/totp');
    const page = await c.get('/hub/login/totp');
    const res = await c.request('POST', '/hub/login/totp', { form: { _csrf: HubClient.csrfFrom(page.body), code } });
    return res.status === 303 ? (await c.get('/hub/home')).status : res.status;
  }

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { lazyConnect: false });
    hub = await startTestHub('pj2-totp', { store: 'redis', redisUrl: redis.url, redisKeyPrefix: PREFIX });
    await hub.users.createLocal('pj2-tina', TINA_PASSWORD);
    await hub.users.createLocal('pj2-milo', MILO_PASSWORD);
  });

  after(async () => {
    await hub?.close();
    raw?.disconnect();
    await redis?.stop();
  });

  it('turning TOTP on stores only a sealed secret (v1, AES-256-GCM); the code from the app signs in', async () => {
    const c = clientFor(hub);
    assert.equal((await c.login('pj2-tina', TINA_PASSWORD)).status, 303);
    const begin = await formPost(c, '/hub/account', '/hub/account/totp', {});
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(begin.body)?.[1];
    assert.ok(secret, begin.body.slice(0, 300));
    tinaSecret = secret;
    // Even while enrolment waits for its code, the store has it sealed.
    const pending = await everything();
    assert.ok(!pending.some((v) => v.toUpperCase().includes(secret)), 'no plain secret while pending');
    const on = await c.request('POST', '/hub/account/totp', { form: { _csrf: HubClient.csrfFrom(begin.body), code: await generate({ secret }) } });
    assert.equal(on.status, 303);

    const stored = await raw.get(`${PREFIX}account-totp:pj2-tina`);
    assert.match(stored ?? '', /^v1:[A-Za-z0-9_-]{40,}$/);
    const all = await everything();
    assert.ok(!all.some((v) => v.toUpperCase().includes(secret)), 'the plain secret is nowhere in the store');
    // The setup used this time step's code: the app's next one (30 s on) is accepted, within the allowed drift.
    const next = await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 });
    assert.equal(await signInWithCode('pj2-tina', TINA_PASSWORD, next), 200);
    assert.equal(await signInWithCode('pj2-tina', TINA_PASSWORD, '000000'), 401);
  });

  it('a secret an older hub stored in plain text still signs in, and is sealed in the store by that use', async () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await raw.set(`${PREFIX}account-totp:pj2-milo`, secret);
    assert.equal(await signInWithCode('pj2-milo', MILO_PASSWORD, await generate({ secret })), 200);
    const stored = await raw.get(`${PREFIX}account-totp:pj2-milo`);
    assert.match(stored ?? '', /^v1:/);
    assert.ok(!(await everything()).some((v) => v.includes(secret)));
    // Sealed, it still works with the next code.
    assert.equal(await signInWithCode('pj2-milo', MILO_PASSWORD, await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 })), 200);
  });

  it('a sealed secret copied onto another account does not open there: the other account\'s codes don\'t pass', async () => {
    const tinas = (await raw.get(`${PREFIX}account-totp:pj2-tina`))!;
    await raw.set(`${PREFIX}account-totp:pj2-milo`, tinas);
    // A code that is right for Tina's secret, and not yet used on Milo's account.
    await raw.del(`${PREFIX}account-totp-step:pj2-milo`);
    assert.equal(await signInWithCode('pj2-milo', MILO_PASSWORD, await generate({ secret: tinaSecret })), 401);
    assert.match(fs.readFileSync(path.resolve(__dirname, '../../test-output/pj2-totp.log'), 'utf8'), /a TOTP secret does not open/);
  });
});
