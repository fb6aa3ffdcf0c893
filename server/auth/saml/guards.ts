import zlib from 'node:zlib';

/**
 * A cheap, linear look at a SAMLResponse before any XML parser or signature library sees it.
 * It refuses what no honest IdP sends and what has broken SAML libraries before: huge or
 * deeply nested documents (parser and canonicaliser recursion), DOCTYPEs and entities,
 * processing instructions, more than one root element, text outside the root, more than one
 * assertion (or one hidden in Advice), encrypted assertions (not configured), more than one
 * SignedInfo per Signature, and comments inside a Signature (DigestValue tricks).
 * The signature library (xml-crypto via node-saml) still does the real verification; this is
 * the outer wall, and it answers in microseconds.
 */

/** The base64 SAMLResponse we accept at most (about 190 KB of XML; big group lists fit). */
export const MAX_SAML_RESPONSE_BASE64 = 256 * 1024;
/** Real responses nest about 8 deep; 40 leaves room for extensions. */
export const MAX_XML_DEPTH = 40;

export type ShapeResult = { ok: true; xml: string } | { ok: false; reason: string };

function localName(qname: string): string {
  const colon = qname.indexOf(':');
  return colon === -1 ? qname : qname.slice(colon + 1);
}

/** Decode and check a POSTed SAMLResponse; never throws. */
export function checkSamlResponseShape(raw: unknown): ShapeResult {
  if (typeof raw !== 'string' || raw.length === 0) return { ok: false, reason: 'no SAMLResponse in the request' };
  if (raw.length > MAX_SAML_RESPONSE_BASE64) return { ok: false, reason: `SAMLResponse larger than ${MAX_SAML_RESPONSE_BASE64} bytes` };
  if (!/^[A-Za-z0-9+/=\r\n]+$/.test(raw)) return { ok: false, reason: 'SAMLResponse is not base64' };
  const xml = Buffer.from(raw, 'base64').toString('utf8');
  const problem = checkXmlShape(xml);
  return problem ? { ok: false, reason: problem } : { ok: true, xml };
}

/** The reason an XML document is refused, or null. Linear in its length; no recursion. */
export function checkXmlShape(xml: string): string | null {
  if (xml.includes('\uFFFD')) return 'not valid UTF-8';
  const stack: string[] = [];
  let roots = 0;
  let assertions = 0;
  let signatures = 0;
  let signedInfos = 0;
  let signatureDepth = -1; // depth of the open Signature element, -1 when outside one
  let i = 0;
  const n = xml.length;
  while (i < n) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? n : lt);
    if (stack.length === 0 && text.trim() !== '') return 'text outside the root element';
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end === -1) return 'unterminated comment';
      if (signatureDepth !== -1) return 'a comment inside a Signature';
      i = end + 3;
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      if (stack.length === 0) return 'CDATA outside the root element';
      const end = xml.indexOf(']]>', lt + 9);
      if (end === -1) return 'unterminated CDATA';
      i = end + 3;
      continue;
    }
    if (xml.startsWith('<?', lt)) {
      const end = xml.indexOf('?>', lt + 2);
      if (end === -1) return 'unterminated processing instruction';
      // Only the XML declaration, and only first.
      if (!(lt === 0 && /^<\?xml\s/.test(xml.slice(0, 6)))) return 'a processing instruction';
      i = end + 2;
      continue;
    }
    if (xml.startsWith('<!', lt)) return 'a DOCTYPE or entity declaration';
    // A start or end tag: find its end, skipping quoted attribute values.
    let j = lt + 1;
    let quote = '';
    for (; j < n; j++) {
      const c = xml[j];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '>') break;
      else if (c === '<') return 'a < inside a tag';
    }
    if (j >= n) return 'unterminated tag';
    const tag = xml.slice(lt + 1, j);
    i = j + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) return 'mismatched end tag';
      if (signatureDepth === stack.length) signatureDepth = -1;
      continue;
    }
    const name = /^[^\s/>]+/.exec(tag)?.[0];
    if (!name) return 'an empty tag';
    const selfClosing = tag.endsWith('/');
    if (stack.length === 0 && ++roots > 1) return 'more than one root element';
    const local = localName(name);
    if (local === 'Assertion' && ++assertions > 1) return 'more than one Assertion';
    if (local === 'EncryptedAssertion') return 'an encrypted assertion (not configured)';
    if (local === 'Signature') {
      signatures++;
      if (signatureDepth !== -1) return 'a Signature inside a Signature';
    }
    if (local === 'SignedInfo' && ++signedInfos > signatures) return 'more than one SignedInfo in a Signature';
    if (selfClosing) continue;
    if (local === 'Signature') signatureDepth = stack.length;
    stack.push(name);
    if (stack.length > MAX_XML_DEPTH) return `nested deeper than ${MAX_XML_DEPTH}`;
  }
  if (stack.length) return 'unclosed elements';
  if (roots !== 1) return 'no root element';
  if (assertions !== 1) return 'no Assertion';
  return null;
}

/** A SAMLResponse or SAMLRequest in a query string (redirect binding) we read at most: logout messages are small. */
export const MAX_SAML_REDIRECT_BASE64 = 8 * 1024;
/** What such a message may inflate to: a deflate bomb stops here, not in memory. */
export const MAX_SAML_REDIRECT_XML = 64 * 1024;

/**
 * Check a redirect-binding message (base64 of raw DEFLATE) before any library inflates it:
 * its length first, then an inflate that stops at MAX_SAML_REDIRECT_XML. Never throws.
 */
export function checkRedirectMessage(raw: unknown): { ok: true } | { ok: false; reason: string } {
  if (typeof raw !== 'string' || raw.length === 0) return { ok: false, reason: 'no SAML message in the query' };
  if (raw.length > MAX_SAML_REDIRECT_BASE64) return { ok: false, reason: `SAML message in the query larger than ${MAX_SAML_REDIRECT_BASE64} bytes` };
  if (!/^[A-Za-z0-9+/=\r\n]+$/.test(raw)) return { ok: false, reason: 'SAML message in the query is not base64' };
  try {
    zlib.inflateRawSync(Buffer.from(raw, 'base64'), { maxOutputLength: MAX_SAML_REDIRECT_XML });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ERR_BUFFER_TOO_LARGE' ? `SAML message in the query inflates beyond ${MAX_SAML_REDIRECT_XML} bytes` : 'SAML message in the query is not DEFLATE data' };
  }
  return { ok: true };
}

/** Signature and digest algorithms named in a document (every SignatureMethod and DigestMethod). */
export function signatureAlgorithms(xml: string): string[] {
  const out: string[] = [];
  const re = /<(?:[A-Za-z0-9_.-]+:)?(?:SignatureMethod|DigestMethod)\b[^>]*?\bAlgorithm\s*=\s*(["'])([^"']*)\1/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push(m[2]);
  return out;
}

/** Whether an algorithm URI is SHA-1 based (rsa-sha1, dsa-sha1, hmac-sha1, ecdsa-sha1, sha1). */
export function isSha1(algorithm: string): boolean {
  return /[#-]sha1$/i.test(algorithm.trim());
}
