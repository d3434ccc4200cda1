import { z } from 'zod';

/**
 * `auth.ldap`: users of an LDAP directory or Active Directory (src/auth/ldap,
 * docs/security.md#ldap--active-directory). Bind-and-search: Berth binds as a service account,
 * finds the user's entry, binds as the user with the given password, then reads the groups.
 */
const duration = z.union([z.number().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration like 30s, 15m, 24h')]);

/** `{username}` (escaped per RFC 4515) and, in group filters, `{dn}` (the user's DN, escaped) are substituted. */
const filter = z.string().regex(/^\(.*\)$/s, 'an LDAP filter in parentheses, e.g. (uid={username})');

export const ldapConfigSchema = z
  .object({
    /** ldap://host:389 or ldaps://host:636. */
    url: z.string().regex(/^ldaps?:\/\/[^/\s]+\/?$/, 'expected ldap://host[:port] or ldaps://host[:port]'),
    /** Upgrade an ldap:// connection with StartTLS before binding (required for ldap:// unless insecure). */
    starttls: z.boolean().default(false),
    /** PEM file of the CA(s) the server certificate must chain to (default: the system's CAs). */
    ca: z.string().min(1).optional(),
    /** Allow binding over plain ldap:// without StartTLS (passwords cross the network in clear: trusted networks only). */
    insecure: z.boolean().default(false),
    /** The service account Berth searches with. Empty: anonymous search. */
    binddn: z.string().default(''),
    /** Its password (masked by `berth config`, never logged). Or bindpasswordfile. */
    bindpassword: z.string().optional(),
    /** A file holding the service account's password (one line), instead of bindpassword. */
    bindpasswordfile: z.string().min(1).optional(),
    user: z
      .object({
        basedn: z.string().min(1),
        /** Finds exactly one entry for the login name. Add conditions to refuse disabled accounts (AD: (!(userAccountControl:1.2.840.113556.1.4.803:=2))). */
        filter: filter.default('(&(objectClass=person)(uid={username}))'),
        scope: z.enum(['base', 'one', 'sub']).default('sub'),
        /** Attribute with the user's e-mail address. */
        emailattribute: z.string().min(1).default('mail'),
      })
      .strict(),
    group: z
      .object({
        /** memberof: read the user entry's memberOf attribute (AD, OpenLDAP with the memberof overlay); search: search group entries. */
        membership: z.enum(['memberof', 'search']).default('memberof'),
        /** memberof: the attribute listing the user's group DNs. */
        memberofattribute: z.string().min(1).default('memberOf'),
        /** search: where group entries live. */
        basedn: z.string().min(1).optional(),
        /**
         * search: groups whose member is the user ({dn}: the user's DN; {username}: the login name).
         * Default (&(objectClass=groupOfNames)(member={dn})), or with `nested` (member:1.2.840.113556.1.4.1941:={dn}).
         */
        filter: filter.optional(),
        /** The attribute whose value names a group in bindings (besides its DN). */
        nameattribute: z.string().min(1).default('cn'),
        /**
         * Active Directory: include groups the user belongs to through other groups, with the
         * LDAP_MATCHING_RULE_IN_CHAIN rule (1.2.840.113556.1.4.1941) in the group search. AD only:
         * OpenLDAP does not implement the rule.
         */
        nested: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /** Members of this group (its DN or name) are system administrators, re-evaluated at each login. Unset: the admin flag stays as it is. */
    admingroup: z.string().min(1).optional(),
    /** Connect and per-operation timeout. */
    timeout: duration.default('5s'),
    /** How long a verified login is reused before the directory is asked again (0: always ask). */
    cache: duration.default('60s'),
    /** Service connections kept open for searches (binds as users use connections of their own). */
    poolsize: z.number().int().positive().max(64).default(4),
    /** Let a directory login take over a local Berth user of the same name (off: local users stay local). */
    takeover: z.boolean().default(false),
  })
  .strict()
  .superRefine((ldap, ctx) => {
    if (ldap.bindpassword !== undefined && ldap.bindpasswordfile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['bindpasswordfile'], message: 'give bindpassword or bindpasswordfile, not both' });
    }
    if (ldap.url.startsWith('ldaps:') && ldap.starttls) {
      ctx.addIssue({ code: 'custom', path: ['starttls'], message: 'ldaps:// is TLS already; starttls is for ldap://' });
    }
    if (ldap.url.startsWith('ldap:') && !ldap.starttls && !ldap.insecure) {
      ctx.addIssue({
        code: 'custom',
        path: ['starttls'],
        message: 'ldap:// sends passwords in clear: set starttls: true, use ldaps://, or set insecure: true on a trusted network',
      });
    }
    if (ldap.group.membership === 'search' && !ldap.group.basedn) {
      ctx.addIssue({ code: 'custom', path: ['group', 'basedn'], message: 'required with membership: search' });
    }
    if (ldap.group.nested && ldap.group.membership !== 'search') {
      ctx.addIssue({
        code: 'custom',
        path: ['group', 'nested'],
        message: 'nested groups are read with a group search: set membership: search',
      });
    }
  });

export type LdapConfig = z.infer<typeof ldapConfigSchema>;
