import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Hub } from '../../server/index.js';
import { HubClient, type Reply } from '../helpers/client.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { SHA1_SIGNATURE, startSamlHub, TestIdp, type LoginResponse } from '../helpers/saml-idp.js';
import { freePort } from '../helpers/ports.js';
import { launchBrowser } from '../helpers/browser.js';
import type { Browser } from 'playwright-core';

const ACS = '/hub/saml/acs';
const LOG_DIR = path.resolve(__dirname, '../../test-output');

/** Start a SAML sign-in from a browser without any hub cookie; returns the IdP redirect. */
async function startLogin(hub: Hub, next?: string): Promise<{ client: HubClient; authUrl: string }> {
  const client = new HubClient(hub.url);
  const r = await client.get(`/hub/saml/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  assert.equal(r.status, 302, r.body);
  assert.ok(r.location?.includes('SAMLRequest='), r.location ?? '');
  return { client, authUrl: r.location! };
}

/** The browser that started each sign-in, by the response the IdP gave it (see signed()). */
const startedIn = new Map<string, HubClient>();

/**
 * POST a response to the ACS as the IdP's auto-posting form does: from the browser that started
 * that sign-in (it carries the sign-in cookie, not the session: SameSite=Lax), or from a fresh
 * browser for a response no browser asked for. `from` overrides the choice.
 */
function post(hub: Hub, form: Record<string, string>, from?: HubClient): Promise<Reply> {
  const client = new HubClient(hub.url);
  const browser = from ?? startedIn.get(form.SAMLResponse ?? '');
  if (browser) for (const [k, c] of browser.cookies) client.cookies.set(k, c);
  return client.request('POST', ACS, { form });
}

function b64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}

function refusalsLogged(label: string): number {
  const file = path.join(LOG_DIR, `${label}.log`);
  if (!fs.existsSync(file)) return 0;
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"msg":"SAML sign-in refused"')).length;
}

describe('SAML sign-in with an institutional identity provider', function () {
  this.timeout(120_000);
  const label = 'saml-sso';
  let idp: TestIdp;
  let other: TestIdp;
  let hub: Hub;

  before(async () => {
    idp = await TestIdp.start();
    idp.addUser('stu', { password: 'stu-pw', attributes: { uid: 'Stu', displayName: 'Stu Dent', mail: 'stu@uni.example', eduPersonAffiliation: ['student', 'member'] } });
    idp.addUser('prof', { password: 'prof-pw', attributes: { uid: 'prof', displayName: 'Pro Fessor', mail: 'prof@uni.example', eduPersonAffiliation: ['faculty@uni.example', 'member'] } });
    idp.addUser('dean', { password: 'dean-pw', attributes: { uid: 'dean', eduPersonAffiliation: 'staff' } });
    idp.addUser('evil', { password: 'x', attributes: { uid: 'admin', eduPersonAffiliation: 'faculty' } });
    idp.addUser('dotted', { password: 'x', attributes: { uid: 'stu.evil', eduPersonAffiliation: 'student' } });
    idp.addUser('nouid', { password: 'x', attributes: { mail: 'x@uni.example' } });
    hub = await startSamlHub(label, idp);
    // The same entity ID with another key pair: what an attacker with their own certificate sends.
    other = await TestIdp.start({ entityId: idp.entityId });
    for (const [name, u] of idp.users) other.addUser(name, u);
    other.registerSp(await (await fetch(`${hub.url}/hub/saml/metadata`)).text());
  });

  after(async () => {
    await hub?.close();
    await idp?.close();
    await other?.close();
  });

  /** A fresh, legitimate AuthnRequest of the hub, answered by `by` (default: the real IdP). */
  async function signed(user = 'stu', options: Parameters<TestIdp['answer']>[2] = {}, by?: TestIdp, next?: string): Promise<LoginResponse> {
    const { client, authUrl } = await startLogin(hub, next);
    const response = await (by ?? idp).answer(authUrl, user, options);
    startedIn.set(response.SAMLResponse, client);
    return response;
  }

  async function assertRefused(form: Record<string, string>, why: string, from?: HubClient): Promise<Reply> {
    const before = refusalsLogged(label);
    const r = await post(hub, form, from);
    assert.ok(r.status === 400 || r.status === 403, `${why}: answered ${r.status} ${r.location ?? ''}`);
    assert.match(r.body, /Sign-in with your institution failed/, why);
    assert.deepEqual(r.headers.getSetCookie(), [], `${why}: a cookie was set`);
    assert.equal(refusalsLogged(label), before + 1, `${why}: no log line`);
    return r;
  }

  it('offers "Sign in with your institution" on /hub/login and keeps the local form', async () => {
    const page = await new HubClient(hub.url).get('/hub/login?next=%2Fhub%2Fhome');
    assert.equal(page.status, 200);
    assert.match(page.body, /href="\/hub\/saml\/login\?next=%2Fhub%2Fhome"[^>]*>Sign in with your institution</);
    assert.match(page.body, /name="password"/);
  });

  it('publishes SP metadata with the ACS, single logout, our signing certificate and signed assertions wanted', async () => {
    const r = await fetch(`${hub.url}/hub/saml/metadata`);
    const xml = await r.text();
    assert.match(r.headers.get('content-type') ?? '', /samlmetadata\+xml/);
    assert.match(xml, new RegExp(`entityID="${hub.url}/hub/saml/metadata"`));
    assert.match(xml, new RegExp(`AssertionConsumerService[^>]*Location="${hub.url}/hub/saml/acs"`));
    assert.match(xml, new RegExp(`SingleLogoutService[^>]*Location="${hub.url}/hub/saml/slo"`));
    assert.match(xml, /WantAssertionsSigned="true"/);
    assert.match(xml, /X509Certificate/);
  });

  it('signs a student in: /hub/login → IdP redirect with a SAMLRequest → signed response POSTed to the ACS → mapped name and role', async () => {
    const { client, authUrl } = await startLogin(hub, '/hub/home');
    assert.ok(authUrl.startsWith(`${idp.url}/sso?`));
    const response = await idp.answer(authUrl, 'stu');
    assert.equal(response.RelayState, '/hub/home');
    assert.equal(response.acsUrl, `${hub.url}${ACS}`);
    const acs = await client.request('POST', ACS, { form: { SAMLResponse: response.SAMLResponse, RelayState: response.RelayState } });
    assert.equal(acs.status, 303, acs.body);
    assert.equal(acs.location, '/hub/home');
    assert.ok(client.cookie('oerhub-session'), 'session cookie');
    const me = JSON.parse((await client.get('/hub/api/user', { accept: 'application/json' })).body) as { name: string; roles: string[] };
    assert.equal(me.name, 'stu', 'normalised like every other username');
    assert.deepEqual(me.roles, ['student']);
    const user = await hub.users.get('stu');
    assert.equal(user?.source, 'saml');
    assert.equal(user?.displayName, 'Stu Dent');
    assert.equal(user?.email, 'stu@uni.example');
    const home = await client.get('/hub/home');
    assert.equal(home.status, 200);
    assert.match(home.body, /Stu Dent/);
  });

  it('maps eduPersonAffiliation faculty (scoped) to instructor, and the admin list to admin', async () => {
    const prof = await signed('prof');
    assert.equal((await post(hub, { SAMLResponse: prof.SAMLResponse, RelayState: '' })).status, 303);
    assert.deepEqual((await hub.users.get('prof'))?.roles, ['instructor']);
    const dean = await signed('dean');
    assert.equal((await post(hub, { SAMLResponse: dean.SAMLResponse })).status, 303);
    assert.deepEqual((await hub.users.get('dean'))?.roles.sort(), ['admin', 'student']);
  });

  it('validates RelayState like next=: foreign or odd targets land at home', async () => {
    for (const relay of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/hub/../etc']) {
      const r = await signed('stu');
      const acs = await post(hub, { SAMLResponse: r.SAMLResponse, RelayState: relay });
      assert.equal(acs.status, 303, relay);
      assert.equal(acs.location, '/hub/home', relay);
    }
    const ok = await signed('stu', {}, undefined, '/hub/spawn?x=1');
    assert.equal(ok.RelayState, '/hub/spawn?x=1');
    assert.equal((await post(hub, { SAMLResponse: ok.SAMLResponse, RelayState: ok.RelayState })).location, '/hub/spawn?x=1');
  });

  it('refuses an unsigned response', async () => {
    const { authUrl } = await startLogin(hub);
    const req = await idp.parseRequest(authUrl);
    await assertRefused({ SAMLResponse: b64(idp.responseXml(req.id, 'evil', req.acsUrl)) }, 'unsigned');
  });

  it('refuses an assertion altered after signing (NameID, username attribute)', async () => {
    const a = await signed('stu');
    assert.ok(a.xml.includes('>Stu</saml:NameID>'));
    await assertRefused({ SAMLResponse: b64(a.xml.replace('>Stu</saml:NameID>', '>admin</saml:NameID>')) }, 'NameID changed');
    const b = await signed('stu');
    await assertRefused({ SAMLResponse: b64(b.xml.replace('xsi:type="xs:string">Stu<', 'xsi:type="xs:string">admin<')) }, 'uid changed');
  });

  it('refuses a response signed by another key that carries its own certificate in KeyInfo', async () => {
    const forged = await signed('evil', {}, other);
    assert.match(forged.xml, /<ds:X509Certificate>/);
    await assertRefused({ SAMLResponse: forged.SAMLResponse }, 'other key');
  });

  it('refuses a second, unsigned assertion beside or inside (Advice) the signed one', async () => {
    const a = await signed('stu');
    const evil = idp.responseXml('x', 'evil', a.acsUrl).match(/<saml:Assertion[\s\S]*<\/saml:Assertion>/)![0].replace(/ID="_[^"]+"/, 'ID="_evil"');
    await assertRefused({ SAMLResponse: b64(a.xml.replace('</samlp:Response>', `${evil}</samlp:Response>`)) }, 'assertion beside');
    const b = await signed('stu');
    const inAdvice = b.xml.replace('</saml:Conditions>', `</saml:Conditions><saml:Advice>${evil}</saml:Advice>`);
    await assertRefused({ SAMLResponse: b64(inAdvice) }, 'assertion in Advice');
    const c = await signed('stu');
    const wrapped = c.xml.replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, (signedOne) => evil.replace('</saml:Conditions>', `</saml:Conditions><saml:Advice>${signedOne}</saml:Advice>`));
    await assertRefused({ SAMLResponse: b64(wrapped) }, 'signed assertion moved into the Advice of an unsigned one');
  });

  it('refuses two root elements, a second SignedInfo, a comment inside DigestValue and more than two transforms', async () => {
    const a = await signed('stu');
    await assertRefused({ SAMLResponse: b64(a.xml + idp.responseXml('x', 'evil', a.acsUrl)) }, 'two roots');
    const b = await signed('stu');
    const signedInfo = b.xml.match(/<ds:SignedInfo>[\s\S]*?<\/ds:SignedInfo>/)![0];
    await assertRefused({ SAMLResponse: b64(b.xml.replace(signedInfo, signedInfo + signedInfo)) }, 'second SignedInfo');
    const c = await signed('stu');
    await assertRefused({ SAMLResponse: b64(c.xml.replace('<ds:DigestValue>', '<ds:DigestValue><!--x-->')) }, 'comment in DigestValue');
    const d = await signed('stu');
    const moreTransforms = d.xml.replace('</ds:Transforms>', '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>');
    assert.notEqual(moreTransforms, d.xml);
    await assertRefused({ SAMLResponse: b64(moreTransforms) }, 'three transforms');
  });

  it('refuses a DOCTYPE or entity', async () => {
    const a = await signed('stu');
    await assertRefused({ SAMLResponse: b64(`<!DOCTYPE r [<!ENTITY who "admin">]>${a.xml}`) }, 'DOCTYPE');
    const b = await signed('stu');
    await assertRefused({ SAMLResponse: b64(`<?xml version="1.0"?><!DOCTYPE samlp:Response SYSTEM "http://127.0.0.1:9/x.dtd">${b.xml}`) }, 'external DTD');
  });

  it('refuses a wrong audience or recipient (or Destination)', async () => {
    await assertRefused({ SAMLResponse: (await signed('stu', { audience: 'https://other-sp.example/' })).SAMLResponse }, 'audience');
    await assertRefused({ SAMLResponse: (await signed('stu', { recipient: 'https://other-sp.example/acs' })).SAMLResponse }, 'recipient');
    await assertRefused({ SAMLResponse: (await signed('stu', { destination: 'https://other-sp.example/acs' })).SAMLResponse }, 'destination');
  });

  it('refuses an expired or not-yet-valid assertion beyond the allowed skew, and accepts one within it', async () => {
    const skewMs = hub.config.samlClockSkewS * 1000;
    await assertRefused({ SAMLResponse: (await signed('stu', { notBeforeMs: -10 * 60_000, notOnOrAfterMs: -skewMs - 30_000 })).SAMLResponse }, 'expired');
    await assertRefused({ SAMLResponse: (await signed('stu', { notBeforeMs: skewMs + 30_000, notOnOrAfterMs: skewMs + 10 * 60_000 })).SAMLResponse }, 'not yet valid');
    const within = await signed('stu', { notBeforeMs: skewMs / 2 });
    assert.equal((await post(hub, { SAMLResponse: within.SAMLResponse })).status, 303);
  });

  it('refuses a replayed response, also when two copies are POSTed at once', async () => {
    const once = await signed('stu');
    assert.equal((await post(hub, { SAMLResponse: once.SAMLResponse })).status, 303);
    await assertRefused({ SAMLResponse: once.SAMLResponse }, 'replay');
    const twice = await signed('stu');
    const before = refusalsLogged(label);
    const replies = await Promise.all([1, 2, 3].map(() => post(hub, { SAMLResponse: twice.SAMLResponse })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [303, 403, 403]);
    for (const r of replies.filter((x) => x.status === 403)) assert.deepEqual(r.headers.getSetCookie(), []);
    assert.equal(refusalsLogged(label), before + 2);
  });

  it('refuses a response to a request it never made (IdP-initiated or made up)', async () => {
    const made = await idp.respond({ id: '_never-asked-for', relayState: '' }, 'stu');
    await assertRefused({ SAMLResponse: made.SAMLResponse }, 'unknown request');
    const { authUrl } = await startLogin(hub);
    const real = await idp.parseRequest(authUrl);
    // A response that names a real request in the Response but another in the signed assertion.
    const mismatched = await idp.respond({ id: '_other', relayState: '' }, 'stu');
    await assertRefused({ SAMLResponse: b64(mismatched.xml.replace(/(<samlp:Response[^>]*InResponseTo=")_other"/, `$1${real.id}"`)) }, 'InResponseTo mismatch');
  });

  it('answers a 100,000-deep or huge SAMLResponse with a fast 400 and stays up', async () => {
    const deep = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</samlp:Response>`;
    const r1 = await post(hub, { SAMLResponse: b64(deep) });
    assert.equal(r1.status, 400);
    assert.deepEqual(r1.headers.getSetCookie(), []);
    const deepSmall = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${'<a>'.repeat(20_000)}${'</a>'.repeat(20_000)}</samlp:Response>`;
    assert.ok(b64(deepSmall).length < 256 * 1024);
    await assertRefused({ SAMLResponse: b64(deepSmall) }, 'deep but small');
    const huge = 'A'.repeat(3 * 1024 * 1024);
    const r2 = await post(hub, { SAMLResponse: huge }).catch((err: Error) => ({ status: -1, body: err.message }) as Reply);
    assert.equal(r2.status, 400, r2.body.slice(0, 200));
    const health = await fetch(`${hub.url}/hub/health`);
    assert.equal(health.status, 200);
    // And the next real sign-in still works.
    const ok = await signed('stu');
    assert.equal((await post(hub, { SAMLResponse: ok.SAMLResponse })).status, 303);
  });

  it('reads a username with a comment inside whole, never truncated', async () => {
    const a = await signed('dotted');
    const withComment = a.xml.replace('xsi:type="xs:string">stu.evil<', 'xsi:type="xs:string">stu<!---->.evil<');
    assert.notEqual(withComment, a.xml);
    const r = await post(hub, { SAMLResponse: b64(withComment) }, startedIn.get(a.SAMLResponse));
    if (r.status === 303) {
      const c = new HubClient(hub.url);
      for (const line of r.headers.getSetCookie()) c.cookies.set(line.split('=')[0], { name: line.split('=')[0], value: line.split(';')[0].split('=').slice(1).join('='), path: '/hub/' });
      const me = JSON.parse((await c.get('/hub/api/user', { accept: 'application/json' })).body) as { name: string };
      assert.equal(me.name, 'stu.evil');
    } else {
      assert.ok(r.status === 400 || r.status === 403);
    }
  });

  it('refuses a sign-in without the username attribute, with a page that says what is missing', async () => {
    const r = await assertRefused({ SAMLResponse: (await signed('nouid')).SAMLResponse }, 'no uid');
    assert.match(r.body, /didn&#39;t tell us your username|didn't tell us your username/);
  });

  it('signs out locally and at the IdP (single logout), then lands on the signed-out page', async () => {
    const { client, authUrl } = await startLogin(hub);
    const response = await idp.answer(authUrl, 'stu');
    assert.equal((await client.request('POST', ACS, { form: { SAMLResponse: response.SAMLResponse } })).status, 303);
    const page = await client.get('/hub/logout');
    const out = await client.request('POST', '/hub/logout', { form: { _csrf: HubClient.csrfFrom(page.body) } });
    // A page that goes on to the IdP (a redirect of the form POST would break the hub's CSP).
    assert.equal(out.status, 200);
    const idpLogout = /id="idp-logout" href="([^"]+)"/.exec(out.body)?.[1]?.replace(/&amp;/g, '&') ?? '';
    assert.ok(idpLogout.startsWith(`${idp.url}/slo?SAMLRequest=`), idpLogout);
    assert.ok(!client.cookie('oerhub-session'), 'local session cookie cleared');
    const atIdp = await fetch(idpLogout, { redirect: 'manual' });
    assert.equal(atIdp.status, 302, await atIdp.clone().text());
    assert.equal(idp.logoutRequests.at(-1), 'Stu');
    const back = atIdp.headers.get('location') ?? '';
    assert.ok(back.startsWith(`${hub.url}/hub/saml/slo?SAMLResponse=`), back);
    const done = await client.follow(back.slice(hub.url.length));
    assert.equal(done.status, 200);
    assert.match(done.body, /You are signed out/);
    const me = await client.get('/hub/api/user', { accept: 'application/json' });
    assert.equal(me.status, 401);
  });

  it("refuses login CSRF: the attacker's own unused response, auto-posted from another site into a victim's browser, signs nobody in", async () => {
    // The attacker starts a sign-in in their own browser and keeps the IdP's answer unposted.
    const attacker = await signed('evil');
    // The victim's browser never started it; it may even have started a sign-in of its own.
    const victim = new HubClient(hub.url);
    await victim.get('/hub/saml/login');
    const r = await assertRefused({ SAMLResponse: attacker.SAMLResponse }, 'login CSRF', victim);
    assert.match(r.body, /started in another browser/);
    assert.equal((await victim.get('/hub/api/user', { accept: 'application/json' })).status, 401);
    // And with no hub cookie at all (a browser that has never been here).
    const other = await signed('evil');
    await assertRefused({ SAMLResponse: other.SAMLResponse }, 'login CSRF, no cookie', new HubClient(hub.url));
  });

  it('accepts sign-ins started in two tabs of one browser, each answered in turn', async () => {
    const browser = new HubClient(hub.url);
    const tab1 = await browser.get('/hub/saml/login');
    const tab2 = await browser.get('/hub/saml/login');
    const first = await idp.answer(tab1.location!, 'stu');
    const second = await idp.answer(tab2.location!, 'stu');
    assert.equal((await post(hub, { SAMLResponse: second.SAMLResponse }, browser)).status, 303);
    assert.equal((await post(hub, { SAMLResponse: first.SAMLResponse }, browser)).status, 303);
  });

  it('refuses a response signed with SHA-1 (signature and digest) by default, and logs why', async () => {
    const sha1 = await TestIdp.start({ entityId: idp.entityId, keys: idp.keys, signatureAlgorithm: SHA1_SIGNATURE });
    try {
      for (const [name, u] of idp.users) sha1.addUser(name, u);
      sha1.registerSp(await (await fetch(`${hub.url}/hub/saml/metadata`)).text());
      const weak = await signed('stu', {}, sha1);
      assert.match(weak.xml, /xmldsig#rsa-sha1/);
      await assertRefused({ SAMLResponse: weak.SAMLResponse }, 'SHA-1');
      assert.match(fs.readFileSync(path.join(LOG_DIR, `${label}.log`), 'utf8').split('\n').filter((l) => l.includes('SAML sign-in refused')).at(-1) ?? '', /SHA-1 signature or digest .*samlAllowSha1/);
    } finally {
      await sha1.close();
    }
  });

  it('bounds a SAMLResponse in a query string before inflating it: a deflate bomb gets a fast 400', async () => {
    const bomb = zlib.deflateRawSync(Buffer.alloc(5 * 1024 * 1024, 'a')).toString('base64');
    assert.ok(bomb.length < 8 * 1024, `the bomb is small (${bomb.length} bytes of base64)`);
    const before = refusalsLogged(label);
    const r = await new HubClient(hub.url).get(`/hub/saml/slo?SAMLResponse=${encodeURIComponent(bomb)}`);
    assert.equal(r.status, 400);
    assert.equal(refusalsLogged(label), before + 1);
    const big = await new HubClient(hub.url).get(`/hub/saml/slo?SAMLResponse=${'A'.repeat(10_000)}`);
    assert.equal(big.status, 400);
    // Sign-in answers never come in a query string.
    assert.equal((await new HubClient(hub.url).get(`/hub/saml/login?SAMLResponse=${encodeURIComponent(bomb)}`)).status, 400);
    assert.equal((await fetch(`${hub.url}/hub/health`)).status, 200);
  });
});

