import { z } from 'zod';
import { ldapConfigSchema } from './ldap.js';

/**
 * The `auth` block of berth.yaml. Lives beside the code that reads it; src/config/schema.ts
 * mounts it under `auth`. Every key has a BERTH_AUTH_* environment override
 * (e.g. BERTH_AUTH_MODE=token, BERTH_AUTH_ADMIN_PASSWORD=…).
 */
const duration = z.union([z.number().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration like 30s, 15m, 24h')]);

/** One OpenID provider (Keycloak realm, Dex, Azure AD, Okta, a CI system's token issuer). */
export const oidcProviderSchema = z
  .object({
    /** Short name in URLs and the audit log: /api/v1/oidc/<name>/login. */
    name: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/, 'expected 1-32 characters of [a-z0-9-]'),
    /** Issuer URL; its /.well-known/openid-configuration is read at start (discovery). */
    issuer: z.string().url(),
    /** Client of the browser login (code flow). Without it the provider only serves direct tokens. */
    clientid: z.string().min(1).optional(),
    /** Its secret (confidential client); masked by `berth config`, never logged. Or clientsecretfile. */
    clientsecret: z.string().min(1).optional(),
    /** A file holding the client secret (one line), instead of clientsecret. */
    clientsecretfile: z.string().min(1).optional(),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email', 'groups']),
    /** Where the provider sends the browser back (default: <http.host or the request's origin>/api/v1/oidc/<name>/callback). */
    redirecturl: z.string().url().optional(),
    claims: z
      .object({
        /** The claim that names the Berth user (its value must be a valid Berth username). */
        username: z.string().min(1).default('preferred_username'),
        email: z.string().min(1).default('email'),
        /** A list of group names (Keycloak's group mapper, Dex's `groups`, Azure AD's `groups`). */
        groups: z.string().min(1).default('groups'),
      })
      .strict()
      .prefault({}),
    /** When non-empty, only members of one of these groups may log in. */
    allowedgroups: z.array(z.string().min(1)).default([]),
    /** Members of this group are system administrators (re-evaluated at each login). */
    admingroup: z.string().min(1).optional(),
    /**
     * `aud` values accepted when an ID or access token of this issuer is given directly as the
     * password (CI). Empty: direct tokens are refused. The client id is not implied.
     */
    audiences: z.array(z.string().min(1)).default([]),
    /** Allow an http:// issuer (a provider on a trusted network or in tests); https otherwise. */
    insecure: z.boolean().default(false),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (!p.insecure && new URL(p.issuer).protocol !== 'https:') {
      ctx.addIssue({
        code: 'custom',
        path: ['issuer'],
        message: 'must be https:// (or set insecure: true for a provider on a trusted network)',
      });
    }
    if (p.clientsecret !== undefined && p.clientsecretfile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientsecretfile'], message: 'give clientsecret or clientsecretfile, not both' });
    }
    if (p.clientid === undefined && p.audiences.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['clientid'],
        message: 'a provider needs a clientid (browser login) or audiences (direct tokens), or both',
      });
    }
  });

export type OidcProviderConfig = z.infer<typeof oidcProviderSchema>;

