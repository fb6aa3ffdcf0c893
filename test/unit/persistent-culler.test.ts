import assert from 'node:assert/strict';
import { loadConfig } from '../../server/config/index.js';
import { PersistentCuller, type PersistentCullReason } from '../../server/culler/index.js';
import { createLogger } from '../../server/log.js';
import type { Route } from '../../server/proxy/route-table.js';
import type { ServerSummary } from '../../server/servers/server-manager.js';

const HOUR = 3600_000;

/** A culler over a fixed list of servers, with a clock the test moves and kernels it sets. */
function cullerOver(servers: ServerSummary[], overrides: Record<string, unknown> = {}) {
  const config = loadConfig({ env: {}, overrides: { spawner: 'docker', ...overrides } });
  const clock = { now: 0 };
  const busy = new Set<string>();
  const failing = new Set<string>();
  const stopped: { name: string; reason: PersistentCullReason }[] = [];
  let storeDown = false;
  const culler = new PersistentCuller({
    config,
    log: createLogger('silent'),
    servers: async () => {
      if (storeDown) throw new Error('store unreachable');
      return servers.filter((s) => !stopped.some((x) => x.name === s.user));
    },
    lastActivity: async () => new Map(),
    route: (escapedName): Route => ({ user: escapedName, escapedName, target: new URL('http://127.0.0.1:9'), authorization: 'token unused' }),
    hasBusyKernel: async (route) => {
      if (failing.has(route.escapedName)) throw new Error('no answer');
      return busy.has(route.escapedName);
    },
    touch: () => undefined,
    stop: async (s, reason) => {
      stopped.push({ name: s.user, reason });
    },
    now: () => clock.now,
  });
  return { culler, clock, busy, failing, stopped, setStoreDown: (v: boolean) => (storeDown = v) };
}

function server(user: string, extra: Partial<ServerSummary> = {}): ServerSummary {
  return { user, escapedName: user, phase: 'running', ephemeral: false, startedAt: 0, ...extra };
}

describe('the culler of students\' servers (its rules)', () => {
  it('gives a profile its own idle timeout and maximum age, and the rest the hub-wide ones', () => {
    const { culler } = cullerOver([], { cullerProfileLimits: { r: { idleTimeoutS: 7200 }, python: { maxAgeS: 60 } } });
    assert.deepEqual(culler.limitsOf('r'), { idleTimeoutS: 7200, maxAgeS: 0 });
    assert.deepEqual(culler.limitsOf('python'), { idleTimeoutS: 3600, maxAgeS: 60 });
    // No recorded profile: the default (first) profile's limits.
    assert.deepEqual(culler.limitsOf(undefined), { idleTimeoutS: 3600, maxAgeS: 60 });
    assert.deepEqual(culler.limitsOf('constructor'), { idleTimeoutS: 3600, maxAgeS: 0 });
  });

  it('stops a server at its maximum age even while its kernel computes', async () => {
    const { culler, clock, busy, stopped } = cullerOver([server('ann')], { cullerMaxAgeS: 4 * 3600 });
    busy.add('ann');
    clock.now = 2 * HOUR;
    assert.deepEqual(await culler.cullOnce(), []);
    clock.now = 4 * HOUR;
    assert.deepEqual(await culler.cullOnce(), [{ name: 'ann', reason: 'max-age' }]);
    assert.deepEqual(stopped, [{ name: 'ann', reason: 'max-age' }]);
  });

  it('counts only failed checks in a row: one that answers starts the count again', async () => {
    const { culler, clock, failing, busy } = cullerOver([server('bo')], { cullerMaxFailedChecks: 3 });
    clock.now = 2 * HOUR;
    failing.add('bo');
    assert.deepEqual(await culler.cullOnce(), []);
    assert.deepEqual(await culler.cullOnce(), []);
    // It answers "busy" once: activity, and the count of failures is gone.
    failing.delete('bo');
    busy.add('bo');
    assert.deepEqual(await culler.cullOnce(), []);
    busy.delete('bo');
    failing.add('bo');
    clock.now += 2 * HOUR;
    assert.deepEqual(await culler.cullOnce(), []);
    assert.deepEqual(await culler.cullOnce(), []);
    assert.deepEqual(await culler.cullOnce(), [{ name: 'bo', reason: 'unreachable' }]);
  });

  it('culls nothing in a pass that cannot read the servers, and leaves ephemeral and starting ones alone', async () => {
    const { culler, clock, stopped, setStoreDown } = cullerOver([server('cy'), server('try-1', { ephemeral: true }), server('dee', { phase: 'starting' })], { cullerMaxAgeS: 60 });
    clock.now = 2 * HOUR;
    setStoreDown(true);
    await assert.rejects(culler.cullOnce(), /store unreachable/);
    assert.deepEqual(stopped, []);
    setStoreDown(false);
    assert.deepEqual(await culler.cullOnce(), [{ name: 'cy', reason: 'max-age' }]);
  });

  it('never culls for idling when the idle timeout is 0', async () => {
    const { culler, clock } = cullerOver([server('eve')], { cullerIdleTimeoutS: 0 });
    clock.now = 100 * HOUR;
    assert.deepEqual(await culler.cullOnce(), []);
  });
});
