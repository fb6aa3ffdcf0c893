import { z } from 'zod';
import { list, bool, int } from './types.js';

/**
 * Options of SAML and trusted-header sign-on (issue 4). Merged into the one config schema in
 * schema.ts; same rules: every key has a description, env var OERHUB_ + SCREAMING_SNAKE_CASE.
 * Cross-field rules (SAML needs publicUrl and IdP metadata, trusted headers need the front
 * door socket) are checked in config/index.ts.
 */
export const ssoShape = {
  samlEnabled: bool
    .default(false)
    .describe('Offer "Sign in with your institution" (SAML 2.0). Needs publicUrl and samlIdpMetadataFile or samlIdpMetadataUrl. The local sign-in form stays.'),
  samlIdpMetadataFile: z.string().min(1).optional().describe("The identity provider's SAML metadata (XML file). Read at start."),
  samlIdpMetadataUrl: z
    .string()
    .url()
    .optional()
    .describe("URL of the identity provider's SAML metadata, fetched on first use and every samlIdpMetadataRefreshS. Must be https (plain http only for 127.0.0.1/localhost)."),
  samlIdpMetadataRefreshS: int(60, 7 * 24 * 3600).default(24 * 3600).describe('How often metadata from samlIdpMetadataUrl is fetched again, in seconds. The last good copy is kept if a fetch fails.'),
  samlIdpCertFile: z
    .string()
    .min(1)
    .optional()
    .describe("PEM file with the IdP's signing certificate(s). If set, only these verify assertions and the metadata's certificates are ignored (pinning)."),
  samlSpEntityId: z.string().min(1).optional().describe("This hub's SAML entity ID. Default: publicUrl + /hub/saml/metadata."),
  samlSpKeyFile: z.string().min(1).optional().describe("PEM private key of this hub's SAML signing key: signs AuthnRequests and LogoutRequests. Needed for single logout."),
  samlSpCertFile: z.string().min(1).optional().describe('PEM certificate of samlSpKeyFile, published in /hub/saml/metadata.'),
  samlWantResponseSigned: bool.default(false).describe('Also require the whole SAML Response to be signed. Assertions must always be signed.'),
  samlAllowSha1: bool
    .default(false)
    .describe('Accept SAML responses signed or digested with SHA-1 (broken; refused by default). Only for an IdP that cannot yet sign with SHA-256; logged at every start and every such sign-in.'),
  samlClockSkewS: int(0, 600).default(60).describe('Allowed clock difference with the IdP when checking NotBefore/NotOnOrAfter, in seconds.'),
  samlRequestTtlS: int(60, 24 * 3600).default(15 * 60).describe('How long a sign-in started here may take at the IdP, in seconds. Responses to older (or unknown) requests are refused.'),
  samlUsernameAttribute: z
    .string()
    .min(1)
    .default('uid')
    .describe('SAML attribute that becomes the username (friendly name or urn:oid: name, e.g. uid, eduPersonPrincipalName, mail), or `nameID` for the subject NameID.'),
  samlDisplayNameAttribute: z.string().default('displayName').describe('SAML attribute with the display name (empty: none).'),
  samlEmailAttribute: z.string().default('mail').describe('SAML attribute with the email address (empty: none).'),
  samlRolesAttribute: z.string().default('eduPersonAffiliation').describe('SAML attribute whose values decide roles (e.g. eduPersonAffiliation, eduPersonEntitlement, isMemberOf); see roleInstructorValues and roleAdminValues.'),
  samlLoginLabel: z.string().min(1).default('Sign in with your institution').describe('Text of the SAML sign-in button on /hub/login.'),
  roleInstructorValues: list
    .default(['faculty'])
    .describe('Values of samlRolesAttribute (or trustedHeaderRoles) that give the instructor role, compared case-insensitively; a scope after @ is ignored (faculty@uni.example = faculty).'),
  roleAdminValues: list.default([]).describe('Values of samlRolesAttribute (or trustedHeaderRoles) that give the admin role. adminUsers always applies too.'),
  trustedHeader: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'a header name such as X-Remote-User')
    .optional()
    .describe('Trusted-header sign-on: the request header (e.g. X-Remote-User) in which the front proxy passes the signed-in user. Believed only on frontDoorSocket (which it needs), never on the TCP port.'),
  trustedHeaderRoles: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'a header name such as X-Remote-Groups')
    .optional()
    .describe('Optional header with comma- or semicolon-separated groups/affiliations, mapped by roleInstructorValues and roleAdminValues.'),
} satisfies Record<string, z.ZodTypeAny>;
