/**
 * Authentication as registries ask for it: a request goes out anonymously (or with what
 * we already hold), and a 401 names the scheme in `WWW-Authenticate`:
 *
 * - `Basic realm=…`: send the configured username/password.
 * - `Bearer realm=…,service=…,scope=…`: the Docker token flow — GET the realm with
 *   `service` and one `scope` parameter per scope (Basic credentials if we have them),
 *   then repeat the request with `Authorization: Bearer <token>`. `error="insufficient_scope"`
 *   means our token lacks what this request needs; the challenge names the scope, so we
 *   fetch a token for it.
 *
 * Tokens are cached per (realm, service, scope set) until shortly before they expire,
 * so a pull of many blobs fetches one token. Credentials only ever go to the registry's
 * own origin and to the realm — never to a redirect target (see transport.ts).
 */
import { RegistryClientError } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate value: `Bearer realm="https://a/token",service="reg",scope="repository:x:pull"`.
 * Quoted values may hold commas (the scope list `pull,push`), so this is a small tokenizer,
 * not a split on ','. Only the first challenge is read: registries send one.
 */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(rest)) !== null && match[0] !== '') {
    params[match[1]!.toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

interface CachedToken {
  authorization: string;
  expiresAt: number;
}

/** Seconds a token lives when the realm does not say (the token spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;

export class Authenticator {
  private readonly tokens = new Map<string, CachedToken>();
  /** The last Bearer challenge seen (realm + service), to fetch tokens for new scopes up front. */
  private bearer: { realm: string; service?: string } | null = null;
  /** Set once the registry asked for Basic: then every request carries it from the start. */
  private basic = false;

  constructor(
    private readonly credentials: Credentials | undefined,
    private readonly fetchToken: (url: URL, headers: Record<string, string>) => Promise<Response>,
  ) {}

  /**
   * The Authorization header to send before any challenge for a request needing `scopes`:
   * a cached token for exactly these scopes, Basic if the registry wants Basic, else none.
   */
  preemptive(scopes: readonly string[]): string | undefined {
    if (this.basic && this.credentials) return basicAuthorization(this.credentials);
    if (!this.bearer) return undefined;
    return this.cached(this.key(this.bearer.realm, this.bearer.service, scopes))?.authorization;
  }

  /**
   * Answers a 401 challenge: the Authorization header to retry with, or undefined when
   * retrying cannot help (no credentials for Basic, unknown scheme, the realm refused).
   * `previous` is what the failed request carried: a Basic header that was just refused
   * is not sent again.
   */
  async respond(challenge: Challenge, scopes: readonly string[], previous: string | undefined): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      if (!this.credentials) return undefined;
      const header = basicAuthorization(this.credentials);
      if (previous === header) return undefined;
      this.basic = true;
      return header;
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined;
    const { realm, service } = challenge.params;
    this.bearer = { realm, service };
    // The challenge's scope is what the server checks; ours may add more (a mount also
    // needs pull on the source repository), so ask for the union.
    const wanted = unionScopes(scopes, challenge.params.scope ? challenge.params.scope.split(' ') : []);
    const key = this.key(realm, service, wanted);
    const cached = this.cached(key);
    if (cached && cached.authorization !== previous) return cached.authorization;
    // The cached token was refused (revoked, or lacks scope): drop it and fetch anew.
    this.tokens.delete(key);
    const token = await this.requestToken(realm, service, wanted);
    if (token.authorization === previous) return undefined;
    this.tokens.set(key, token);
    // Also file it under the request's own scopes, so the next request with the same
    // scopes sends it up front without a 401 round trip.
    this.tokens.set(this.key(realm, service, scopes), token);
    return token.authorization;
  }

  private async requestToken(realm: string, service: string | undefined, scopes: readonly string[]): Promise<CachedToken> {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credentials) headers.authorization = basicAuthorization(this.credentials);
    let res: Response;
    try {
      res = await this.fetchToken(url, headers);
    } catch (err) {
      throw RegistryClientError.local('GET', url, `token request failed: ${(err as Error).message}`, 'UNAUTHORIZED', err);
    }
    if (res.status !== 200) throw await RegistryClientError.fromResponse('GET', url, res);
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw RegistryClientError.local('GET', url, 'token response has neither token nor access_token', 'UNAUTHORIZED');
    const issuedAt = body.issued_at ? Date.parse(body.issued_at) : NaN;
    const start = Number.isNaN(issuedAt) ? Date.now() : Math.min(issuedAt, Date.now());
    const seconds = body.expires_in && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    // Renew 10% early (at least 5 s) so a token does not expire between send and check.
    const margin = Math.max(5_000, seconds * 100);
    return { authorization: `Bearer ${token}`, expiresAt: start + seconds * 1000 - margin };
  }

  private cached(key: string): CachedToken | undefined {
    const token = this.tokens.get(key);
    if (token && token.expiresAt > Date.now()) return token;
    if (token) this.tokens.delete(key);
    return undefined;
  }

  private key(realm: string, service: string | undefined, scopes: readonly string[]): string {
    return `${realm}\n${service ?? ''}\n${[...scopes].sort().join(' ')}`;
  }
}

/** Merges scope lists, combining the actions of equal resources (`repository:a:pull` + `repository:a:push`). */
export function unionScopes(...lists: (readonly string[])[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of lists.flat()) {
    const colon = scope.lastIndexOf(':');
    if (colon < 0) continue;
    const resource = scope.slice(0, colon);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const action of scope.slice(colon + 1).split(',')) if (action) actions.add(action);
    byResource.set(resource, actions);
  }
  return [...byResource].map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`);
}

/** The scope string for a repository operation. */
export function repositoryScope(repository: string, ...actions: string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}
