import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import { RegistryError } from '../core/errors.js';
import type { MetadataStore } from '../core/ports.js';
import { OpenAccessPolicy, type AccessPolicy, type RequestCredentials } from './access.js';
import { Accounts } from './accounts.js';
import { IdentityBindings } from './bindings.js';
import { usesExternalIssuer, type AuthConfig } from '../config/auth.js';
import { HTPASSWD_MARKER, HtpasswdUsers, HtpasswdWatcher, registerHtpasswdUsers, type ParsedHtpasswd } from './htpasswd.js';
import { ANONYMOUS, Authenticator, basicCredentials, bearerToken, isBasicScheme, isSystemAdmin, type Identity } from './identity.js';
import { Directory } from './directory.js';
import { KeyRing, externalKeyResolver } from './keys.js';
import type { ApiAccess } from './permissions.js';
import { BasicAccessPolicy, TokenAccessPolicy, basicChallenge } from './policies.js';
import type { AuthStore } from './ports.js';
import { LoginRateLimiter } from './rate-limit.js';
import { RefreshTokens } from './refresh.js';
import { AccessRules } from './rules.js';
import { generateSecret } from './secrets.js';
import { ExternalIdentities, type PasswordSource } from './sources.js';
import { TokenService } from './token-service.js';
import { API_SCOPE, CLOCK_TOLERANCE_S, TokenIssuer, TokenVerifier, apiAudience } from './tokens.js';

/** Where a request came in, as the HTTP layer saw it (proxy-aware when http.trustproxy). */
export interface RequestOrigin {
  protocol: string;
  host: string;
}

/** With auth: none there are no accounts: every admin-API caller acts as an administrator. */
const OPEN_ADMIN: Identity = { kind: 'user', name: 'anonymous', admin: true };

/**
 * Everything identity-related, wired from the `auth` config block over one metadata DB:
 * the AccessPolicy the /v2 router calls, the token issuer behind /token, and the account
 * operations behind /api/v1 and `berth user …`.
 */
export class AuthService {
  readonly store: AuthStore;
  readonly rules: AccessRules;
  readonly accounts: Accounts;
  /** Read side of accounts, projects, robots and the audit log (admin API, CLI). */
  readonly directory: Directory;
  readonly authenticator: Authenticator;
  readonly keys: KeyRing;
  readonly policy: AccessPolicy;
  /** Berth's own token server; null in auth: none/basic and with an external issuer. */
  readonly issuer: TokenIssuer | null;
  /** The token server's logic (access and refresh tokens); null when Berth issues no tokens. */
  readonly tokens: TokenService | null;
  readonly verifier: TokenVerifier | null;
  /** Verifies Berth's own tokens for /api/v1: accepts both audiences so a registry token can be told apart (and refused). */
  private readonly apiVerifier: TokenVerifier | null;
  readonly tokenLifetimeMs: number;
  readonly refreshLifetimeMs: number;
  /** Identity bindings: external subjects → project roles (admin API, CLI; src/auth/bindings.ts). */
  readonly bindings: IdentityBindings;
  /** External identity sources (LDAP, OIDC) the Authenticator asks (src/auth/sources.ts). */
  readonly external: ExternalIdentities;
  /** Users of auth.htpasswd (null when not configured); kept current by `init`'s file watcher. */
  readonly htpasswd: HtpasswdUsers | null;
  private htpasswdWatcher: HtpasswdWatcher | null = null;

  constructor(
    readonly config: AuthConfig,
    store: AuthStore,
    /** The registry's metadata (to tell whether a project still has repositories). */
    metadata: MetadataStore,
    /** Base URL clients reach this server at (http.host, else the request's origin), for the token realm. */
    readonly baseUrl: (origin: RequestOrigin) => string,
    /** Identity sources built by the composition root (src/compose.ts passwordSources), asked in this order. */
    sources: readonly PasswordSource[] = [],
  ) {
    this.store = store;
    this.bindings = new IdentityBindings(this.store);
    this.external = new ExternalIdentities(this.store, this.bindings, config.mode === 'none' ? [] : sources);
    this.rules = new AccessRules(this.store, config);
    this.accounts = new Accounts(this.store, (project) => projectHasRepositories(metadata, project));
    this.htpasswd = config.htpasswd && config.mode !== 'none' ? new HtpasswdUsers() : null;
    this.authenticator = new Authenticator(
      this.store,
      new LoginRateLimiter({
        failures: config.ratelimit.failures,
        perIp: config.ratelimit.perip,
        windowMs: durationMs(config.ratelimit.window),
        backoffMs: durationMs(config.ratelimit.backoff),
      }),
      this.htpasswd,
      this.external,
    );
    this.tokenLifetimeMs = durationMs(config.token.expiration);
    this.refreshLifetimeMs = durationMs(config.token.refreshexpiration);
    this.keys = new KeyRing(this.store, this.tokenLifetimeMs + CLOCK_TOLERANCE_S * 1000);
    const external = usesExternalIssuer(config);
    const audience = config.token.audience ?? config.token.service;
    this.issuer =
      config.mode === 'token' && !external
        ? new TokenIssuer(this.keys, { issuer: config.token.issuer, service: config.token.service, lifetimeMs: this.tokenLifetimeMs })
        : null;
    this.verifier =
      config.mode !== 'token'
        ? null
        : new TokenVerifier(external ? externalKeyResolver(config.token) : this.keys.verificationKey, {
            issuer: config.token.issuer,
            audience,
            external,
          });
    this.apiVerifier = this.issuer
      ? new TokenVerifier(this.keys.verificationKey, {
          issuer: config.token.issuer,
          audience: [apiAudience(config.token.service), config.token.service],
          external: false,
        })
      : null;
    this.directory = new Directory(this.store, this.rules);
    this.tokens = this.issuer
      ? new TokenService(this.rules, this.issuer, new RefreshTokens(this.store, this.authenticator, this.refreshLifetimeMs))
      : null;
    this.policy = this.buildPolicy(external);
  }

