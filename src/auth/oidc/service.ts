import { jwtVerify, SignJWT } from 'jose';
import type { AuthConfig } from '../../config/auth.js';
import { durationMs } from '../../config/schema.js';
import { RegistryError } from '../../core/errors.js';
import type { Identity } from '../identity.js';
import { isSystemAdmin } from '../identity.js';
import { SIGNING_ALG } from '../keys.js';
import { generateSecret, sha256Hex } from '../secrets.js';
import type { AuthService } from '../service.js';
import { sourceOfAccount, type PasswordSource } from '../sources.js';
import type { OidcStore } from './ports.js';
import { OidcProvider, OidcRefusal, ProviderUnavailableError } from './provider.js';
import { bindSubject, CLI_SECRET_PREFIX, OidcPasswordSource } from './source.js';

/** The OIDC relying-party library, loaded at the first browser login: a registry without OIDC never loads it (idle memory). */
const openidClient = () => import('openid-client');

/** The cookie that carries a browser login from /login to /callback (signed by Berth's token keys). */
export const LOGIN_COOKIE = 'berth_oidc_login';

/** Where /login sends the browser, and the cookie binding the login to that browser. */
export interface LoginStart {
  location: string;
  cookie: { name: string; value: string; maxAgeS: number };
}

/** What a UI needs after a browser login: who, a short-lived API token, and the CLI secret's state. */
export interface LoginResult {
  username: string;
  admin: boolean;
  provider: string;
  email: string | null;
  groups: string[];
  /** An API token (for /api/v1, acting as the user), as GET /token?scope=api issues. */
  token: string;
  expires_in: number;
  issued_at: string;
  cliSecret: CliSecretInfo & { create: string };
}

export interface CliSecretInfo {
  username: string;
  exists: boolean;
  createdAt: string | null;
  expiresAt: string | null;
  expired: boolean;
}

const badRequest = (message: string) => new RegistryError('INVALID_ARGUMENT', message);
const DURATION = /^\d+(ms|s|m|h|d)$/;

/**
 * OpenID Connect single sign-on (docs/security.md#oidc). The configured providers; the
 * password sources the Authenticator asks (CLI secrets and direct tokens, source.ts); the
 * browser login (authorization code flow with PKCE S256, state and nonce — openid-client —,
 * the ID token verified again with the provider's JWKS, the user admitted through the identity
 * sources' seam so their row and group grants are made as for any external login); and the
 * users' registry CLI secrets.
 *
 * The login's state, nonce and PKCE verifier travel in a cookie signed with Berth's token keys
 * (shared by all replicas through the database), HttpOnly and SameSite=Lax, scoped to the
 * OIDC paths: any replica can finish a login, and a callback URL replayed into another browser
 * (login CSRF) fails because that browser has no matching cookie.
 */
export class OidcService {
  readonly providers: ReadonlyMap<string, OidcProvider>;
  private auth: AuthService | null = null;

  constructor(
    private readonly config: AuthConfig['oidc'],
    private readonly store: OidcStore,
  ) {
    this.providers = new Map(config.providers.map((p) => [p.name, new OidcProvider(p)]));
  }

  /** One password source per provider, for the Authenticator (src/compose.ts passwordSources). */
  sources(): PasswordSource[] {
    return [...this.providers.values()].map((p) => new OidcPasswordSource(p, this.store));
  }

  /** The auth layer built with those sources (the server calls this once it exists). */
  attach(auth: AuthService): void {
    this.auth = auth;
  }

  /** Discovery of every provider, at start, without waiting for it: a provider down at start is retried at first use. */
  warmUp(onError: (provider: string, err: unknown) => void): void {
    for (const provider of this.providers.values()) provider.metadata().catch((err: unknown) => onError(provider.name, err));
  }

  /** The providers and where their browser login starts (public: a login page lists them). */
  list(apiBase: string): { name: string; issuer: string; login: string | null; directTokens: boolean }[] {
    return [...this.providers.values()].map((p) => ({
      name: p.name,
      issuer: p.issuer,
      login: p.browserLogin ? `${apiBase}/oidc/${p.name}/login` : null,
      directTokens: p.config.audiences.length > 0,
    }));
  }

  private provider(name: string): OidcProvider {
    const provider = this.providers.get(name);
    if (!provider || !provider.browserLogin)
      throw new RegistryError('NOT_FOUND', `OIDC provider ${name} not found (or it has no clientid for browser logins)`);
    return provider;
  }

  private attached(): AuthService & { issuer: NonNullable<AuthService['issuer']> } {
    const auth = this.auth;
    if (!auth?.issuer) throw new Error('OIDC needs Berth issuing tokens (auth.mode token)');
    return auth as AuthService & { issuer: NonNullable<AuthService['issuer']> };
  }

  private loginAudience(): string {
    return `${this.attached().config.token.service}/oidc-login`;
  }

