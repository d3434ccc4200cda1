import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type * as client from 'openid-client';
import type { OidcProviderConfig } from '../../config/auth.js';
import { validateUsername } from '../secrets.js';
import type { ExternalUser } from '../sources.js';
import { CLOCK_TOLERANCE_S } from '../tokens.js';

/** Signature algorithms accepted from a provider: asymmetric only (never `none`, never HMAC with the client secret). */
const PROVIDER_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** After a failed discovery, the next request may try again this much later (a provider that is down is not hammered). */
const DISCOVERY_RETRY_MS = 5_000;
/** Time allowed for discovery and JWKS requests to the provider. */
const PROVIDER_TIMEOUT_MS = 5_000;

/** The provider could not be reached or answered nonsense: the caller answers 503, never "allow". */
export class ProviderUnavailableError extends Error {}

/** A token or login that the provider's rules refuse (bad signature, audience, expiry, group…): 401/403. */
export class OidcRefusal extends Error {}

export interface VerifiedClaims {
  claims: JWTPayload;
  /** Who the claims name, as Berth sees them. */
  user: ExternalUser & { subject: string };
}

/**
 * One configured OpenID provider: its discovered metadata (read lazily, kept once read, retried
 * after a failure so a provider that is down at start does not stop Berth), its JWKS (jose's
 * remote key set: cached, refetched when a token names an unknown `kid`, which is how key
 * rotation at the provider is followed), the code-flow client (openid-client), and the mapping
 * of claims to a Berth user (username, email, groups, admin group, allowed groups).
 */
export class OidcProvider {
  readonly source: string;
  private discovered: Promise<client.Configuration> | null = null;
  private failedAt = 0;
  private jwks: JWTVerifyGetKey | null = null;

  constructor(readonly config: OidcProviderConfig) {
    this.source = `oidc:${config.name}`;
  }

  get name(): string {
    return this.config.name;
  }

  /** The issuer as configured (what `iss` must equal). */
  get issuer(): string {
    return this.config.issuer;
  }

  /** Whether the browser login is configured (a client id). */
  get browserLogin(): boolean {
    return this.config.clientid !== undefined;
  }

  /** Discovery (`<issuer>/.well-known/openid-configuration`), once; ProviderUnavailableError while it cannot be read. */
  async metadata(): Promise<client.Configuration> {
    if (this.discovered === null) {
      if (Date.now() - this.failedAt < DISCOVERY_RETRY_MS)
        throw new ProviderUnavailableError(`OIDC provider ${this.name} is unreachable (discovery failed moments ago)`);
      this.discovered = this.discover().catch((err: unknown) => {
        this.discovered = null;
        this.failedAt = Date.now();
        throw new ProviderUnavailableError(`OIDC provider ${this.name}: discovery at ${this.issuer} failed: ${(err as Error).message}`);
      });
    }
    return this.discovered;
  }

  private async discover(): Promise<client.Configuration> {
    const secret = this.clientSecret();
    const oidc = await import('openid-client');
    const configuration = await oidc.discovery(
      new URL(this.issuer),
      this.config.clientid ?? 'berth-direct-tokens',
      secret !== undefined ? { client_secret: secret } : undefined,
      secret !== undefined ? oidc.ClientSecretBasic(secret) : oidc.None(),
      {
        timeout: PROVIDER_TIMEOUT_MS / 1000,
        ...(this.config.insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      },
    );
    const jwksUri = configuration.serverMetadata().jwks_uri;
    if (!jwksUri) throw new Error('the discovery document names no jwks_uri');
    this.jwks = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: PROVIDER_TIMEOUT_MS, cooldownDuration: 1_000 });
    return configuration;
  }

  /** Read from clientsecretfile when given (re-read at each discovery: a rotated file applies at the next start). */
  private clientSecret(): string | undefined {
    if (this.config.clientsecretfile !== undefined) return readFileSync(this.config.clientsecretfile, 'utf8').trim();
    return this.config.clientsecret;
  }

  /**
   * Verifies a JWT of this provider: signature (its JWKS), `iss`, `aud` among `audiences`,
   * `exp` (required) and `nbf` with CLOCK_TOLERANCE_S. Throws OidcRefusal for a token this
   * provider's rules refuse, ProviderUnavailableError when the keys cannot be fetched.
   */
  async verify(token: string, audiences: string[]): Promise<JWTPayload> {
    await this.metadata();
    try {
      const { payload } = await jwtVerify(token, this.jwks!, {
        issuer: this.issuer,
        audience: audiences,
        algorithms: PROVIDER_ALGS,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    } catch (err) {
      if (
        err instanceof joseErrors.JWKSTimeout ||
        (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC' && /fetch|network|ECONNREFUSED/i.test(err.message))
      ) {
        throw new ProviderUnavailableError(`OIDC provider ${this.name}: its keys could not be fetched: ${err.message}`);
      }
      if (err instanceof TypeError)
        throw new ProviderUnavailableError(`OIDC provider ${this.name}: its keys could not be fetched: ${err.message}`);
      throw new OidcRefusal(`token refused: ${(err as Error).message}`);
    }
  }

  /** Whether `token` (unverified) names this provider as its issuer. */
  issued(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.issuer;
    } catch {
      return false;
    }
  }

  /**
   * The Berth user verified claims name: the username claim (a valid Berth username), email,
   * groups; refused when an allowed-groups list is configured and none of them is held. The
   * admin flag follows the admin group when one is configured (else the flag is left alone).
   */
  userOf(claims: JWTPayload): VerifiedClaims['user'] {
    const names = this.config.claims;
    const username = claims[names.username];
    if (typeof username !== 'string')
      throw new OidcRefusal(`the token has no "${names.username}" claim (auth.oidc.providers[].claims.username)`);
    try {
      validateUsername(username);
    } catch {
      throw new OidcRefusal(
        `the "${names.username}" claim "${username.slice(0, 64)}" is not a valid Berth username ([a-z0-9._-], 1-64 characters): map another claim`,
      );
    }
    const groups = groupsOf(claims[names.groups]);
    this.checkAllowed(groups);
    const email = claims[names.email];
    return {
      username,
      subject: String(claims.sub),
      groups,
      ...(typeof email === 'string' ? { email } : {}),
      ...(this.config.admingroup !== undefined ? { admin: groups.includes(this.config.admingroup) } : {}),
    };
  }

  /** Refuses a user who holds none of the allowed groups (when the list is configured). */
  checkAllowed(groups: string[]): void {
    const allowed = this.config.allowedgroups;
    if (allowed.length > 0 && !groups.some((g) => allowed.includes(g))) {
      throw new OidcRefusal(`not a member of an allowed group of OIDC provider ${this.name}`);
    }
  }

  /** The admin flag the stored groups give (undefined: no admin group configured, leave the flag). */
  adminOf(groups: string[]): boolean | undefined {
    return this.config.admingroup !== undefined ? groups.includes(this.config.admingroup) : undefined;
  }
}

/** A groups claim: an array of strings, or one string (some providers send a single group so). */
function groupsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.filter((g): g is string => typeof g === 'string');
}
