import { randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { validateRepositoryName } from '../core/names.js';
import { identityName, type Identity } from './identity.js';
import { SIGNING_ALG, type KeyRing } from './keys.js';
import type { AccessRules } from './rules.js';
import { accessClaim, type Grant } from './scopes.js';

/** Signature algorithms accepted from an external issuer. Never `none`, never HMAC (no shared secrets). */
const EXTERNAL_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
/** Clock skew tolerated between the issuer and this server. */
export const CLOCK_TOLERANCE_S = 30;

/**
 * The scope a token request names to get an API token (for /api/v1) instead of a registry
 * token. Not a Docker scope (it has no colons), so no registry client asks for it by accident.
 */
export const API_SCOPE = 'api';

/**
 * The `aud` of API tokens: `<service>/api`. Registry tokens carry `aud` = the service, so
 * each kind is refused where the other is expected (a pull token cannot manage accounts, an
 * API token cannot push).
 */
export function apiAudience(service: string): string {
  return `${service}/api`;
}

export interface VerifiedToken {
  subject: string;
  access: Grant[];
  claims: JWTPayload;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
  access: Grant[];
}

/** Builds the `access` claim: for each requested scope, the requested actions this identity holds — never more. */
export async function grantsFor(rules: AccessRules, identity: Identity, requested: Grant[]): Promise<Grant[]> {
  const out: Grant[] = [];
  for (const scope of requested) {
    const actions = await allowedActions(rules, identity, scope);
    if (actions.length > 0) out.push({ type: scope.type, name: scope.name, actions });
  }
  return out;
}

async function allowedActions(rules: AccessRules, identity: Identity, scope: Grant): Promise<string[]> {
  if (scope.type === 'registry') {
    // The catalog is listed to every signed-in identity, filtered to what each may pull.
    return scope.name === 'catalog' && identity.kind !== 'anonymous' ? scope.actions.filter((a) => a === '*') : [];
  }
  if (scope.type !== 'repository') return [];
  try {
    validateRepositoryName(scope.name);
  } catch {
    return [];
  }
  const wantsPush = scope.actions.includes('push') || scope.actions.includes('*');
  const held = await rules.permissions(identity, scope.name, { forPush: wantsPush });
  return scope.actions.filter((action) => {
    if (action === '*') return held.has('pull') && held.has('push') && held.has('delete');
    return (action === 'pull' || action === 'push' || action === 'delete') && held.has(action);
  });
}

/** Issues and verifies Berth's own access tokens (Docker Registry token spec, ES256 JWTs). */
export class TokenIssuer {
  constructor(
    private readonly keys: KeyRing,
    private readonly options: { issuer: string; service: string; lifetimeMs: number },
  ) {}

  /** A registry token: `aud` = the service, `access` = the granted scopes (for /v2); `lifetimeMs` shortens it (never lengthens). */
  issue(identity: Identity, access: Grant[], lifetimeMs?: number): Promise<IssuedToken> {
    return this.sign(identity, access, this.options.service, lifetimeMs);
  }

  /** An API token: `aud` = apiAudience(service), no `access` (for /api/v1, acting as `identity`). */
  issueApi(identity: Identity): Promise<IssuedToken> {
    return this.sign(identity, [], apiAudience(this.options.service));
  }

  private async sign(identity: Identity, access: Grant[], audience: string, lifetimeMs = this.options.lifetimeMs): Promise<IssuedToken> {
    const key = await this.keys.signingKey();
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = Math.max(1, Math.floor(Math.min(lifetimeMs, this.options.lifetimeMs) / 1000));
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.options.issuer)
      .setSubject(identityName(identity))
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + expiresIn)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { token, expiresIn, issuedAt: new Date(now * 1000), access };
  }
}

/** Checks signature, algorithm, issuer, audience, exp and nbf; throws on any failure. */
export class TokenVerifier {
  constructor(
    private readonly key: JWTVerifyGetKey,
    private readonly options: { issuer: string; audience: string | string[]; external: boolean },
  ) {}

  async verify(token: string): Promise<VerifiedToken> {
    const { payload } = await jwtVerify(token, this.key, {
      issuer: this.options.issuer,
      audience: this.options.audience,
      algorithms: this.options.external ? EXTERNAL_ALGS : [SIGNING_ALG],
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp'],
    });
    return { subject: typeof payload.sub === 'string' ? payload.sub : '', access: accessClaim(payload.access), claims: payload };
  }
}
