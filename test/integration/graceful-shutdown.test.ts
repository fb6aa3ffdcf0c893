import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Hub } from '../../server/index.js';
import { HubClient } from '../helpers/client.js';
import { createUsers, removeServerAccounts, tempDataDir, waitForReady } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { eventually, hubEnv, isAlive, jupyterPids, reapDataDir, serverPid, startHubProcess, stopHubProcess, untilRunning, type HubProcess } from '../helpers/hub-process.js';

/*
 * The hub program (`node dist/server/main.js`) stopped with SIGTERM while it works, as systemd
 * or a rolling restart does: a student's server starting, another student's notebook traffic
 * flowing, a download half done. Store: SQLite (the default). Server processes are checked by
 * pid in /proc, never by asking the hub.
 */

/** One request's outcome, as a client saw it. */
interface Outcome {
  status?: number;
  connection?: string | null;
  retryAfter?: string | null;
  error?: string;
}

describe('SIGTERM while the hub works: requests in flight and starts finish, then servers are adopted by the next start', function () {
  this.timeout(600_000);
  const running: HubProcess[] = [];
  const dataDirs: string[] = [];

  after(async () => {
    for (const h of [...running]) await stopHub(h, 'SIGKILL');
    for (const dir of dataDirs) {
      for (const pid of jupyterPids(dir)) process.kill(pid, 'SIGKILL');
      await eventually('our Jupyter processes are gone', () => jupyterPids(dir).length === 0, 20_000);
      removeServerAccounts(dir);
      reapDataDir(dir);
    }
  });

  async function startHub(label: string, env: Record<string, string>): Promise<HubProcess> {
    const hub = await startHubProcess(label, env, { waitForRunning: false });
    running.push(hub);
    await untilRunning(hub, label);
    return hub;
  }

  async function stopHub(hub: HubProcess, signal: NodeJS.Signals): Promise<number | null> {
    running.splice(running.indexOf(hub), 1);
    return stopHubProcess(hub, signal);
  }

  it('SIGTERM during a start and during proxied traffic: the start and a half-read download finish, the only 5xx are 503 refusals with Connection: close, exit 0; after a restart both servers are adopted and the sessions work', async () => {
    const port = await freePort();
    const dataDir = tempDataDir('ops-shutdown');
    dataDirs.push(dataDir);
    const url = `http://127.0.0.1:${port}`;
    // Readable lines, as on a terminal (logFormat=pretty), for this first start.
    const first = await startHub('ops-shutdown-1', hubEnv(port, dataDir, { OERHUB_LOG_FORMAT: 'pretty' }));
    assert.match(first.output(), /\] INFO.*hub started/);
    assert.doesNotMatch(first.output(), /^\{"level"/m);

    await createUsers({ url } as Hub, { opsgus: 'opsgus-password', opshal: 'opshal-password' });
    const gus = new HubClient(url);
    assert.equal((await gus.login('opsgus', 'opsgus-password')).status, 303);
    await gus.get('/hub/spawn');
    await waitForReady(gus, 'opsgus');
    assert.equal((await gus.openServer('/lab')).handoff?.status, 302);
    const gusState = fs.readFileSync(path.join(dataDir, 'servers', 'opsgus.json'), 'utf8');

    // A file big enough that its download can't sit in socket buffers: it is in flight while we read slowly.
    const bigSize = 48 * 1024 * 1024;
    const big = path.join(dataDir, 'homes', 'opsgus', 'big.bin');
    fs.writeFileSync(big, Buffer.alloc(bigSize, 7), { mode: 0o644 });
    const download = await openDownload(gus, port, '/user/opsgus/files/big.bin');
    assert.equal(download.res.statusCode, 200);

    // Notebook traffic on kept-alive connections, as a browser's JupyterLab makes it.
    const traffic = startTraffic(gus, port, '/user/opsgus/api/status', 4);
    await eventually('traffic flows', () => traffic.outcomes.filter((o) => o.status === 200).length >= 20, 30_000, 20);

    // The other student asks for their server; their progress page listens; then SIGTERM.
    const hal = new HubClient(url);
    assert.equal((await hal.login('opshal', 'opshal-password')).status, 303);
    await hal.get('/hub/spawn');
    const halReady = waitForReady(hal, 'opshal');
    // Let the progress stream be in flight before the signal.
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A load balancer's and a watchdog's kept-alive connections, opened before the signal.
    const probes = { live: new http.Agent({ keepAlive: true, maxSockets: 1 }), ready: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
    for (const [name, agent] of Object.entries(probes)) assert.equal((await probe(port, `/hub/health/${name}`, agent)).status, 200);
    const exited = new Promise<number | null>((resolve) => first.child.once('exit', (code) => resolve(code)));
    first.child.kill('SIGTERM');
    running.splice(running.indexOf(first), 1);
    await eventually('the hub says it stops', () => /stopping: no new requests/.test(first.output()), 10_000, 20);

    // New connections are refused once it stops listening.
    await eventually('the listener is closed', async () => (await connects(port)) === false, 10_000, 50);
    // While it drains: still alive (nothing should kill it), not ready, and the connection is let go.
    const live = await probe(port, '/hub/health/live', probes.live);
    assert.deepEqual({ status: live.status, connection: live.connection }, { status: 200, connection: 'close' });
    const notReady = await probe(port, '/hub/health/ready', probes.ready);
    assert.equal(notReady.status, 503);
    assert.equal((JSON.parse(notReady.body) as { shutdown: string }).shutdown, 'draining');
    for (const agent of Object.values(probes)) agent.destroy();
    // The download started before the signal runs to its end.
    const received = await download.finish();
    assert.equal(received, bigSize, 'the download in flight at SIGTERM finished whole');
    // The start in flight at SIGTERM finished: its progress stream says ready.
    await halReady;
    assert.equal(await exited, 0, 'a graceful stop exits 0');
    const outcomes = await traffic.stop();

    const out = first.output();
    assert.ok(out.indexOf('stopping: no new requests') < out.lastIndexOf('server ready'), 'the start finished after the signal, not before');
    assert.ok(outcomes.filter((o) => o.status === 200).length >= 20);
    for (const o of outcomes) {
      if (o.status === undefined) {
        // A connection the stopped listener refused, or a kept-alive one closed as it went idle: no answer, so a client retries.
        assert.match(o.error ?? '', /ECONNREFUSED|ECONNRESET|socket hang up/, JSON.stringify(o));
      } else if (o.status >= 500) {
        assert.deepEqual({ status: o.status, connection: o.connection, retryAfter: o.retryAfter }, { status: 503, connection: 'close', retryAfter: '5' }, 'the only 5xx is the refusal while draining');
      } else {
        assert.equal(o.status, 200);
      }
    }

    // Both servers kept running through the stop.
    const pids = { gus: serverPid(dataDir, 'opsgus'), hal: serverPid(dataDir, 'opshal') };
    assert.ok(isAlive(pids.gus) && isAlive(pids.hal));
    const halState = fs.readFileSync(path.join(dataDir, 'servers', 'opshal.json'), 'utf8');

    // The next start adopts them: same processes, same endpoints, the same browsers still signed in.
    const second = await startHub('ops-shutdown-2', hubEnv(port, dataDir));
    assert.equal(fs.readFileSync(path.join(dataDir, 'servers', 'opsgus.json'), 'utf8'), gusState);
    assert.equal(fs.readFileSync(path.join(dataDir, 'servers', 'opshal.json'), 'utf8'), halState);
    assert.equal((await gus.get('/user/opsgus/api/status', { accept: 'application/json' })).status, 200, "gus's session and server cookie still work");
    const halHome = await hal.get('/hub/home');
    assert.equal(halHome.status, 200, 'hal is still signed in');
    assert.match(halHome.body, /Running/);
    assert.equal((await hal.openServer('/lab')).handoff?.status, 302);
    assert.equal((await hal.get('/user/opshal/api/status', { accept: 'application/json' })).status, 200);
    assert.deepEqual(jupyterPids(dataDir).sort(), [pids.gus, pids.hal].sort(), 'no server was started again');

    // A second signal does not wait: with a request held open, SIGTERM twice exits at once (code 1).
    const held = await holdRequest(port);
    const exitedAgain = new Promise<number | null>((resolve) => second.child.once('exit', (code) => resolve(code)));
    second.child.kill('SIGTERM');
    await eventually('the hub says it stops', () => /stopping: no new requests/.test(second.output()), 10_000, 20);
    second.child.kill('SIGTERM');
    running.splice(running.indexOf(second), 1);
    assert.equal(await exitedAgain, 1);
    assert.ok(!held.answered(), 'it did not wait for the request in flight');
    held.destroy();
    assert.match(second.output(), /second signal: exiting at once/);
    assert.ok(isAlive(pids.gus) && isAlive(pids.hal), 'even an impatient stop leaves the servers running');

    // Clean up through the hub itself: the third start stops them on exit.
    const third = await startHub('ops-shutdown-3', hubEnv(port, dataDir, { OERHUB_STOP_SERVERS_ON_EXIT: 'true' }));
    assert.equal(await stopHub(third, 'SIGTERM'), 0);
    assert.deepEqual(jupyterPids(dataDir), []);
  });
});

/** A GET on the given (kept-alive) agent. */
function probe(port: number, p: string, agent: http.Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
  });
}

