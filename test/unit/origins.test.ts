import assert from 'node:assert/strict';
import type http from 'node:http';
import { UserOrigins } from '../../server/proxy/index.js';
import { loadConfig } from '../../server/config/index.js';

const req = (host: string | undefined): http.IncomingMessage => ({ headers: host === undefined ? {} : { host } }) as http.IncomingMessage;

describe('which origin serves what', () => {
  it('on the trial defaults: the hub on 127.0.0.1:PORT, each user on NAME.localhost:PORT', () => {
    const o = new UserOrigins(loadConfig({ overrides: {} }), () => 8000);
    assert.equal(o.hubOrigin(), 'http://127.0.0.1:8000');
    assert.equal(o.contentOrigin('alice'), 'http://alice.localhost:8000');
    assert.deepEqual(o.classify(req('127.0.0.1:8000')), { kind: 'hub' });
    assert.deepEqual(o.classify(req('localhost:8000')), { kind: 'hub' });
    assert.deepEqual(o.classify(req(undefined)), { kind: 'hub' });
    assert.deepEqual(o.classify(req('alice.localhost:8000')), { kind: 'content', owner: 'alice' });
    // Browsers lower-case host names; a trailing dot is the same host.
    assert.deepEqual(o.classify(req('ALICE.localhost.:8000')), { kind: 'content', owner: 'alice' });
    // Under the user domain but no user's host: never the hub.
    for (const h of ['a.b.localhost', 'bad_name.localhost:8000', '.localhost']) assert.deepEqual(o.classify(req(h)), { kind: 'unknown-content' }, h);
  });

  it('with publicUrl: scheme and port are its, the hub is exactly its host', () => {
    const o = new UserOrigins(loadConfig({ overrides: { publicUrl: 'https://hub.example.edu', userContentDomain: 'users.example.edu' } }), () => 8000);
    assert.equal(o.hubOrigin(), 'https://hub.example.edu');
    assert.equal(o.contentOrigin('alice'), 'https://alice.users.example.edu');
    assert.deepEqual(o.classify(req('hub.example.edu')), { kind: 'hub' });
    assert.deepEqual(o.classify(req('alice.users.example.edu')), { kind: 'content', owner: 'alice' });
  });

  it('shared-host and single-origin modes', () => {
    const shared = new UserOrigins(loadConfig({ overrides: { publicUrl: 'https://hub.example.edu', originMode: 'shared-host', userContentHost: 'content.example.edu' } }), () => 8000);
    assert.equal(shared.contentOrigin('alice'), 'https://content.example.edu');
    assert.deepEqual(shared.classify(req('content.example.edu')), { kind: 'content', owner: null });
    assert.deepEqual(shared.classify(req('hub.example.edu')), { kind: 'hub' });
    const single = new UserOrigins(loadConfig({ overrides: { originMode: 'single' } }), () => 8000);
    assert.equal(single.isolated, false);
    assert.equal(single.contentOrigin('alice'), 'http://127.0.0.1:8000');
    assert.deepEqual(single.classify(req('alice.localhost:8000')), { kind: 'hub' });
  });

  it('refuses origin settings that would put user servers on the hub\'s origin, naming the key', () => {
    assert.throws(() => loadConfig({ overrides: { originMode: 'shared-host' } }), /userContentHost/);
    assert.throws(() => loadConfig({ overrides: { originMode: 'shared-host', userContentHost: 'hub.example.edu', publicUrl: 'https://hub.example.edu' } }), /userContentHost.*must differ/);
    assert.throws(() => loadConfig({ overrides: { publicUrl: 'https://hub.example.edu', userContentDomain: 'example.edu' } }), /userContentDomain/);
    assert.throws(() => loadConfig({ overrides: { userContentDomain: 'https://users.example.edu' } }), /userContentDomain/);
  });
});