  get mode(): AuthConfig['mode'] {
    return this.config.mode;
  }

  private buildPolicy(external: boolean): AccessPolicy {
    switch (this.config.mode) {
      case 'none':
        return new OpenAccessPolicy();
      case 'basic':
        return new BasicAccessPolicy(this.authenticator, this.rules, basicChallenge(this.config.htpasswd?.realm));
      case 'token':
        return new TokenAccessPolicy(this.verifier!, this.rules, external ? null : this.authenticator, {
          realm: (baseUrl) => this.realm(baseUrl),
          service: this.config.token.service,
        });
    }
  }

  /** The token realm clients are sent to. */
  realm(baseUrl: string): string {
    return this.config.token.realm ?? `${baseUrl}/token`;
  }

  /**
   * The admin API's gate: Basic credentials or a Bearer token from this server (or the
   * external issuer) → the caller's identity, checked against the route's `access` from the
   * permission table (API_OPERATIONS). Anonymous callers pass only for public routes;
   * `admin` routes need a system administrator. Finer checks (project roles, self-service)
   * are the Directory's.
   */
  async authorizeApi(credentials: RequestCredentials, access: ApiAccess): Promise<Identity> {
    const identity = await this.apiIdentity(credentials, access);
    if (access === 'admin' && !isSystemAdmin(identity)) throw new RegistryError('DENIED', 'this operation needs a system administrator');
    return identity;
  }

  private async apiIdentity(credentials: RequestCredentials, access: ApiAccess): Promise<Identity> {
    if (this.mode === 'none') return OPEN_ADMIN;
    const challenge = (error?: string): Record<string, string> =>
      this.mode === 'basic'
        ? basicChallenge(this.config.htpasswd?.realm)
        : {
            'www-authenticate': `Bearer realm="${this.realm(credentials.baseUrl)}",service="${this.config.token.service}",scope="${API_SCOPE}"${error ? `,error="${error}"` : ''}`,
          };
    const basic = basicCredentials(credentials.authorization);
    if (basic) return this.authenticator.login(basic.username, basic.password, credentials.ip, challenge(), 'api');
    if (isBasicScheme(credentials.authorization))
      throw new RegistryError('UNAUTHORIZED', 'malformed Basic credentials (expected base64 of username:password)', null, challenge());
    const token = bearerToken(credentials.authorization);
    if (token && this.verifier) return this.identityFromApiToken(token, challenge('invalid_token'));
    if (access === 'public') return ANONYMOUS;
    throw new RegistryError('UNAUTHORIZED', 'authentication required', null, challenge());
  }

  /**
   * The admin API takes API tokens only (GET /token?service=…&scope=api): a registry token
   * grants its scopes on /v2 and nothing more, so a pull token handed to a CI job cannot
   * manage its owner's projects. Tokens of an external issuer are registry tokens.
   */
  private async identityFromApiToken(token: string, challenge: Record<string, string>): Promise<Identity> {
    const refuse = (message: string) => new RegistryError('UNAUTHORIZED', message, null, challenge);
    if (!this.apiVerifier) throw refuse('the admin API does not accept tokens of the external issuer; use Basic credentials');
    let verified;
    try {
      verified = await this.apiVerifier.verify(token);
    } catch {
      throw refuse('invalid token');
    }
    const audiences = [verified.claims.aud ?? []].flat();
    if (!audiences.includes(apiAudience(this.config.token.service))) {
      throw refuse(
        `a registry token (for /v2, limited to its scopes) is not accepted on /api/v1; use Basic credentials or an API token: GET /token?service=${this.config.token.service}&scope=${API_SCOPE}`,
      );
    }
    const identity = await this.authenticator.current(verified.subject);
    if (!identity || identity.kind === 'anonymous') throw refuse('the token subject no longer exists');
    return identity;
  }