/** Whether a new TCP connection to the port is accepted. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The request headers a browser would send to this path of the hub on this port (Host and cookies). */
function browserHeaders(client: HubClient, port: number, p: string): Record<string, string> {
  const target = client.urlFor(p);
  return { host: `${target.hostname}:${port}`, cookie: client.cookieHeader(p), accept: 'application/json' };
}

/** A GET whose body is read only after `finish()`; returns the bytes received. */
async function openDownload(client: HubClient, port: number, p: string): Promise<{ res: http.IncomingMessage; finish(): Promise<number> }> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: browserHeaders(client, port, p), agent: false }, resolve);
    req.on('error', reject);
  });
  res.pause();
  return {
    res,
    finish: async () => {
      let n = 0;
      for await (const chunk of res) n += (chunk as Buffer).length;
      return n;
    },
  };
}

/** `workers` loops of GETs, each on its own kept-alive connection, until stop(). */
function startTraffic(client: HubClient, port: number, p: string, workers: number): { outcomes: Outcome[]; stop(): Promise<Outcome[]> } {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const loops = Array.from({ length: workers }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!stopped) {
        const outcome = await new Promise<Outcome>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: p, headers: browserHeaders(client, port, p), agent }, (res) => {
            res.resume();
            res.once('end', () => resolve({ status: res.statusCode, connection: res.headers.connection ?? null, retryAfter: res.headers['retry-after'] ?? null }));
          });
          req.once('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
        });
        outcomes.push(outcome);
        // Refused: the hub is gone; a browser would wait before retrying.
        if (outcome.error === 'ECONNREFUSED') await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      agent.destroy();
    }
  });
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** A hub request held in flight: headers sent, body never finished. */
async function holdRequest(port: number): Promise<{ answered(): boolean; destroy(): void }> {
  let answered = false;
  const req = http.request({ host: '127.0.0.1', port, path: '/hub/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '100' }, agent: false }, (res) => {
    answered = true;
    res.resume();
  });
  req.on('error', () => undefined);
  req.write('username=');
  req.flushHeaders();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { answered: () => answered, destroy: () => req.destroy() };
}
