import assert from 'node:assert/strict';
import { loadConfig } from '../../server/config/index.js';
import { ConfigError } from '../../server/errors.js';
import zlib from 'node:zlib';
import { checkRedirectMessage, checkXmlShape, isSha1, signatureAlgorithms } from '../../server/auth/saml/guards.js';
import { mergeRoles } from '../../server/auth/identities.js';
import { attributeValues, rolesFrom } from '../../server/auth/saml/attributes.js';

function problems(env: Record<string, string>): string {
  try {
    loadConfig({ env });
    return '';
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
}

describe('SSO configuration checks', () => {
  it('stops a start where SAML lacks its IdP metadata or the public URL, naming the keys', () => {
    const text = problems({ OERHUB_SAML_ENABLED: 'true' });
    assert.match(text, /samlIdpMetadataFile \(OERHUB_SAML_IDP_METADATA_FILE\): SAML needs the identity provider's metadata/);
    assert.match(text, /publicUrl \(OERHUB_PUBLIC_URL\): SAML needs the public URL/);
  });

  it('refuses IdP metadata over plain http except from this machine, and a key without its certificate', () => {
    const base = { OERHUB_SAML_ENABLED: '1', OERHUB_PUBLIC_URL: 'https://hub.example.edu' };
    assert.match(problems({ ...base, OERHUB_SAML_IDP_METADATA_URL: 'http://idp.example.edu/md' }), /samlIdpMetadataUrl .*must be https/);
    assert.equal(problems({ ...base, OERHUB_SAML_IDP_METADATA_URL: 'http://127.0.0.1:8080/md' }), '');
    assert.match(problems({ ...base, OERHUB_SAML_IDP_METADATA_URL: 'https://idp.example.edu/md', OERHUB_SAML_SP_KEY_FILE: '/k.pem' }), /samlSpCertFile/);
  });

  it('needs the front door socket for a trusted header: it is never believed on the TCP port', () => {
    assert.match(problems({ OERHUB_TRUSTED_HEADER: 'X-Remote-User' }), /frontDoorSocket \(OERHUB_FRONT_DOOR_SOCKET\): trustedHeader needs the Unix socket/);
    assert.equal(problems({ OERHUB_TRUSTED_HEADER: 'X-Remote-User', OERHUB_FRONT_DOOR_SOCKET: '/run/oerhub/hub.sock' }), '');
    assert.match(problems({ OERHUB_FRONT_DOOR_SOCKET: 'hub.sock' }), /frontDoorSocket .*absolute path/);
    // The address-based settings are gone: a start that still sets them says so.
    assert.match(problems({ OERHUB_TRUSTED_PROXIES: '127.0.0.1' }), /OERHUB_TRUSTED_PROXIES: unknown environment variable/);
  });
});

describe('SAML response shape checks and attribute mapping', () => {
  it('refuses what no honest IdP sends, before any XML parser sees it', () => {
    const ok = '<r><Assertion><Signature><SignedInfo/></Signature></Assertion></r>';
    assert.equal(checkXmlShape(ok), null);
    assert.equal(checkXmlShape(`<?xml version="1.0"?>${ok}`), null);
    assert.match(checkXmlShape(`<!DOCTYPE r>${ok}`) ?? '', /DOCTYPE/);
    assert.match(checkXmlShape(`${ok}<r/>`) ?? '', /more than one root/);
    assert.match(checkXmlShape(`${ok}x`) ?? '', /text outside/);
    assert.match(checkXmlShape('<r><Assertion/><x:Assertion/></r>') ?? '', /more than one Assertion/);
    assert.match(checkXmlShape('<r><Assertion><Signature><SignedInfo/><SignedInfo/></Signature></Assertion></r>') ?? '', /SignedInfo/);
    assert.match(checkXmlShape('<r><Assertion><Signature><DigestValue>a<!---->b</DigestValue></Signature></Assertion></r>') ?? '', /comment inside a Signature/);
    assert.match(checkXmlShape('<r><?evil x?><Assertion/></r>') ?? '', /processing instruction/);
    assert.match(checkXmlShape(`<r>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</r>`) ?? '', /nested deeper/);
    assert.match(checkXmlShape('<r><Assertion></r>') ?? '', /mismatched/);
    assert.equal(checkXmlShape('<r a=">"><Assertion/></r>'), null);
  });

  it('finds attributes by friendly or urn:oid: name and maps affiliations to roles', () => {
    const attrs = { 'urn:oid:0.9.2342.19200300.100.1.1': 'ann', eduPersonAffiliation: ['Faculty@uni.example', 'member'] };
    assert.deepEqual(attributeValues(attrs, 'uid'), ['ann']);
    assert.deepEqual(attributeValues(attrs, 'urn:oid:1.3.6.1.4.1.5923.1.1.1.1'), ['Faculty@uni.example', 'member']);
    const rules = { instructorValues: ['faculty'], adminValues: ['hub-admins'] };
    assert.deepEqual(rolesFrom(attributeValues(attrs, 'eduPersonAffiliation'), rules), ['instructor']);
    assert.deepEqual(rolesFrom(['student', 'hub-admins'], rules), ['student', 'admin']);
    assert.deepEqual(rolesFrom([], rules), ['student']);
  });
});

describe('SAML algorithm and redirect-message checks, and role merging', () => {
  it('names every signature and digest algorithm, and knows which are SHA-1', () => {
    const xml = '<r><ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/><DigestMethod Algorithm=\'http://www.w3.org/2001/04/xmlenc#sha256\'/></r>';
    assert.deepEqual(signatureAlgorithms(xml), ['http://www.w3.org/2000/09/xmldsig#rsa-sha1', 'http://www.w3.org/2001/04/xmlenc#sha256']);
    assert.ok(isSha1('http://www.w3.org/2000/09/xmldsig#sha1'));
    assert.ok(isSha1('http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1'));
    assert.ok(!isSha1('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'));
  });

  it('bounds a query-string message before and while inflating it', () => {
    const ok = zlib.deflateRawSync(Buffer.from('<samlp:LogoutResponse/>')).toString('base64');
    assert.deepEqual(checkRedirectMessage(ok), { ok: true });
    const bomb = zlib.deflateRawSync(Buffer.alloc(2 * 1024 * 1024)).toString('base64');
    assert.match((checkRedirectMessage(bomb) as { reason: string }).reason, /inflates beyond/);
    assert.match((checkRedirectMessage('A'.repeat(9000)) as { reason: string }).reason, /larger than/);
    assert.match((checkRedirectMessage('%%%') as { reason: string }).reason, /not base64/);
  });

  it('merges hub-granted and IdP roles: a grant is kept, an instructor is no student', () => {
    assert.deepEqual(mergeRoles(['instructor'], ['student']), ['instructor']);
    assert.deepEqual(mergeRoles([], ['student']), ['student']);
    assert.deepEqual(mergeRoles(['admin'], ['student']), ['admin', 'student']);
    assert.deepEqual(mergeRoles([], []), ['student']);
  });
});
