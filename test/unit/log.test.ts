import assert from 'node:assert/strict';
import type http from 'node:http';
import { Writable } from 'node:stream';
import { createLogger, logUrl, requestIdOf } from '../../server/log.js';

/** A logger writing into a string, with the hub's own settings (its redaction). */
function capture(): { log: ReturnType<typeof createLogger>; text(): string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { log: createLogger('trace', sink), text: () => text };
}

describe('log lines an operator reads keep no secret', () => {
  it('blanks Authorization and Cookie headers, tokens, passwords and SAML messages wherever a part logs them', () => {
    const { log, text } = capture();
    const secrets = ['Bearer abc-secret-1', 'oerhub-session=s%3Asecret-2', 'secret-3', 'secret-4', 'PHNhbWxwOlJlc3BvbnNl-secret-5', 'secret-6', 'secret-7'];
    log.child({ part: 'web' }).info({ req: { headers: { authorization: secrets[0], cookie: secrets[1] } } }, 'a request');
    log.warn({ password: secrets[2], user: { token: secrets[3] } }, 'a sign-in');
    log.error({ form: { SAMLResponse: secrets[4] }, headers: { authorization: secrets[5] }, saml: { assertion: secrets[6] } }, 'a SAML answer');
    const out = text();
    for (const s of secrets) assert.ok(!out.includes(s), `logged: ${s}`);
    // What is safe to log stays.
    assert.match(out, /"part":"web"/);
    assert.equal(out.split('\n').filter(Boolean).length, 3);
    assert.equal((out.match(/\[redacted\]/g) ?? []).length, 7);
  });

  it('logs a URL with its query parameters named, never their values', () => {
    assert.equal(logUrl('/hub/saml/acs?SAMLResponse=PHNhbWw&RelayState=%2Fhub'), '/hub/saml/acs?SAMLResponse=[redacted]&RelayState=[redacted]');
  });

  it('keeps a well-formed X-Request-Id from the front door only; anything else gets a fresh id', () => {
    const req = (id?: string) => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as http.IncomingMessage;
    assert.equal(requestIdOf(req('nginx-0123456789abcdef'), true), 'nginx-0123456789abcdef');
    assert.notEqual(requestIdOf(req('nginx-0123456789abcdef'), false), 'nginx-0123456789abcdef');
    for (const bad of ['short', 'has space in it', 'x'.repeat(200), 'line\nbreak-0123456789']) assert.match(requestIdOf(req(bad), true), /^[0-9a-f-]{36}$/);
    assert.notEqual(requestIdOf(req(), true), requestIdOf(req(), true));
  });
});