export const authConfigSchema = z
  .object({
    /** none: anyone may do anything (zero-setup); basic: HTTP Basic on /v2; token: Docker token auth. */
    mode: z.enum(['none', 'basic', 'token']).default('none'),
    admin: z
      .object({
        username: z.string().min(1).default('admin'),
        /** Initial admin password, used only when the user table is empty. Also BERTH_ADMIN_PASSWORD. */
        password: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    token: z
      .object({
        /** The `service` (and JWT audience) clients ask tokens for. */
        service: z.string().min(1).default('berth'),
        /** `iss` of the tokens Berth issues (or trusts, with jwks/certificates). */
        issuer: z.string().min(1).default('berth'),
        /** Expected `aud` (default: service). */
        audience: z.string().min(1).optional(),
        /** Lifetime of an access token. */
        expiration: duration.default('5m'),
        /** Lifetime of a refresh token (offline_token / OAuth2 password grant). */
        refreshexpiration: duration.default('30d'),
        /** Where clients fetch tokens (default: <this server>/token). Required with an external issuer. */
        realm: z.string().url().optional(),
        /** External issuer: JWKS URL (http/https) or file path. */
        jwks: z.string().min(1).optional(),
        /** External issuer: PEM bundle of certificates whose keys sign tokens. */
        certificates: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    projects: z
      .object({
        /** Create a missing project on first push; the pusher becomes its project-admin. */
        autocreate: z.boolean().default(true),
        /** Who may create projects (explicitly or by autocreate): every user, or system admins only. */
        creation: z.enum(['everyone', 'adminonly']).default('everyone'),
      })
      .strict()
      .prefault({}),
    /**
     * Users from an Apache htpasswd file (bcrypt entries, as written by `htpasswd -B`), for
     * users coming from Distribution's `auth: htpasswd`. Re-read when the file changes.
     */
    htpasswd: z
      .object({
        path: z.string().min(1),
        /** Realm of the Basic challenge /v2 answers with in auth.mode basic (default "berth"). */
        realm: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /**
     * OpenID Connect single sign-on (docs/security.md#oidc): browser login with the
     * authorization code flow (PKCE, state, nonce), a registry CLI secret per user, and ID or
     * access tokens of a provider accepted as the password of direct logins (CI).
     */
    oidc: z
      .object({
        providers: z.array(oidcProviderSchema).default([]),
        /** Lifetime of a CLI secret when the user asks for none. */
        clisecretexpiration: duration.default('90d'),
        /** The longest lifetime a user may ask for. */
        clisecretmaxexpiration: duration.default('365d'),
        /** How long a browser login (provider round trip) may take between /login and /callback. */
        logintimeout: duration.default('10m'),
      })
      .strict()
      .prefault({}),
    /** Users of an LDAP directory or Active Directory (src/config/ldap.ts, docs/security.md#ldap--active-directory). */
    ldap: ldapConfigSchema.optional(),
    ratelimit: z
      .object({
        /** Failed logins tolerated for one account from one client IP within `window` (never a lock-out for other addresses). */
        failures: z.number().int().positive().default(10),
        /** Failed logins tolerated from one client IP across all accounts within `window` (password spraying). */
        perip: z.number().int().positive().default(100),
        window: duration.default('5m'),
        /** First wait once a limit is reached; doubles with each further failure, at most `window`. */
        backoff: duration.default('5s'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({})
  .superRefine((auth, ctx) => {
    const external = auth.token.jwks !== undefined || auth.token.certificates !== undefined;
    if (external && !auth.token.realm) {
      ctx.addIssue({
        code: 'custom',
        path: ['token', 'realm'],
        message: 'required when tokens come from an external issuer (jwks/certificates)',
      });
    }
    if (auth.oidc.providers.length > 0 && (auth.mode !== 'token' || external)) {
      // The browser login ends in a Berth API token and CLI secrets are exchanged for Berth tokens.
      ctx.addIssue({
        code: 'custom',
        path: ['oidc'],
        message: 'needs auth.mode token with Berth issuing the tokens (not an external issuer)',
      });
    }
    const names = auth.oidc.providers.map((p) => p.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined)
      ctx.addIssue({ code: 'custom', path: ['oidc', 'providers'], message: `provider name ${twice} is given twice` });
    if (auth.ldap && (auth.mode === 'none' || external)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ldap'],
        message: 'needs auth.mode basic or token with Berth issuing the tokens (not none, not an external issuer)',
      });
    }
    if (auth.htpasswd && (auth.mode === 'none' || external)) {
      // Silently ignoring the file would leave its users wondering why their passwords do nothing.
      ctx.addIssue({
        code: 'custom',
        path: ['htpasswd'],
        message: 'needs auth.mode basic or token with Berth issuing the tokens (not none, not an external issuer)',
      });
    }
  });

export type AuthConfig = z.infer<typeof authConfigSchema>;

/** Whether tokens are issued elsewhere and only verified here. */
export function usesExternalIssuer(auth: AuthConfig): boolean {
  return auth.token.jwks !== undefined || auth.token.certificates !== undefined;
}
