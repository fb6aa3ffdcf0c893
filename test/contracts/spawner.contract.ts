import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { createLogger } from '../../server/log.js';
import { escapeName, normalizeUsername } from '../../server/names.js';
import type { Endpoint, ProgressEvent, SpawnSpec, Spawner, SpawnerState, StartOptions } from '../../server/spawner/index.js';

export interface SpawnerFixture {
  spawner: Spawner;
  /** Stops whatever the fixture made (folders, containers); runs after every test of the suite. */
  cleanup(): Promise<void>;
}

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to a notebook server, on its own socket so nothing stays open after a test. */
export function request(endpoint: Endpoint, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: endpoint.host, port: endpoint.port, method, path: urlPath, headers, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.once('error', reject);
    req.end(body);
  });
}

/** A spec as the hub builds it, for a fresh user (hyphen and capital included, so escaping is exercised). */
export function makeSpec(overrides: Partial<SpawnSpec> = {}): SpawnSpec {
  const user = normalizeUsername(`Contract-${randomBytes(4).toString('hex')}`);
  const escapedName = escapeName(user);
  return {
    user,
    escapedName,
    baseUrl: `/user/${escapedName}/`,
    secret: randomBytes(32).toString('hex'),
    defaultUrl: '/lab',
    ephemeral: false,
    env: {},
    ...overrides,
  };
}

export function startOptions(signal: AbortSignal = new AbortController().signal, events: ProgressEvent[] = []): StartOptions {
  return { signal, onProgress: (event) => events.push(event), log: createLogger('silent') };
}

export function auth(spec: SpawnSpec): Record<string, string> {
  return { authorization: `token ${spec.secret}` };
}

/**
 * The behaviour every Spawner must show. `make` builds a fresh spawner (and whatever it needs)
 * per suite; every server a test starts is stopped after it.
 */
