import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/**
 * The lowest versions that close the published advisories of the XML signature stack SAML
 * relies on. Raise a floor when a new advisory is published; never lower one.
 */
const FLOORS: Record<string, { floor: string; why: string }> = {
  // CVE-2024-32962 (KeyInfo certificate trusted, 6.0.0); CVE-2025-29774 / CVE-2025-29775
  // (second SignedInfo, comment in DigestValue, 6.0.1); 6.1.2 drops data of corrupted references.
  'xml-crypto': { floor: '6.1.2', why: 'signature wrapping and DigestValue comment bypasses' },
  // CVE-2022-39353 (multiple root elements, 0.8.4); CVE-2026-34601 (CDATA, 0.8.12);
  // CVE-2026-41673/41674 (recursion, DOCTYPE serialisation, 0.8.13); GHSA-4w3w-2rp5-g8jm (0.8.14);
  // CVE-2026-83616 (processing-instruction target, 0.8.15).
  '@xmldom/xmldom': { floor: '0.8.15', why: 'multiple roots, injection and recursion advisories' },
  // CVE-2025-54419: assertion read from the unsigned document (5.1.0).
  '@node-saml/node-saml': { floor: '5.1.0', why: 'signature verification bypass' },
  // CVE-2025-47949: signature wrapping (2.10.0). samlify is the test IdP only.
  samlify: { floor: '2.10.0', why: 'signature wrapping' },
};

function compare(a: string, b: string): number {
  const pa = a.split(/[.-]/).slice(0, 3).map(Number);
  const pb = b.split(/[.-]/).slice(0, 3).map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** Every installed copy of a package, nested ones included. */
function installedCopies(name: string, dir = path.join(ROOT, 'node_modules'), depth = 0): { where: string; version: string }[] {
  const out: { where: string; version: string }[] = [];
  const own = path.join(dir, name, 'package.json');
  if (fs.existsSync(own)) out.push({ where: path.relative(ROOT, path.dirname(own)), version: (JSON.parse(fs.readFileSync(own, 'utf8')) as { version: string }).version });
  if (depth > 6 || !fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir)) {
    const scoped = entry.startsWith('@') ? fs.readdirSync(path.join(dir, entry)).map((e) => path.join(entry, e)) : [entry];
    for (const pkg of scoped) {
      const nested = path.join(dir, pkg, 'node_modules');
      if (fs.existsSync(nested)) out.push(...installedCopies(name, nested, depth + 1));
    }
  }
  return out;
}

describe('dependency floors of the SAML stack', () => {
  for (const [name, { floor, why }] of Object.entries(FLOORS)) {
    it(`every installed ${name} is at least ${floor} (${why})`, () => {
      const copies = installedCopies(name);
      assert.ok(copies.length > 0, `${name} is not installed`);
      for (const c of copies) assert.ok(compare(c.version, floor) >= 0, `${c.where} is ${c.version}, below ${floor}`);
    });
  }

  it('package.json keeps the overrides that force the floors onto every dependent', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { overrides?: Record<string, string>; dependencies: Record<string, string> };
    const floorOf = (spec: string | undefined): string => (spec ?? '').replace(/^[\^~>=]+/, '');
    assert.ok(compare(floorOf(pkg.overrides?.['xml-crypto']), FLOORS['xml-crypto'].floor) >= 0, `overrides.xml-crypto is ${pkg.overrides?.['xml-crypto']}`);
    const xmldom = pkg.overrides?.['@xmldom/xmldom'] === '$@xmldom/xmldom' ? pkg.dependencies['@xmldom/xmldom'] : pkg.overrides?.['@xmldom/xmldom'];
    assert.ok(compare(floorOf(xmldom), FLOORS['@xmldom/xmldom'].floor) >= 0, `@xmldom/xmldom floor is ${xmldom}`);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    for (const [where, meta] of Object.entries(lock.packages)) {
      for (const name of ['xml-crypto', '@xmldom/xmldom']) {
        if (where.endsWith(`node_modules/${name}`)) assert.ok(compare(meta.version ?? '0', FLOORS[name].floor) >= 0, `package-lock ${where} is ${meta.version}`);
      }
    }
  });
});