describe('SAML replay protection across hub processes sharing Redis', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  let idp: TestIdp;
  let a: Hub;
  let b: Hub;

  before(async () => {
    redis = await startRedis();
    idp = await TestIdp.start();
    idp.addUser('stu', { password: 'x', attributes: { uid: 'stu' } });
    const port = await freePort();
    // Two processes behind one public URL (as behind nginx): same SP, same store.
    a = await startSamlHub('saml-redis-a', idp, { store: 'redis', redisUrl: redis.url, port, publicUrl: `http://127.0.0.1:${port}` });
    b = await startSamlHub('saml-redis-b', idp, { store: 'redis', redisUrl: redis.url, publicUrl: `http://127.0.0.1:${port}` });
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await idp?.close();
    await redis?.stop();
  });

  it('accepts a response at the process that did not make the request, and refuses its replay at the other, also after a restart', async () => {
    const { client, authUrl } = await startLogin(a);
    const response = await idp.answer(authUrl, 'stu');
    const first = await post(b, { SAMLResponse: response.SAMLResponse }, client);
    assert.equal(first.status, 303, first.body);
    const replay = await post(a, { SAMLResponse: response.SAMLResponse }, client);
    assert.equal(replay.status, 403);
    assert.deepEqual(replay.headers.getSetCookie(), []);
    await b.close();
    b = await startSamlHub('saml-redis-b2', idp, { store: 'redis', redisUrl: redis.url, publicUrl: a.config.publicUrl });
    assert.equal((await post(b, { SAMLResponse: response.SAMLResponse }, client)).status, 403);
  });
});