export function spawnerContract(name: string, make: () => Promise<SpawnerFixture>): void {
  describe(`Spawner contract: ${name}`, function () {
    // Real Jupyter servers: a start takes a few seconds on a small machine.
    this.timeout(120_000);

    let fixture: SpawnerFixture;
    const started: { spec: SpawnSpec; state: SpawnerState }[] = [];

    /** Starts and remembers the server so afterEach stops it even when an assertion fails. */
    async function startServer(spec: SpawnSpec, options: StartOptions = startOptions()) {
      const server = await fixture.spawner.start(spec, options);
      started.push({ spec, state: server.state });
      return server;
    }

    before(async () => {
      fixture = await make();
    });

    afterEach(async () => {
      for (const { spec, state } of started.splice(0)) await fixture.spawner.stop(spec, state);
    });

    after(async () => {
      await fixture.spawner.close();
      await fixture.cleanup();
    });

    it('a started server answers its base URL for the hub and refuses everyone else', async () => {
      const spec = makeSpec();
      const { endpoint } = await startServer(spec);
      assert.equal(endpoint.host, '127.0.0.1');

      const withSecret = await request(endpoint, 'GET', `${spec.baseUrl}api/status`, auth(spec));
      assert.equal(withSecret.status, 200, withSecret.body);

      const anonymous = await request(endpoint, 'GET', `${spec.baseUrl}api/status`);
      assert.equal(anonymous.status, 403);

      const wrongSecret = await request(endpoint, 'GET', `${spec.baseUrl}api/status`, { authorization: 'token not-the-secret' });
      assert.equal(wrongSecret.status, 403);

      const secretInUrl = await request(endpoint, 'GET', `${spec.baseUrl}api/status?token=${spec.secret}`);
      assert.equal(secretInUrl.status, 403, 'the secret is only accepted in the Authorization header');
    });

    it('a student watching the start sees progress climb to 100', async () => {
      const events: ProgressEvent[] = [];
      await startServer(makeSpec(), startOptions(undefined, events));
      assert.ok(events.length >= 2, `only ${events.length} progress events`);
      for (let i = 1; i < events.length; i++) {
        assert.ok(events[i]!.progress > events[i - 1]!.progress, `progress went from ${events[i - 1]!.progress} to ${events[i]!.progress}`);
      }
      assert.equal(events.at(-1)!.progress, 100);
      for (const event of events) assert.ok(event.message.length > 0);
    });

    it('poll follows the server from running to stopped, and stopping twice is fine', async () => {
      const spec = makeSpec();
      const { state, endpoint } = await startServer(spec);
      assert.equal(await fixture.spawner.poll(state), 'running');

      await fixture.spawner.stop(spec, state);
      assert.equal(await fixture.spawner.poll(state), 'stopped');
      await assert.rejects(request(endpoint, 'GET', `${spec.baseUrl}api/status`, auth(spec)), 'the port no longer answers');
      await fixture.spawner.stop(spec, state);
    });

    it("a student's file survives a stop and a new start of their server", async () => {
      const spec = makeSpec();
      const first = await startServer(spec);
      const put = await request(
        first.endpoint,
        'PUT',
        `${spec.baseUrl}api/contents/hello.txt`,
        { ...auth(spec), 'content-type': 'application/json' },
        JSON.stringify({ type: 'file', format: 'text', content: 'hello from before the restart' }),
      );
      assert.equal(put.status, 201, put.body);
      await fixture.spawner.stop(spec, first.state);

      // A new start gets a new secret, as it does from the hub.
      const secondSpec = { ...spec, secret: randomBytes(32).toString('hex') };
      const second = await startServer(secondSpec);
      const got = await request(second.endpoint, 'GET', `${spec.baseUrl}api/contents/hello.txt?content=1`, auth(secondSpec));
      assert.equal(got.status, 200, got.body);
      assert.equal((JSON.parse(got.body) as { content: string }).content, 'hello from before the restart');
    });

    // Optional abilities of the seam; both spawners shipped with the hub have them (admin pages).
    it('an admin reads the last lines of a running server\'s output, tail-limited and without its secret', async () => {
      const logs = fixture.spawner.logs?.bind(fixture.spawner);
      assert.ok(logs, 'this spawner shows no logs');
      const spec = makeSpec();
      const { endpoint } = await startServer(spec);
      // Jupyter logs a 404 with the path asked for.
      await request(endpoint, 'GET', `${spec.baseUrl}api/contents/adm-no-such-file?token=${spec.secret}`, auth(spec));
      let lines: string[] = [];
      for (let i = 0; i < 50 && !lines.some((l) => l.includes('adm-no-such-file')); i++) {
        lines = await logs(spec.escapedName, { lines: 500 });
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(lines.some((l) => l.includes('adm-no-such-file')), lines.join('\n'));
      assert.ok(lines.every((l) => !l.includes(spec.secret)), 'the secret is blanked');
      const two = await logs(spec.escapedName, { lines: 2 });
      assert.equal(two.length, 2);
      // Jupyter may write more meanwhile: the two are among the latest lines, in order.
      const after = await logs(spec.escapedName, { lines: 500 });
      const at = after.indexOf(two[0]!);
      assert.ok(at !== -1 && after[at + 1] === two[1], `${two.join('\n')} is not a tail of\n${after.join('\n')}`);
      assert.deepEqual(await logs(makeSpec().escapedName, { lines: 10 }), [], 'a server that never ran has no lines');
    });

    it('an admin deleting a user with their data removes the home; a new start begins empty', async () => {
      const removeHome = fixture.spawner.removeHome?.bind(fixture.spawner);
      assert.ok(removeHome, 'this spawner can\'t remove homes');
      const spec = makeSpec();
      const first = await startServer(spec);
      const put = await request(first.endpoint, 'PUT', `${spec.baseUrl}api/contents/mine.txt`, { ...auth(spec), 'content-type': 'application/json' }, JSON.stringify({ type: 'file', format: 'text', content: 'mine' }));
      assert.equal(put.status, 201, put.body);
      await fixture.spawner.stop(spec, first.state);
      assert.equal(await removeHome(spec.escapedName), true);
      assert.equal(await removeHome(spec.escapedName), false, 'nothing left the second time');
      const secondSpec = { ...spec, secret: randomBytes(32).toString('hex') };
      const second = await startServer(secondSpec);
      const got = await request(second.endpoint, 'GET', `${spec.baseUrl}api/contents/mine.txt`, auth(secondSpec));
      assert.equal(got.status, 404, 'the file went with the home');
      await fixture.spawner.stop(secondSpec, second.state);
      await removeHome(spec.escapedName);
    });

    it('listRunning finds a running server, and forgets it once stopped', async () => {
      const spec = makeSpec();
      const { state, endpoint } = await startServer(spec);
      const found = (await fixture.spawner.listRunning()).find((s) => s.escapedName === spec.escapedName);
      assert.ok(found, 'running server not listed');
      assert.deepEqual(found.endpoint, endpoint);
      assert.equal(await fixture.spawner.poll(found.state), 'running');

      await fixture.spawner.stop(spec, state);
      const after = await fixture.spawner.listRunning();
      assert.equal(after.find((s) => s.escapedName === spec.escapedName), undefined);
    });

    it('a start the student cancels leaves nothing running', async () => {
      const spec = makeSpec();
      const controller = new AbortController();
      const reason = new Error('cancelled by the student');
      const options: StartOptions = {
        signal: controller.signal,
        // Cancel while the spawner waits for the server (progress between 30 and 100): the
        // process exists by then, the hardest moment to clean up. Every spawner reports it.
        onProgress: (event) => {
          if (event.progress > 30 && event.progress < 100) controller.abort(reason);
        },
        log: createLogger('silent'),
      };
      await assert.rejects(fixture.spawner.start(spec, options), (err) => err === reason);
      const running = await fixture.spawner.listRunning();
      assert.equal(running.find((s) => s.escapedName === spec.escapedName), undefined);

      const alreadyAborted = AbortSignal.abort(reason);
      await assert.rejects(fixture.spawner.start(makeSpec(), startOptions(alreadyAborted)), (err) => err === reason);
    });
  });
}
