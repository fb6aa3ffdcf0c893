import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import * as samlify from 'samlify';
import * as xmllint from '@authenio/samlify-node-xmllint';
import type { Hub } from '../../server/index.js';
import { startTestHub } from './hub.js';
import { freePort } from './ports.js';

/** A key and self-signed certificate made with openssl for this test run. */
export interface KeyPair {
  key: string;
  cert: string;
  keyFile: string;
  certFile: string;
}

export function makeKeyPair(cn: string, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-keys-'))): KeyPair {
  const keyFile = path.join(dir, `${cn}.key.pem`);
  const certFile = path.join(dir, `${cn}.cert.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', `/CN=${cn}`, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8'), keyFile, certFile };
}

export interface IdpUser {
  password: string;
  attributes: Record<string, string | string[]>;
  /** NameID (default: the uid attribute). */
  nameID?: string;
}

/** How to bend a response for the refusal tests. Times are offsets from now in ms. */
export interface ResponseOptions {
  audience?: string;
  recipient?: string;
  destination?: string;
  inResponseTo?: string;
  notBeforeMs?: number;
  notOnOrAfterMs?: number;
  nameID?: string;
  attributes?: Record<string, string | string[]>;
}

export interface LoginResponse {
  /** base64, as the form field. */
  SAMLResponse: string;
  RelayState: string;
  /** The signed XML (to tamper with). */
  xml: string;
  acsUrl: string;
  requestId: string;
}

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
/** RSA with SHA-1, which the hub refuses unless samlAllowSha1 is set. */
export const SHA1_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SESSION_COOKIE = 'idp-session';
const UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlEscape(s: string): string {
  return xmlEscape(s).replace(/'/g, '&#39;');
}

/**
 * A real SAML identity provider for tests: samlify with its own keys (made by openssl now),
 * @authenio/samlify-node-xmllint validating every AuthnRequest against the SAML schemas, a
 * login page for browsers, and helpers that answer a hub's AuthnRequest directly.
 */
export class TestIdp {
  readonly keys: KeyPair;
  readonly url: string;
  readonly entityId: string;
  private readonly idp: ReturnType<typeof samlify.IdentityProvider>;
  private sp: ReturnType<typeof samlify.ServiceProvider> | undefined;
  private readonly server: http.Server;
  readonly users = new Map<string, IdpUser>();
  /** Every LogoutRequest received (single logout). */
  readonly logoutRequests: string[] = [];
  /**
   * Browser sessions at the IdP (cookie value -> username), as a real IdP keeps them: a browser
   * with one is signed in again without a password until single logout ends it.
   */
  readonly sessions = new Map<string, string>();

  private constructor(server: http.Server, url: string, entityId: string, keys: KeyPair, signatureAlgorithm?: string) {
    this.server = server;
    this.url = url;
    this.entityId = entityId;
    this.keys = keys;
    this.idp = samlify.IdentityProvider({
      entityID: entityId,
      privateKey: keys.key,
      signingCert: keys.cert,
      isAssertionEncrypted: false,
      wantAuthnRequestsSigned: false,
      nameIDFormat: [UNSPECIFIED],
      singleSignOnService: [{ Binding: REDIRECT, Location: `${url}/sso` }],
      singleLogoutService: [{ Binding: REDIRECT, Location: `${url}/slo` }],
      ...(signatureAlgorithm ? { requestSignatureAlgorithm: signatureAlgorithm } : {}),
    });
  }

  /**
   * Start on 127.0.0.1; `entityId` lets a second IdP impersonate the first (other keys);
   * `signatureAlgorithm` (e.g. SHA1_SIGNATURE) signs responses with another algorithm, and the
   * matching digest.
   */
  static async start(options: { entityId?: string; keys?: KeyPair; signatureAlgorithm?: string } = {}): Promise<TestIdp> {
    // samlify refuses to run without a schema validator; this is the real xmllint (emscripten).
    samlify.setSchemaValidator(xmllint);
    // The emscripten xmllint takes seconds on its first call; pay that here, not inside a test.
    await xmllint.validate(
      '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_w" Version="2.0" IssueInstant="2020-01-01T00:00:00Z"><saml:NameID>w</saml:NameID></samlp:LogoutRequest>',
    );
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const idp = new TestIdp(server, url, options.entityId ?? `${url}/metadata`, options.keys ?? makeKeyPair('idp'), options.signatureAlgorithm);
    server.on('request', (req, res) => {
      idp.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`IdP error: ${err.message}`);
      });
    });
    return idp;
  }

  get metadata(): string {
    return this.idp.getMetadata();
  }

  /** Write the metadata to a file for samlIdpMetadataFile. */
  metadataFile(): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oerhub-idp-')), 'idp-metadata.xml');
    fs.writeFileSync(file, this.metadata);
    return file;
  }

  /** Register the hub (its /hub/saml/metadata), as an IdP administrator would. */
  registerSp(spMetadata: string): void {
    this.sp = samlify.ServiceProvider({ metadata: spMetadata });
  }

  addUser(name: string, user: IdpUser): void {
    this.users.set(name, user);
  }

  /** Parse the hub's redirect to /sso (validates the AuthnRequest with xmllint). */
  async parseRequest(authUrl: string): Promise<{ id: string; relayState: string; acsUrl: string }> {
    const u = new URL(authUrl);
    const query = Object.fromEntries(u.searchParams);
    const parsed = await this.idp.parseLoginRequest(this.requireSp(), 'redirect', { query, octetString: u.search.slice(1) });
    const request = (parsed.extract as { request: { id: string; assertionConsumerServiceUrl?: string } }).request;
    return { id: request.id, relayState: query.RelayState ?? '', acsUrl: request.assertionConsumerServiceUrl ?? '' };
  }

  /** Answer the hub's AuthnRequest (the URL it redirected to) as if `username` signed in. */
  async answer(authUrl: string, username: string, options: ResponseOptions = {}): Promise<LoginResponse> {
    const request = await this.parseRequest(authUrl);
    return this.respond(request, username, options);
  }

  /** A signed response for a request id (any id: the refusal tests make some up). */
  async respond(request: { id: string; relayState: string; acsUrl?: string }, username: string, options: ResponseOptions = {}): Promise<LoginResponse> {
    const sp = this.requireSp();
    const acsUrl = request.acsUrl || (sp.entityMeta.getAssertionConsumerService('post') as string);
    const xml = this.responseXml(request.id, username, acsUrl, options);
    const result = await this.idp.createLoginResponse(sp, { extract: { request: { id: request.id } } }, 'post', {}, {
      customTagReplacement: () => ({ id: '', context: xml }),
    });
    const b64 = (result as { context: string }).context;
    return { SAMLResponse: b64, RelayState: request.relayState, xml: Buffer.from(b64, 'base64').toString('utf8'), acsUrl, requestId: request.id };
  }

  /** The unsigned response XML, for the "unsigned" refusal. */
  responseXml(inResponseTo: string, username: string, acsUrl: string, options: ResponseOptions = {}): string {
    const sp = this.requireSp();
    const user = this.users.get(username);
    if (!user) throw new Error(`IdP has no user ${username}`);
    const now = Date.now();
    const iso = (ms: number): string => new Date(now + ms).toISOString();
    const notBefore = iso(options.notBeforeMs ?? -30_000);
    const notOnOrAfter = iso(options.notOnOrAfterMs ?? 5 * 60_000);
    const attributes = { ...user.attributes, ...options.attributes };
    const attrXml = Object.entries(attributes)
      .map(([name, value]) => {
        const values = (Array.isArray(value) ? value : [value]).map((v) => `<saml:AttributeValue xsi:type="xs:string">${xmlEscape(v)}</saml:AttributeValue>`).join('');
        return `<saml:Attribute Name="${xmlEscape(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values}</saml:Attribute>`;
      })
      .join('');
    const nameID = options.nameID ?? user.nameID ?? String(user.attributes.uid ?? username);
    const irt = xmlEscape(options.inResponseTo ?? inResponseTo);
    const id = `_${randomUUID()}`;
    const assertionId = `_${randomUUID()}`;
    return (
      `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${iso(0)}" Destination="${xmlEscape(options.destination ?? acsUrl)}" InResponseTo="${irt}">` +
      `<saml:Issuer>${xmlEscape(this.entityId)}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      `<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="${assertionId}" Version="2.0" IssueInstant="${iso(0)}">` +
      `<saml:Issuer>${xmlEscape(this.entityId)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${UNSPECIFIED}">${xmlEscape(nameID)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${xmlEscape(options.recipient ?? acsUrl)}" InResponseTo="${irt}"/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${xmlEscape(options.audience ?? sp.entityMeta.getEntityID())}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(0)}" SessionIndex="${id}_session"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      `<saml:AttributeStatement>${attrXml}</saml:AttributeStatement>` +
      `</saml:Assertion></samlp:Response>`
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private requireSp(): ReturnType<typeof samlify.ServiceProvider> {
    if (!this.sp) throw new Error('register the hub first (registerSp)');
    return this.sp;
  }

  /** The browser side: a login page, the auto-posting response form, single logout. */
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const html = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Test University login</title></head><body>${body}</body></html>`);
    };
    if (url.pathname === '/metadata') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(this.metadata);
      return;
    }
    const sid = /(?:^|;\s*)idp-session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const postForm = (response: LoginResponse): void =>
      html(
        200,
        `<form method="post" action="${htmlEscape(response.acsUrl)}" id="saml-post"><input type="hidden" name="SAMLResponse" value="${htmlEscape(response.SAMLResponse)}">` +
          `<input type="hidden" name="RelayState" value="${htmlEscape(response.RelayState)}"><button type="submit" id="idp-continue">Continue</button></form>` +
          `<script>document.getElementById('saml-post').submit()</script>`,
      );
    if (url.pathname === '/sso' && req.method === 'GET') {
      const request = await this.parseRequest(url.href);
      // Still signed in here: no password asked (that is what single logout must end).
      const known = sid ? this.sessions.get(sid) : undefined;
      if (known) return postForm(await this.respond(request, known));
      html(
        200,
        `<h1>Test University</h1><form method="post" action="/sso/login">` +
          `<input type="hidden" name="id" value="${htmlEscape(request.id)}"><input type="hidden" name="relayState" value="${htmlEscape(request.relayState)}"><input type="hidden" name="acsUrl" value="${htmlEscape(request.acsUrl)}">` +
          `<label>Username <input name="username" id="idp-username"></label><label>Password <input name="password" type="password" id="idp-password"></label>` +
          `<button type="submit" id="idp-login">Log in</button></form>`,
      );
      return;
    }
    if (url.pathname === '/sso/login' && req.method === 'POST') {
      const body = new URLSearchParams(await readBody(req));
      const username = body.get('username') ?? '';
      const user = this.users.get(username);
      if (!user || user.password !== body.get('password')) return html(401, '<h1>Test University</h1><p id="idp-error">Wrong username or password.</p>');
      const response = await this.respond({ id: body.get('id') ?? '', relayState: body.get('relayState') ?? '', acsUrl: body.get('acsUrl') ?? '' }, username);
      const newSid = randomUUID();
      this.sessions.set(newSid, username);
      res.setHeader('set-cookie', `${SESSION_COOKIE}=${newSid}; Path=/; HttpOnly; SameSite=Lax`);
      return postForm(response);
    }
    if (url.pathname === '/slo' && req.method === 'GET' && url.searchParams.get('SAMLRequest')) {
      const query = Object.fromEntries(url.searchParams);
      const parsed = await this.idp.parseLogoutRequest(this.requireSp(), 'redirect', { query, octetString: url.search.slice(1) });
      const nameID = String((parsed.extract as { nameID?: string }).nameID ?? '');
      this.logoutRequests.push(nameID);
      // End this browser's session, and every session of that subject.
      if (sid) this.sessions.delete(sid);
      for (const [k, name] of this.sessions) if (String(this.users.get(name)?.nameID ?? this.users.get(name)?.attributes.uid ?? name) === nameID) this.sessions.delete(k);
      const out = this.idp.createLogoutResponse(this.requireSp(), parsed as unknown as Parameters<typeof this.idp.createLogoutResponse>[1], 'redirect', query.RelayState ?? '') as { context: string };
      res.writeHead(302, { location: out.context, 'set-cookie': `${SESSION_COOKIE}=; Path=/; Max-Age=0` });
      res.end();
      return;
    }
    html(404, 'not here');
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

/** A hub with SAML against `idp`, registered at the IdP through its own /hub/saml/metadata. */
export async function startSamlHub(label: string, idp: TestIdp, overrides: Record<string, unknown> = {}): Promise<Hub> {
  const port = (overrides.port as number | undefined) ?? (await freePort());
  const sp = makeKeyPair('sp');
  const hub = await startTestHub(label, {
    port,
    publicUrl: `http://127.0.0.1:${port}`,
    samlEnabled: true,
    samlIdpMetadataFile: idp.metadataFile(),
    samlSpKeyFile: sp.keyFile,
    samlSpCertFile: sp.certFile,
    samlUsernameAttribute: 'uid',
    roleInstructorValues: ['faculty'],
    adminUsers: ['admin', 'dean'],
    ...overrides,
  });
  const metadata = await fetch(`${hub.url}/hub/saml/metadata`);
  assert.equal(metadata.status, 200);
  idp.registerSp(await metadata.text());
  return hub;
}