  /** Starts a browser login: the provider's authorization URL (PKCE S256, state, nonce) and the cookie holding them. */
  async begin(name: string, defaultRedirect: string): Promise<LoginStart> {
    const provider = this.provider(name);
    const configuration = await unavailableAs503(provider.metadata());
    const redirectUri = provider.config.redirecturl ?? defaultRedirect;
    const client = await openidClient();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const location = client.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: provider.config.scopes.join(' '),
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const maxAgeS = Math.max(1, Math.floor(durationMs(this.config.logintimeout) / 1000));
    const key = await this.attached().keys.signingKey();
    const value = await new SignJWT({ p: name, s: state, n: nonce, v: verifier, r: redirectUri })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid })
      .setAudience(this.loginAudience())
      .setIssuedAt()
      .setExpirationTime(`${maxAgeS}s`)
      .sign(key.privateKey);
    return { location: location.href, cookie: { name: LOGIN_COOKIE, value, maxAgeS } };
  }

  /**
   * Finishes a browser login at the callback: the cookie must be this browser's login of this
   * provider; the authorization response's state must match it; the code is exchanged with the
   * PKCE verifier; the ID token's nonce, signature (provider JWKS), issuer, audience (the client
   * id) and expiry are checked. The user is then admitted: created on first login (never a local
   * user of the same name, never a name bound to another subject), admin flag from the admin
   * group, grants from the bindings of their groups. Answers with a short-lived API token.
   */
  async complete(name: string, params: URLSearchParams, cookie: string | undefined, ip: string): Promise<LoginResult> {
    const provider = this.provider(name);
    const auth = this.attached();
    const login = await this.loginState(name, cookie);
    const error = params.get('error');
    if (error !== null) {
      throw new RegistryError(
        'UNAUTHORIZED',
        `the OIDC provider refused the login: ${error}${params.get('error_description') ? ` (${params.get('error_description')!.slice(0, 200)})` : ''}`,
      );
    }
    if (params.get('state') !== login.s) throw badRequest("the login state does not match this browser's login (start again at /login)");
    const configuration = await unavailableAs503(provider.metadata());
    const current = new URL(login.r);
    current.search = params.toString();
    const client = await openidClient();
    let idToken: string | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, current, {
        pkceCodeVerifier: login.v,
        expectedState: login.s,
        expectedNonce: login.n,
      });
      idToken = tokens.id_token;
    } catch (err) {
      if (err instanceof client.ResponseBodyError || err instanceof client.AuthorizationResponseError) {
        throw new RegistryError(
          'UNAUTHORIZED',
          `the OIDC provider refused the code exchange: ${err.error}${err.error_description ? ` (${err.error_description.slice(0, 200)})` : ''}`,
        );
      }
      if (isNetworkError(err)) throw new RegistryError('UNAVAILABLE', `OIDC provider ${name} is unreachable: ${(err as Error).message}`);
      // openid-client wraps oauth4webapi's error, whose message names the claim that failed (nonce, iss, aud…).
      const cause = (err as { cause?: unknown }).cause;
      const detail = cause instanceof Error ? cause.message : (err as Error).message;
      throw new RegistryError('UNAUTHORIZED', `the OIDC login could not be verified: ${detail}`);
    }
    if (!idToken) throw new RegistryError('UNAUTHORIZED', 'the OIDC provider returned no ID token (is "openid" among the scopes?)');
    let user;
    try {
      const claims = await provider.verify(idToken, [provider.config.clientid!]);
      if (claims.nonce !== login.n) throw new OidcRefusal('the ID token nonce does not match this login');
      user = provider.userOf(claims);
    } catch (err) {
      if (err instanceof ProviderUnavailableError) throw new RegistryError('UNAVAILABLE', err.message);
      throw new RegistryError('DENIED', (err as Error).message);
    }
    if (!(await bindSubject(this.store, provider, user))) {
      throw new RegistryError('CONFLICT', `the user name ${user.username} belongs to another identity of an OIDC provider`);
    }
    const admitted = await auth.external.admit(provider.source, user, ip);
    if (!admitted) {
      throw new RegistryError(
        'CONFLICT',
        `a user named ${user.username} exists in Berth and is not an OIDC user of ${name}: an OIDC login never takes it over (an administrator may rename or remove it)`,
      );
    }
    await auth.store
      .audit({ actor: user.username, action: 'login', target: user.username, ip, detail: { via: 'oidc', source: provider.source } })
      .catch(() => undefined);
    const identity: Identity = { kind: 'user', name: admitted.name, admin: admitted.admin, source: provider.source };
    const issued = await auth.issuer.issueApi(identity);
    return {
      username: admitted.name,
      admin: admitted.admin,
      provider: name,
      email: user.email ?? null,
      groups: user.groups,
      token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
      cliSecret: { ...(await this.cliSecretInfo(identity, admitted.name)), create: `POST /api/v1/users/${admitted.name}/cli-secret` },
    };
  }

  private async loginState(name: string, cookie: string | undefined): Promise<{ p: string; s: string; n: string; v: string; r: string }> {
    if (!cookie) throw badRequest('no OIDC login in progress in this browser (start at /login; the login cookie is needed)');
    let payload;
    try {
      ({ payload } = await jwtVerify(cookie, this.attached().keys.verificationKey, {
        audience: this.loginAudience(),
        algorithms: [SIGNING_ALG],
      }));
    } catch {
      throw badRequest('the OIDC login cookie is invalid or expired (start again at /login)');
    }
    const state = payload as Record<string, unknown>;
    if (state.p !== name || ![state.s, state.n, state.v, state.r].every((v) => typeof v === 'string')) {
      throw badRequest(`the login in progress in this browser is not one of provider ${name} (start again at /login)`);
    }
    return state as { p: string; s: string; n: string; v: string; r: string };
  }

  /** The CLI secret's state (never the secret): the user themself or an administrator. */
  async cliSecretInfo(identity: Identity, username: string): Promise<CliSecretInfo> {
    this.attached().directory.requireSelfOrAdmin(identity, username);
    await this.oidcUser(username);
    const record = await this.store.getCliSecret(username);
    return {
      username,
      exists: record !== null,
      createdAt: record?.createdAt.toISOString() ?? null,
      expiresAt: record?.expiresAt.toISOString() ?? null,
      expired: record !== null && record.expiresAt.getTime() <= Date.now(),
    };
  }

  /**
   * A new CLI secret for the caller (it replaces the previous one), shown once and stored as a
   * sha256. Only the user themself may create it (an administrator creating one for someone
   * would hold that user's credentials), and only an OIDC user (local users have a password).
   */
  async createCliSecret(
    identity: Identity,
    username: string,
    expiresIn: string | undefined,
    ip: string,
  ): Promise<{ username: string; secret: string; createdAt: string; expiresAt: string }> {
    if (identity.kind !== 'user' || identity.name !== username)
      throw new RegistryError('DENIED', 'only the user themself may create their CLI secret');
    const provider = await this.oidcUser(username);
    const maxMs = durationMs(this.config.clisecretmaxexpiration);
    let lifetimeMs = durationMs(this.config.clisecretexpiration);
    if (expiresIn !== undefined) {
      if (!DURATION.test(expiresIn)) throw badRequest('expiresIn must be a duration like 30d, 12h or 90m');
      lifetimeMs = durationMs(expiresIn);
      if (lifetimeMs <= 0 || lifetimeMs > maxMs)
        throw badRequest(`expiresIn must be positive and at most ${this.config.clisecretmaxexpiration} (auth.oidc.clisecretmaxexpiration)`);
    }
    const secret = `${CLI_SECRET_PREFIX}${generateSecret()}`;
    const createdAt = new Date();
    const expiresAt = new Date(createdAt.getTime() + Math.min(lifetimeMs, maxMs));
    await this.store.saveCliSecret({ username, hash: sha256Hex(secret), createdAt, expiresAt });
    // The previous secret stops working here at once, not when its cached login expires.
    this.attached().external.forget(provider.source, username);
    await this.attached().store.audit({
      actor: username,
      action: 'cli-secret.create',
      target: username,
      ip,
      detail: { source: provider.source, expiresAt: expiresAt.toISOString() },
    });
    return { username, secret, createdAt: createdAt.toISOString(), expiresAt: expiresAt.toISOString() };
  }

  /** Revokes the CLI secret at once (the user themself or an administrator); NOT_FOUND when there is none. */
  async revokeCliSecret(identity: Identity, username: string, ip: string): Promise<void> {
    this.attached().directory.requireSelfOrAdmin(identity, username);
    const provider = await this.oidcUser(username);
    if (!(await this.store.deleteCliSecret(username))) throw new RegistryError('NOT_FOUND', `user ${username} has no CLI secret`);
    this.attached().external.forget(provider.source, username);
    const actor = identity.kind === 'user' ? identity.name : 'anonymous';
    await this.attached().store.audit({
      actor,
      action: 'cli-secret.revoke',
      target: username,
      ip,
      detail: { admin: isSystemAdmin(identity) && actor !== username },
    });
  }

  /** The provider of an OIDC user of a configured provider; NOT_FOUND / CONFLICT otherwise. */
  private async oidcUser(username: string): Promise<OidcProvider> {
    const user = await this.attached().directory.user(username);
    const source = sourceOfAccount(user.passwordHash);
    const provider = [...this.providers.values()].find((p) => p.source === source);
    if (!provider)
      throw new RegistryError(
        'CONFLICT',
        `${username} is not a user of a configured OIDC provider: only OIDC users have a CLI secret (local users log in with their password)`,
      );
    return provider;
  }
}

async function unavailableAs503<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof ProviderUnavailableError) throw new RegistryError('UNAVAILABLE', err.message);
    throw err;
  }
}

function isNetworkError(err: unknown): boolean {
  return (
    err instanceof TypeError ||
    (err instanceof Error &&
      /ECONNREFUSED|ETIMEDOUT|fetch failed|aborted|timeout/i.test(`${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`))
  );
}