  /**
   * A user changing their own password must give the current one (admins need not). Wrong
   * guesses count as failed logins of that account from that address: throttled (429 with
   * backoff) and audited like any other.
   */
  async requireCurrentPassword(identity: Identity, username: string, current: string | undefined, ip: string): Promise<void> {
    if (isSystemAdmin(identity)) return;
    if (current === undefined || !(await this.authenticator.confirmPassword(username, current, ip))) {
      throw new RegistryError('DENIED', 'currentPassword is missing or wrong');
    }
  }

  /**
   * Server start: creates signing keys; loads auth.htpasswd (an unreadable or malformed file
   * is a startup error) and watches it; when the user table is empty and auth is on, creates
   * the initial admin.
   */
  async init(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
    this.authenticator.auditFailed = (entry, err) =>
      logger.error({ err, audit: entry }, 'could not write a login audit entry; it is logged here instead');
    if (this.issuer) await this.keys.init();
    if (this.config.mode === 'none') return;
    // The file is read before the initial admin is created: its `admin` user may be that admin.
    const htpasswd = this.htpasswd && this.config.htpasswd ? new HtpasswdWatcher(this.config.htpasswd.path, this.htpasswd, logger) : null;
    const loaded = await htpasswd?.load();
    if ((await this.store.countUsers()) === 0) await this.createInitialAdmin(logger, env);
    if (htpasswd && loaded) {
      const register = (parsed: ParsedHtpasswd) => registerHtpasswdUsers(this.store, parsed, logger);
      await register(loaded);
      htpasswd.watch(register);
      this.htpasswdWatcher = htpasswd;
    }
  }

  /** Stops watching the htpasswd file and closes the identity sources' connections. */
  close(): void {
    this.htpasswdWatcher?.close();
    this.htpasswdWatcher = null;
    void this.external.close().catch(() => undefined);
  }

  private async createInitialAdmin(logger: Logger, env: NodeJS.ProcessEnv): Promise<void> {
    const username = this.config.admin.username;
    const given = this.config.admin.password ?? env.BERTH_ADMIN_PASSWORD;
    if (given === undefined && this.htpasswd?.has(username)) {
      // Coming from Distribution: the admin keeps the password the htpasswd file gives them.
      await this.store.createUser(
        { username, passwordHash: HTPASSWD_MARKER, admin: true },
        { name: 'system', ip: null, audit: { detail: { admin: true, source: 'htpasswd' } } },
      );
      logger.info({ username }, 'the initial admin is the htpasswd user of that name (password from the htpasswd file)');
      return;
    }
    const password = given ?? generateSecret(18);
    try {
      await this.accounts.addUser({ name: 'system', ip: null }, username, password, true);
    } catch (err) {
      // Replicas starting together all see an empty user table; the first insert wins and the others carry on.
      if (!(await this.store.getUser(username))) throw err;
      logger.info({ username }, 'the initial admin was created by another replica starting at the same time');
      return;
    }
    if (given === undefined) {
      // Shown once, on stderr only: the JSON log goes to collectors and must never carry a secret;
      // only the bcrypt hash is kept.
      logger.warn(
        { username },
        'created the initial admin with a generated password, printed once on stderr; change it with `npx berth user passwd`',
      );
      process.stderr.write(`\nberth: initial admin user "${username}" created with password: ${password}\n\n`);
    } else {
      logger.info({ username }, 'created the initial admin user');
    }
  }
}

/** Builds the function that tells the public base URL (http.host, else the request's, proxy-aware). */
export function baseUrlResolver(config: BerthConfig): (origin: RequestOrigin) => string {
  const fixed = config.http.host?.replace(/\/+$/, '');
  return (origin) => fixed ?? originUrl(origin);
}

/** A hostname (underscores allowed, as in container names), IPv4 address or [IPv6] literal, with an optional port: nothing that could break out of a quoted header parameter. */
const HOST =
  /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * `<protocol>://<host>` of a request, for the token realm in a challenge when http.host is not
 * set. The Host (or X-Forwarded-Host) header is the client's to choose: anything but a plain
 * host[:port] — quotes, commas, spaces, paths — is refused with 400 rather than copied into
 * WWW-Authenticate.
 */
export function originUrl(origin: RequestOrigin): string {
  const protocol = origin.protocol === 'https' ? 'https' : 'http';
  if (!HOST.test(origin.host)) throw new RegistryError('INVALID_ARGUMENT', 'invalid Host header: expected host[:port] (or set http.host)');
  return `${protocol}://${origin.host}`;
}

/** Whether `project` or any `project/…` repository exists (names sort bytewise; '/' sorts below [a-z0-9]). */
export async function projectHasRepositories(metadata: MetadataStore, project: string): Promise<boolean> {
  if (await metadata.repositories.exists(project)) return true;
  const next = await metadata.repositories.list({ limit: 1, after: `${project}/` });
  return next.items[0]?.startsWith(`${project}/`) ?? false;
}
