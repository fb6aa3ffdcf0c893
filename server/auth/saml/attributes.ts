import type { Role } from '../../store/repos.js';

/** Friendly names of the attributes IdPs send under their urn:oid: names (eduPerson, inetOrgPerson). */
const OIDS: Readonly<Record<string, string>> = {
  uid: 'urn:oid:0.9.2342.19200300.100.1.1',
  mail: 'urn:oid:0.9.2342.19200300.100.1.3',
  email: 'urn:oid:0.9.2342.19200300.100.1.3',
  displayName: 'urn:oid:2.16.840.1.113730.3.1.241',
  cn: 'urn:oid:2.5.4.3',
  givenName: 'urn:oid:2.5.4.42',
  sn: 'urn:oid:2.5.4.4',
  eduPersonPrincipalName: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.6',
  eduPersonAffiliation: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.1',
  eduPersonScopedAffiliation: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.9',
  eduPersonEntitlement: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.7',
  isMemberOf: 'urn:oid:1.3.6.1.4.1.5923.1.5.1.1',
};

export type AttributeValue = string | string[] | undefined;

function asStrings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

/** An attribute's values by configured name, its urn:oid: name, or the friendly name of a configured OID. */
export function attributeValues(attributes: Readonly<Record<string, unknown>>, name: string): string[] {
  if (!name) return [];
  const own = Object.prototype.hasOwnProperty;
  const candidates = [name, OIDS[name], Object.keys(OIDS).find((k) => OIDS[k] === name)].filter((c): c is string => Boolean(c));
  for (const c of candidates) if (own.call(attributes, c)) return asStrings(attributes[c]);
  return [];
}

export interface RoleRules {
  instructorValues: readonly string[];
  adminValues: readonly string[];
}

/**
 * Roles from attribute values (affiliations, entitlements, groups): compared case-insensitively,
 * with a scope after @ ignored. Everyone is a student unless they are an instructor.
 */
export function rolesFrom(values: readonly string[], rules: RoleRules): Role[] {
  const seen = new Set(values.flatMap((v) => [v.trim().toLowerCase(), v.trim().toLowerCase().replace(/@.*$/, '')]));
  const has = (list: readonly string[]): boolean => list.some((x) => seen.has(x.trim().toLowerCase()));
  const roles: Role[] = [has(rules.instructorValues) ? 'instructor' : 'student'];
  if (has(rules.adminValues)) roles.push('admin');
  return roles;
}
