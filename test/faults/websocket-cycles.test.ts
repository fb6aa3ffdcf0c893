import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Hub } from '../../server/index.js';
import { createUsers, signInAndStart, startTestHub } from '../helpers/hub.js';
import { KernelSocket, startKernel } from '../helpers/kernel.js';
import { eventually, reportFault, secondsSince } from './support.js';

const CYCLES = 1000;

/** Open file descriptors of this process, which is also the hub's (it runs in the test process). */
function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('fault: 1,000 WebSocket open/close cycles through the proxy', function () {
  this.timeout(900_000);
  let hub: Hub | undefined;

  after(async () => {
    await hub?.close();
  });

  it('a student whose notebook tab reconnects 1,000 times keeps the kernel and its variables, and the hub holds no more open files than before', async () => {
    hub = await startTestHub('fault-ws-cycles');
    await createUsers(hub, { wes: 'wes-password' });
    const wes = await signInAndStart(hub, 'wes', 'wes-password');
    const kernelId = await startKernel(wes, 'wes');
    const first = await KernelSocket.open(wes, 'wes', kernelId);
    assert.equal(await first.execute('x = 1\nprint("ready")'), 'ready\n');
    first.close();
    await first.closed;
    // Warm up (keep-alive agents, lazily opened files) before taking the baseline.
    for (let i = 0; i < 20; i++) {
      const s = await KernelSocket.open(wes, 'wes', kernelId);
      s.close();
      await s.closed;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const baseline = openFds();

    let peak = baseline;
    for (let i = 0; i < CYCLES; i++) {
      const s = await KernelSocket.open(wes, 'wes', kernelId);
      peak = Math.max(peak, openFds());
      s.close();
      await s.closed;
    }
    const closedAt = Date.now();
    let after = openFds();
    await eventually(`open fds back to the baseline of ${baseline} (now ${after})`, () => (after = openFds()) <= baseline, 60_000, 200);

    // The notebook still works, with its state, through a new socket.
    const last = await KernelSocket.open(wes, 'wes', kernelId);
    try {
      assert.equal(await last.execute('x += 1\nprint(x)'), '2\n');
    } finally {
      last.close();
      await last.closed;
    }
    reportFault(`${CYCLES.toLocaleString('en')} WebSocket open/close cycles (open fds ${baseline} before, peak ${peak}, ${after} after)`, 'nothing, every socket opened', 'none (kernel variable kept)', `${secondsSince(closedAt)} to fds back at baseline`);
  });
});
