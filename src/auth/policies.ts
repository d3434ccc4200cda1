import { RegistryError } from '../core/errors.js';
import type { AccessPolicy, Principal, RequestCredentials, Scope } from './access.js';
import { ANONYMOUS, Authenticator, basicCredentials, bearerToken, identityName, isSystemAdmin, type Identity } from './identity.js';
import { ACTION_PERMISSION, projectOf, type Permission } from './permissions.js';
import type { AccessRules } from './rules.js';
import { grantedActions, scopeString } from './scopes.js';
import type { TokenVerifier, VerifiedToken } from './tokens.js';

/** The 401 challenge of Basic auth; the realm is "berth" unless auth.htpasswd.realm renames it (as in Distribution). */
export function basicChallenge(realm = 'berth'): Record<string, string> {
  return { 'www-authenticate': `Basic realm="${realm.replace(/["\\]/g, '')}"` };
}

export const BASIC_CHALLENGE = basicChallenge();

/**
 * How far apart the clocks of the replica that issued a token (`iat`, whole seconds) and the
 * one that created a project may be. A project created less than this before a token's `iat`
 * counts as created after it (its grants are checked again, which is only ever safer).
 */
const REPLICA_CLOCK_SKEW_MS = 1000;

/** The permissions a scope needs: one per wire action, plus any extra `requires`. */
export function neededPermissions(scope: Scope): Permission[] {
  if (scope.type !== 'repository') return [];
  const fromActions = scope.actions
    .flatMap((a) => (a === '*' ? (['pull', 'push', 'delete'] as const) : [a]))
    .map((a) => ACTION_PERMISSION[a]);
  return [...new Set([...fromActions, ...(scope.requires ?? [])])];
}

export function principalOf(identity: Identity, ip: string, grants?: VerifiedToken['access']): Principal {
  return { subject: identityName(identity) || 'anonymous', anonymous: identity.kind === 'anonymous', identity, grants, ip };
}

function denied(identity: Identity, scope: Scope, missing: string[]): RegistryError {
  const what =
    scope.type === 'repository' ? `repository ${scope.name}` : scope.type === 'registry' ? `registry ${scope.name}` : 'the registry';
  return new RegistryError('DENIED', `${identityName(identity)} may not ${missing.join(', ')} ${what}`, {
    type: scope.type,
    name: scope.type === 'base' ? '' : scope.name,
    actions: missing,
  });
}

/**
 * auth: basic — HTTP Basic credentials on every request (users or robots). Anonymous callers
 * may only pull from public projects; everything else answers 401 with a Basic challenge,
 * and a signed-in identity lacking permission gets 403 DENIED.
 */
export class BasicAccessPolicy implements AccessPolicy {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly rules: AccessRules,
    private readonly challenge: Record<string, string> = BASIC_CHALLENGE,
  ) {}

  async authorize(request: RequestCredentials, scope: Scope): Promise<Principal> {
    const credentials = basicCredentials(request.authorization);
    const identity = credentials
      ? await this.authenticator.login(credentials.username, credentials.password, request.ip, this.challenge)
      : ANONYMOUS;
    await checkScope(this.rules, identity, scope, () => new RegistryError('UNAUTHORIZED', 'authentication required', null, this.challenge));
    return principalOf(identity, request.ip);
  }

  async canRead(principal: Principal, repository: string): Promise<boolean> {
    return (await this.rules.permissions(principal.identity ?? ANONYMOUS, repository)).has('pull');
  }

  readFilter(principal: Principal): (repository: string) => Promise<boolean> {
    return this.rules.readChecker(principal.identity ?? ANONYMOUS);
  }
}

/** Throws unless `identity` holds every permission `scope` needs (`unauthenticated` builds the anonymous 401). */
export async function checkScope(
  rules: AccessRules,
  identity: Identity,
  scope: Scope,
  unauthenticated: () => RegistryError,
): Promise<void> {
  if (scope.type !== 'repository') {
    if (identity.kind === 'anonymous') throw unauthenticated();
    return;
  }
  const needed = neededPermissions(scope);
  const held = await rules.permissions(identity, scope.name, { forPush: needed.includes('push') });
  const missing = needed.filter((p) => !held.has(p));
  if (missing.length === 0) return;
  if (identity.kind === 'anonymous') throw unauthenticated();
  throw denied(identity, scope, missing);
}

/**
 * auth: token — the Docker Registry token authentication spec. Requests carry a Bearer JWT
 * from the token server (Berth's own /token, or an external issuer); without one, or with an
 * invalid one, the answer is 401 with a Bearer challenge naming the realm, service and the
 * scope the request needs. A valid token lacking the scope answers 401
 * error="insufficient_scope" so the client fetches a better token — except when the caller
 * (a known Berth user or robot) could never get one: then 403 DENIED says so directly.
 */
