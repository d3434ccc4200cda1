import { z } from 'zod';

/**
 * The `auth` block of berth.yaml. Lives beside the code that reads it; src/config/schema.ts
 * mounts it under `auth`. Every key has a BERTH_AUTH_* environment override
 * (e.g. BERTH_AUTH_MODE=token, BERTH_AUTH_ADMIN_PASSWORD=…).
 */
const duration = z.union([z.number().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration like 30s, 15m, 24h')]);

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
      ctx.addIssue({ code: 'custom', path: ['token', 'realm'], message: 'required when tokens come from an external issuer (jwks/certificates)' });
    }
    if (auth.htpasswd && (auth.mode === 'none' || external)) {
      // Silently ignoring the file would leave its users wondering why their passwords do nothing.
      ctx.addIssue({ code: 'custom', path: ['htpasswd'], message: 'needs auth.mode basic or token with Berth issuing the tokens (not none, not an external issuer)' });
    }
  });

export type AuthConfig = z.infer<typeof authConfigSchema>;

/** Whether tokens are issued elsewhere and only verified here. */
export function usesExternalIssuer(auth: AuthConfig): boolean {
  return auth.token.jwks !== undefined || auth.token.certificates !== undefined;
}
