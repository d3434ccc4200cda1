import type { Identity } from './identity.js';
import type { RefreshTokens } from './refresh.js';
import type { AccessRules } from './rules.js';
import { parseScopes } from './scopes.js';
import { grantsFor, type TokenIssuer } from './tokens.js';

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
 * Berth's token server logic: an access token holding the requested scopes this identity is
 * allowed (never more), plus refresh tokens. The /token route only parses and renders.
 */
export class TokenService {
  constructor(
    private readonly rules: AccessRules,
    private readonly issuer: TokenIssuer,
    readonly refresh: RefreshTokens,
  ) {}

  /** An access token for `identity`; with `refreshFor` (a client id), a user also gets a refresh token. */
  async issue(identity: Identity, scopes: string[], refreshFor: string | null = null): Promise<TokenAnswer> {
    const refresh = refreshFor !== null && identity.kind === 'user' ? await this.refresh.issue(identity.name, refreshFor) : undefined;
    return this.answer(identity, scopes, refresh);
  }

  /** A new access token for the holder of a refresh token (which stays valid and is returned again). */
  async redeem(secret: string, clientId: string, scopes: string[]): Promise<TokenAnswer> {
    return this.answer(await this.refresh.redeem(secret, clientId), scopes, secret);
  }

  private async answer(identity: Identity, scopes: string[], refresh: string | undefined): Promise<TokenAnswer> {
    const access = await grantsFor(this.rules, identity, parseScopes(scopes));
    const issued = await this.issuer.issue(identity, access);
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