export class TokenAccessPolicy implements AccessPolicy {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly rules: AccessRules,
    /** Resolves a local token's subject to its current identity; null for an external issuer. */
    private readonly authenticator: Authenticator | null,
    private readonly challenge: { realm: (baseUrl: string) => string; service: string },
  ) {}

  async authorize(request: RequestCredentials, scope: Scope): Promise<Principal> {
    const token = bearerToken(request.authorization);
    if (!token) throw this.unauthorized(request, scope, 'authentication required');
    const verified = await this.verify(request, scope, token);
    const identity = await this.identityOf(request, scope, verified);
    if (scope.type === 'base') return principalOf(identity, request.ip, verified.access);

    const granted = grantedActions(verified.access, scope.type, scope.name);
    const missing = scope.actions.filter((a) => !granted.has(a) && !granted.has('*'));
    if (missing.length > 0) {
      if (this.authenticator && identity.kind !== 'anonymous' && scope.type === 'repository') {
        // Would a new token help? Only if this identity actually holds the permission.
        const held = await this.rules.permissions(identity, scope.name, { forPush: missing.includes('push') || missing.includes('*') });
        const hopeless = neededPermissions({ ...scope, actions: missing, requires: [] }).filter((p) => !held.has(p));
        if (hopeless.length > 0) throw this.forbidden(request, scope, denied(identity, scope, hopeless));
      }
      const message =
        identity.kind === 'anonymous'
          ? `anonymous may not ${missing.join(', ')} ${scope.type} ${scope.name}: log in first`
          : `token lacks ${missing.join(',')} access to ${scopeString(scope)}`;
      throw this.unauthorized(request, scope, message, 'insufficient_scope');
    }
    if (scope.type === 'repository' && scope.requires && this.authenticator) {
      // Extra Berth permissions (e.g. list-tags) are not in the token; check them here.
      await checkScope(this.rules, identity, { ...scope, actions: [] }, () => this.unauthorized(request, scope, 'authentication required'));
    }
    if (scope.type === 'repository' && this.authenticator && !isSystemAdmin(identity) && (await this.grantsStale(scope, verified))) {
      // The current permissions decide, not the token.
      const held = await this.rules.permissions(identity, scope.name, { forPush: scope.actions.includes('push') });
      const lost = neededPermissions({ ...scope, requires: [] }).filter((p) => !held.has(p));
      if (lost.length > 0)
        throw identity.kind === 'anonymous'
          ? this.unauthorized(request, scope, 'authentication required')
          : this.forbidden(request, scope, denied(identity, scope, lost));
    }
    return principalOf(identity, request.ip, verified.access);
  }

  /**
   * Whether a token's grants on this repository must be checked again instead of trusted for
   * the token's lifetime: always for deletes (a role removed since the token was issued ends
   * them at once), and when the repository's project was created after the token was issued
   * (give or take REPLICA_CLOCK_SKEW_MS) — the grants were then given for a project that did not exist
   * yet (a would-be creator's pull,push; someone else's push created it first) or for a
   * deleted predecessor of the same name.
   */
  private async grantsStale(scope: Extract<Scope, { type: 'repository' }>, verified: VerifiedToken): Promise<boolean> {
    if (scope.actions.some((a) => a === 'delete' || a === '*')) return true;
    const project = await this.rules.project(projectOf(scope.name));
    const issuedMs = typeof verified.claims.iat === 'number' ? verified.claims.iat * 1000 : 0;
    return project !== null && project.createdAt.getTime() >= issuedMs - REPLICA_CLOCK_SKEW_MS;
  }

  async canRead(principal: Principal, repository: string): Promise<boolean> {
    const identity = principal.identity ?? ANONYMOUS;
    if (identity.kind === 'external') {
      const granted = grantedActions(principal.grants ?? [], 'repository', repository);
      return granted.has('pull') || granted.has('*');
    }
    return (await this.rules.permissions(identity, repository)).has('pull');
  }

  readFilter(principal: Principal): (repository: string) => Promise<boolean> {
    const identity = principal.identity ?? ANONYMOUS;
    if (identity.kind === 'external') return (repository) => this.canRead(principal, repository);
    return this.rules.readChecker(identity);
  }

  private async verify(request: RequestCredentials, scope: Scope, token: string): Promise<VerifiedToken> {
    try {
      return await this.verifier.verify(token);
    } catch (err) {
      throw this.unauthorized(request, scope, `invalid token: ${(err as Error).message}`, 'invalid_token');
    }
  }

  private async identityOf(request: RequestCredentials, scope: Scope, token: VerifiedToken): Promise<Identity> {
    if (!this.authenticator) return token.subject ? { kind: 'external', name: token.subject } : ANONYMOUS;
    // A deleted user or revoked robot loses access at once, not when its tokens expire.
    const identity = await this.authenticator.current(token.subject);
    if (!identity) throw this.unauthorized(request, scope, 'the token subject no longer exists', 'invalid_token');
    return identity;
  }

  private unauthorized(request: RequestCredentials, scope: Scope, message: string, error?: string): RegistryError {
    const params = [`realm="${this.challenge.realm(request.baseUrl)}"`, `service="${this.challenge.service}"`];
    const wanted = scopeString(scope);
    if (wanted) params.push(`scope="${wanted}"`);
    // error_description carries the message to clients that read only the header (a HEAD has no body).
    if (error) params.push(`error="${error}"`, `error_description="${challengeText(message)}"`);
    const detail = scope.type === 'base' ? null : { type: scope.type, name: scope.name, actions: scope.actions };
    return new RegistryError('UNAUTHORIZED', message, detail, { 'www-authenticate': `Bearer ${params.join(',')}` });
  }

  /**
   * A 403 DENIED that also carries the challenge with error="insufficient_scope" and the
   * message as error_description (RFC 6750 §3.1 allows it on a 403). A HEAD answer has no body,
   * so the /v2 router sends such a refusal as 401 there: clients (containers/image, docker)
   * print the description of a 401 challenge, and only "403 Forbidden" for a bodiless 403.
   */
  private forbidden(request: RequestCredentials, scope: Scope, refusal: RegistryError): RegistryError {
    const { headers } = this.unauthorized(request, scope, refusal.message, 'insufficient_scope');
    return new RegistryError('DENIED', refusal.message, refusal.detail, headers);
  }
}

/** A message as an auth-param quoted-string (RFC 6750 §3: printable ASCII without '"' and '\\'). */
function challengeText(message: string): string {
  return message
    .replace(/["\\]/g, "'")
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 500);
}
