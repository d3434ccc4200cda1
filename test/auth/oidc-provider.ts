import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';

/**
 * A real OpenID provider (the npm `oidc-provider` package, OpenID-certified) in the test
 * process, on a loopback port: discovery, JWKS, the authorization endpoint with its
 * development login and consent pages, the token endpoint (code + PKCE, client credentials
 * with JWT access tokens for a resource). The test owns its signing keys, so it can rotate
 * them (a new Provider on the same port, as a provider rolls keys) and sign tokens of its own
 * with them (expired, another audience or issuer) that only differ from real ones in the claim
 * under test.
 */

export interface TestAccount {
  /** The username claim (preferred_username) and account id. */
  username: string;
  email?: string;
  groups: string[];
}

export interface TestProvider {
  issuer: string;
  /** Accounts by id; change `groups` to simulate a group change at the provider. */
  accounts: Map<string, TestAccount>;
  clientId: string;
  clientSecret: string;
  /** A client allowed the client-credentials grant, whose access tokens are JWTs for `resource`. */
  ci: { clientId: string; clientSecret: string; resource: string };
  /** The kid tokens are signed with now. */
  currentKid(): string;
  /** Builds the provider again (after the redirect URIs became known). */
  reload(): void;
  /** Adds a new signing key (first: it signs from now on) and keeps the old ones published. */
  rotateKeys(): Promise<void>;
  /** Signs `claims` with the provider's current key (iss, iat and exp default to sane values). */
  sign(claims: JWTPayload, options?: { kid?: string }): Promise<string>;
  /** A client-credentials access token (a JWT for `ci.resource`), as a CI system's workload token. */
  clientCredentialsToken(): Promise<string>;
  /** Stops answering (connections refused) until `start` again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

interface KeyEntry {
  kid: string;
  privateKey: CryptoKey;
  privateJwk: JWK;
}

async function newKey(n: number): Promise<KeyEntry> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-key-${n}-${Date.now()}`;
  return { kid, privateKey: privateKey as CryptoKey, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } };
}

export async function startTestProvider(options: { redirectUris: () => string[]; accounts: TestAccount[] }): Promise<TestProvider> {
  const accounts = new Map(options.accounts.map((a) => [a.username, a]));
  const keys: KeyEntry[] = [await newKey(1)];
  const clientId = 'berth';
  const clientSecret = 'berth-client-secret-for-tests-0123456789';
  const ci = { clientId: 'ci-runner', clientSecret: 'ci-runner-secret-0123456789abcdef', resource: 'https://berth.test' };
  let port = 0;
  let issuer = '';
  let provider: Provider | null = null;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;

  const build = () => {
    const p = new Provider(issuer, {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: options.redirectUris(),
          response_types: ['code'],
          grant_types: ['authorization_code'],
        },
        {
          client_id: ci.clientId,
          client_secret: ci.clientSecret,
          redirect_uris: [],
          response_types: [],
          grant_types: ['client_credentials'],
        },
      ],
      jwks: { keys: keys.map((k) => k.privateJwk) },
      claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email', 'email_verified'], groups: ['groups'] },
      scopes: ['openid', 'profile', 'email', 'groups', 'offline_access', 'registry'],
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => ci.resource,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resource) => {
            if (resource !== ci.resource) throw new Error(`unknown resource ${resource}`);
            return { scope: 'registry', audience: ci.resource, accessTokenFormat: 'jwt', accessTokenTTL: 300 };
          },
        },
      },
      async findAccount(_ctx, id) {
        const account = accounts.get(id);
        if (!account) return undefined;
        return {
          accountId: id,
          claims: async () => ({
            sub: id,
            preferred_username: account.username,
            name: account.username,
            email: account.email ?? `${account.username}@example.test`,
            email_verified: true,
            groups: [...account.groups],
          }),
        };
      },
      // Group claims in the ID token itself (not only at userinfo), as Keycloak and Dex send them.
      conformIdTokenClaims: false,
      ttl: { IdToken: 300, AccessToken: 300, Interaction: 600, Session: 600, Grant: 600, AuthorizationCode: 60, ClientCredentials: 300 },
      cookies: { keys: ['test-cookie-key-0123456789'] },
    });
    // Silence the development-only warnings' stack noise in test output.
    p.on('server_error', () => undefined);
    return p;
  };

  let server: Server = createServer((req, res) => handler!(req, res));
  const listen = async () => {
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  await listen();
  issuer = `http://127.0.0.1:${port}`;
  const install = () => {
    provider = build();
    handler = provider.callback();
  };
  install();

  const closeServer = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    get issuer() {
      return issuer;
    },
    accounts,
    clientId,
    clientSecret,
    ci,
    currentKid: () => keys[0]!.kid,
    reload: () => install(),
    async rotateKeys() {
      keys.unshift(await newKey(keys.length + 1));
      install();
    },
    async sign(claims, signOptions = {}) {
      const key = keys.find((k) => k.kid === (signOptions.kid ?? keys[0]!.kid))!;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
        .sign(key.privateKey);
    },
    async clientCredentialsToken() {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${ci.clientId}:${ci.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'registry', resource: ci.resource }),
      });
      const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`client_credentials failed: ${response.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async stop() {
      await closeServer();
    },
    async start() {
      server = createServer((req, res) => handler!(req, res));
      await listen();
    },
    async close() {
      if (server.listening) await closeServer();
    },
  };
}

/**
 * A browser, as far as the code flow needs one: follows redirects by hand, keeping cookies per
 * host, and fills in oidc-provider's development login and consent forms (any password).
 */
export class TestBrowser {
  private readonly cookies = new Map<string, Map<string, string>>();

  /** Requests `url` and follows redirects (at most 20); returns the last answer (not a redirect, or a redirect to `stopAt`). */
  async follow(
    url: string,
    options: { stopAt?: (url: URL) => boolean; login?: string } = {},
  ): Promise<{ url: URL; status: number; body: string; headers: Headers }> {
    let current = new URL(url);
    let method = 'GET';
    let body: URLSearchParams | undefined;
    for (let hop = 0; hop < 20; hop++) {
      if (options.stopAt?.(current)) return { url: current, status: 0, body: '', headers: new Headers() };
      const response = await fetch(current, {
        method,
        redirect: 'manual',
        headers: { cookie: this.cookieHeader(current), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body,
      });
      this.keep(current, response.headers);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.arrayBuffer();
        current = new URL(location, current);
        method = 'GET';
        body = undefined;
        continue;
      }
      const text = await response.text();
      const interaction = /^\/interaction\/([^/]+)$/.exec(current.pathname);
      if (interaction && response.status === 200 && options.login !== undefined) {
        // The development interaction pages: a login form, then a consent form, both POSTed back.
        method = 'POST';
        body = text.includes('name="login"')
          ? new URLSearchParams({ prompt: 'login', login: options.login, password: 'any' })
          : new URLSearchParams({ prompt: 'consent' });
        continue;
      }
      return { url: current, status: response.status, body: text, headers: response.headers };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Cookies this browser holds for `url`'s host, as a Cookie header. */
  cookieHeader(url: URL): string {
    return [...(this.cookies.get(url.host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(url: URL, headers: Headers): void {
    const jar = this.cookies.get(url.host) ?? new Map<string, string>();
    for (const line of headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.cookies.set(url.host, jar);
  }
}
