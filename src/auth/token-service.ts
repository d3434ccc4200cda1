import { RegistryError } from '../core/errors.js';
import type { Identity } from './identity.js';
import { BASIC_CHALLENGE } from './policies.js';
import type { RefreshTokens } from './refresh.js';
import type { AccessRules } from './rules.js';
import { parseScopes } from './scopes.js';
import { API_SCOPE, grantsFor, type IssuedToken, type TokenIssuer } from './tokens.js';

/** What the token endpoint answers (Docker token spec + OAuth2 field names). */
export interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope: string;
}

/**
 * Whether a token request asks for an API token (scope `api`). Mixed with registry scopes it
 * is refused: one token is either for /v2 (its scopes) or for /api/v1 (its holder), never both.
 */
export function wantsApiToken(scopes: string[]): boolean {
  const items = scopes.flatMap((s) => s.split(' ')).filter(Boolean);
  if (!items.includes(API_SCOPE)) return false;
  if (items.some((i) => i !== API_SCOPE)) {
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `scope "${API_SCOPE}" (an API token for /api/v1) cannot be combined with registry scopes; request them in separate tokens`,
    );
  }
  return true;
}

/**
 * Berth's token server logic: an access token holding the requested scopes this identity is
 * allowed (never more), plus refresh tokens. The /token route only parses and renders.
 * Scope `api` asks for an API token instead: it acts as its holder on /api/v1 and is refused
 * on /v2 (and registry tokens are refused on /api/v1); anonymous callers get none.
 */
export class TokenService {
  constructor(
    private readonly rules: AccessRules,
    private readonly issuer: TokenIssuer,
    readonly refresh: RefreshTokens,
  ) {}

  /** An access token for `identity`; with `refreshFor` (a client id), a user also gets a refresh token. */
  async issue(identity: Identity, scopes: string[], refreshFor: string | null = null): Promise<TokenAnswer> {
    wantsApiToken(scopes); // a malformed request is refused before a refresh token is stored
    // Users of an identity source get none: their client logs in again with the password, so the source (and their groups) is asked again.
    const refresh =
      refreshFor !== null && identity.kind === 'user' && identity.source === undefined
        ? await this.refresh.issue(identity.name, refreshFor)
        : undefined;
    return this.answer(identity, scopes, refresh);
  }

  /** A new access token for the holder of a refresh token (which stays valid and is returned again). */
  async redeem(secret: string, clientId: string, scopes: string[]): Promise<TokenAnswer> {
    return this.answer(await this.refresh.redeem(secret, clientId), scopes, secret);
  }

  private async answer(identity: Identity, scopes: string[], refresh: string | undefined): Promise<TokenAnswer> {
    if (wantsApiToken(scopes)) {
      if (identity.kind === 'anonymous')
        throw new RegistryError('UNAUTHORIZED', 'an API token (scope api) needs credentials', null, BASIC_CHALLENGE);
      return { ...this.render(await this.issuer.issueApi(identity), refresh), scope: API_SCOPE };
    }
    const access = await grantsFor(this.rules, identity, parseScopes(scopes));
    return this.render(await this.issuer.issue(identity, access), refresh);
  }

  private render(issued: IssuedToken, refresh: string | undefined): TokenAnswer {
    const access = issued.access;
    return {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
      ...(refresh !== undefined ? { refresh_token: refresh } : {}),
      scope: access.map((g) => `${g.type}:${g.name}:${g.actions.join(',')}`).join(' '),
    };
  }
}