describe('SAML with an IdP that still signs with SHA-1, allowed by the operator', function () {
  this.timeout(60_000);
  let idp: TestIdp;
  let hub: Hub;

  before(async () => {
    idp = await TestIdp.start({ signatureAlgorithm: SHA1_SIGNATURE });
    idp.addUser('stu', { password: 'x', attributes: { uid: 'stu' } });
    hub = await startSamlHub('saml-sha1', idp, { samlAllowSha1: true });
  });

  after(async () => {
    await hub?.close();
    await idp?.close();
  });

  it('signs the user in with samlAllowSha1, and logs the weak algorithm at start and at the sign-in', async () => {
    const { client, authUrl } = await startLogin(hub);
    const response = await idp.answer(authUrl, 'stu');
    assert.match(response.xml, /xmldsig#rsa-sha1/);
    const acs = await client.request('POST', ACS, { form: { SAMLResponse: response.SAMLResponse } });
    assert.equal(acs.status, 303, acs.body.slice(0, 300));
    const log = fs.readFileSync(path.join(LOG_DIR, 'saml-sha1.log'), 'utf8');
    assert.match(log, /SHA-1 are accepted \(samlAllowSha1\)/);
    assert.match(log, /accepted a SAML response signed with SHA-1/);
  });
});

describe('Chromium at a lab PC: single logout ends the sign-in at the institution too', function () {
  this.timeout(120_000);
  let idp: TestIdp;
  let hub: Hub;
  let browser: Browser;

  before(async () => {
    idp = await TestIdp.start();
    idp.addUser('stu', { password: 'stu-pw', attributes: { uid: 'stu', displayName: 'Stu Dent', eduPersonAffiliation: 'student' } });
    hub = await startSamlHub('saml-chromium-slo', idp);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.close();
    await idp?.close();
  });

  it('a student signs out; the next person clicking "Sign in with your institution" is asked for a password', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${hub.url}/hub/login`);
    await page.click('#saml-login');
    await page.waitForURL(`${idp.url}/sso?**`);
    await page.fill('#idp-username', 'stu');
    await page.fill('#idp-password', 'stu-pw');
    await page.click('#idp-login');
    await page.waitForURL(`${hub.url}/hub/home`);
    assert.equal(await page.textContent('.who'), 'Stu Dent');
    assert.equal(idp.sessions.size, 1, 'the IdP remembers this browser');

    // The nav's "Sign out" form, as the student clicks it; no CSP violation may stop the way to the IdP.
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    await page.click('header form[action="/hub/logout"] button');
    await page.waitForURL(`${hub.url}/hub/logout`);
    assert.match((await page.textContent('main')) ?? '', /You are signed out/);
    assert.deepEqual(blocked, []);
    assert.deepEqual(idp.logoutRequests, ['stu']);
    assert.equal(idp.sessions.size, 0, 'the IdP ended its session');

    // The next person at this PC.
    await page.goto(`${hub.url}/hub/login`);
    await page.click('#saml-login');
    await page.waitForURL(`${idp.url}/sso?**`);
    assert.ok(await page.isVisible('#idp-password'), 'asked for a password');
    assert.equal((await context.request.get(`${hub.url}/hub/api/user`, { headers: { accept: 'application/json' } })).status(), 401, 'not signed in at the hub');
    await context.close();
  });
});
