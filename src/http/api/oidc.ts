import { z } from 'zod';
import { LOGIN_COOKIE, type OidcService } from '../../auth/oidc/service.js';
import { RegistryError } from '../../core/errors.js';
import type { ApiContext, ApiRoute } from './route.js';

const CliSecretInfo = z
  .strictObject({
    username: z.string(),
    exists: z.boolean(),
    createdAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
    expired: z.boolean(),
  })
  .meta({ id: 'CliSecretInfo' });
const LoginResult = z
  .strictObject({
    username: z.string(),
    admin: z.boolean(),
    provider: z.string(),
    email: z.string().nullable(),
    groups: z.array(z.string()),
    token: z.string().describe('an API token acting as the user, as GET /token?scope=api issues'),
    expires_in: z.number(),
    issued_at: z.string(),
    cliSecret: z.strictObject({ ...CliSecretInfo.shape, create: z.string().describe('where to create the CLI secret') }),
  })
  .meta({ id: 'OidcLoginResult' });
import { startSession } from './session.js';

const API_PREFIX = '/api/v1';
/** The login cookie is sent back only to the OIDC paths. */
const COOKIE_PATH = `${API_PREFIX}/oidc/`;

const NewCliSecret = z.lazy(() =>
  z
    .object({
      /** Lifetime, e.g. 30d (default auth.oidc.clisecretexpiration, at most auth.oidc.clisecretmaxexpiration). */
      expiresIn: z.string().optional(),
    })
    .strict()
    .default({}),
);

function oidc(ctx: ApiContext): OidcService {
  const service = ctx.features.oidc;
  if (!service) throw new RegistryError('NOT_FOUND', 'OIDC is not configured (auth.oidc.providers)');
  return service;
}

/** The value of cookie `name` in a Cookie header (name=value pairs separated by ';'). */
function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function setCookie(ctx: ApiContext, value: string, maxAgeS: number): void {
  ctx.reply.header('set-cookie', cookieLine(ctx, LOGIN_COOKIE, value, maxAgeS));
}

function cookieLine(ctx: ApiContext, name: string, value: string, maxAgeS: number): string {
  // Secure when clients reach Berth over https; SameSite=Lax: the provider's redirect back is a top-level GET.
  const secure = ctx.credentials.baseUrl.startsWith('https:') ? '; Secure' : '';
  return `${name}=${value}; Path=${COOKIE_PATH}; Max-Age=${maxAgeS}; HttpOnly; SameSite=Lax${secure}`;
}

/** Marks a browser login started by the web UI (GET …/login?ui=1). */
const UI_COOKIE = 'berth_oidc_ui';

/** The raw query string of the request (the authorization response, passed on untouched). */
function queryOf(ctx: ApiContext): URLSearchParams {
  const url = ctx.request.raw.url ?? '';
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

/**
 * OpenID Connect single sign-on (src/auth/oidc, docs/security.md#oidc): the browser login
 * (authorization code flow with PKCE, state and nonce) and each user's registry CLI secret.
 */
export const oidcRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/oidc/providers',
    summary: 'The configured OIDC providers and where their browser login starts',
    response: z.array(
      z.strictObject({
        name: z.string(),
        issuer: z.string(),
        login: z.string().nullable().describe('where the browser login starts; null: no clientid'),
        directTokens: z.boolean().describe('ID tokens of the provider are accepted directly'),
      }),
    ),
    handler: async (ctx) => oidc(ctx).list(`${ctx.credentials.baseUrl}${API_PREFIX}`),
  },
  {
    method: 'GET',
    path: '/oidc/:provider/login',
    summary:
      'Starts a browser login: redirects (302) to the provider with PKCE, state and nonce, kept in an HttpOnly login cookie; with ?ui=1 the callback ends in a web UI session and a redirect to /',
    status: 302,
    handler: async (ctx) => {
      const name = ctx.params.provider!;
      const start = await oidc(ctx).begin(name, `${ctx.credentials.baseUrl}${API_PREFIX}/oidc/${name}/callback`);
      setCookie(ctx, start.cookie.value, start.cookie.maxAgeS);
      // ?ui=1: the web UI's sign-in; the callback then ends in a session cookie and a redirect to /.
      if (ctx.query.ui === '1') ctx.reply.header('set-cookie', cookieLine(ctx, UI_COOKIE, '1', start.cookie.maxAgeS));
      ctx.reply.header('cache-control', 'no-store');
      return ctx.reply.redirect(start.location, 302);
    },
  },
  {
    method: 'GET',
    path: '/oidc/:provider/callback',
    summary:
      "The provider's redirect back: checks state, exchanges the code with the PKCE verifier, verifies the ID token (nonce, signature, issuer, audience, expiry), creates or updates the user and answers with a short-lived API token and the CLI secret's state",
    response: LoginResult.describe('without ?ui=1; with it the answer is a 302 to / with a session cookie'),
    handler: async (ctx) => {
      const result = await oidc(ctx).complete(
        ctx.params.provider!,
        queryOf(ctx),
        cookieValue(ctx.request.headers.cookie, LOGIN_COOKIE),
        ctx.credentials.ip,
      );
      setCookie(ctx, '', 0);
      ctx.reply.header('cache-control', 'no-store');
      if (cookieValue(ctx.request.headers.cookie, UI_COOKIE) === '1' && ctx.features.sessions) {
        ctx.reply.header('set-cookie', cookieLine(ctx, UI_COOKIE, '', 0));
        await startSession(ctx.features.sessions, ctx, { kind: 'user', name: result.username, admin: result.admin });
        return ctx.reply.redirect('/', 302);
      }
      return result;
    },
  },
  {
    method: 'GET',
    path: '/users/:username/cli-secret',
    summary: 'Whether the OIDC user has a registry CLI secret, and when it expires (never the secret)',
    response: CliSecretInfo,
    handler: async (ctx) => oidc(ctx).cliSecretInfo(ctx.identity, ctx.params.username!),
  },
  {
    method: 'POST',
    path: '/users/:username/cli-secret',
    summary: "Creates (or replaces) the caller's registry CLI secret, shown once: docker/podman login -u <user> -p <secret>",
    response: z.strictObject({
      username: z.string(),
      secret: z.string().describe('shown once'),
      createdAt: z.string(),
      expiresAt: z.string(),
    }),
    body: NewCliSecret,
    status: 201,
    handler: async (ctx) => {
      const body = ctx.body as z.infer<typeof NewCliSecret>;
      ctx.reply.header('cache-control', 'no-store');
      return oidc(ctx).createCliSecret(ctx.identity, ctx.params.username!, body.expiresIn, ctx.credentials.ip);
    },
  },
  {
    method: 'DELETE',
    path: '/users/:username/cli-secret',
    summary: 'Revokes the registry CLI secret at once',
    status: 204,
    handler: async (ctx) => oidc(ctx).revokeCliSecret(ctx.identity, ctx.params.username!, ctx.credentials.ip),
  },
];
