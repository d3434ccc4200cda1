import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS, basicCredentials, type Identity } from '../auth/identity.js';
import { BASIC_CHALLENGE } from '../auth/policies.js';
import { parseScopes } from '../auth/scopes.js';
import { generateSecret, sha256Hex } from '../auth/secrets.js';
import type { AuthService } from '../auth/service.js';
import { grantsFor } from '../auth/tokens.js';
import { RegistryError } from '../core/errors.js';

const REFRESH_PREFIX = 'berth_rt_';
const FORM_LIMIT = 64 * 1024;

const invalidGrant = (message: string) => new RegistryError('UNAUTHORIZED', message);
const badRequest = (message: string) => new RegistryError('INVALID_ARGUMENT', message);

/**
 * Berth's token server (Docker Registry token authentication):
 *   GET  /token?service=&scope=…[&offline_token=true&client_id=]  Basic credentials or anonymous
 *   POST /token  grant_type=password | refresh_token (OAuth2, form-encoded)
 *   GET  /token/jwks.json  the public keys tokens are signed with (for other services)
 */
export function registerTokenRoutes(app: FastifyInstance, auth: AuthService): void {
  app.register(async (scope) => {
    // Only this scope parses forms; the rest of the app streams bodies untouched.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) =>
      done(null, new URLSearchParams(body as string)),
    );
    scope.get('/token', (request, reply) => getToken(auth, request, reply));
    scope.post('/token', (request, reply) => postToken(auth, request, reply));
    scope.get('/token/jwks.json', async () => auth.keys.publicJwks());
  });
}

function queryParams(request: FastifyRequest): URLSearchParams {
  const url = request.raw.url ?? '';
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

function checkService(auth: AuthService, service: string | null): void {
  if (service !== null && service !== auth.config.token.service) throw badRequest(`unknown service "${service.slice(0, 100)}"; this server is "${auth.config.token.service}"`);
}

async function getToken(auth: AuthService, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const params = queryParams(request);
  checkService(auth, params.get('service'));
  const credentials = basicCredentials(request);
  const identity = credentials ? await auth.authenticator.login(credentials.username, credentials.password, request.ip, BASIC_CHALLENGE) : ANONYMOUS;
  const wantsRefresh = params.get('offline_token') === 'true';
  return answer(auth, reply, identity, params.getAll('scope'), wantsRefresh ? params.get('client_id') : null);
}

async function postToken(auth: AuthService, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  if (!(request.body instanceof URLSearchParams)) throw badRequest('POST /token takes an application/x-www-form-urlencoded body');
  const form = request.body;
  checkService(auth, form.get('service'));
  const clientId = form.get('client_id') ?? 'unknown';
  const scopes = form.getAll('scope');
  switch (form.get('grant_type')) {
    case 'password': {
      const identity = await auth.authenticator.login(form.get('username') ?? '', form.get('password') ?? '', request.ip, {});
      return answer(auth, reply, identity, scopes, form.get('access_type') === 'offline' ? clientId : null);
    }
    case 'refresh_token':
      return answerRefresh(auth, reply, form.get('refresh_token') ?? '', clientId, scopes);
    default:
      throw badRequest('grant_type must be password or refresh_token');
  }
}

/** Issues an access token (and, for a user asking for one, a refresh token) as JSON. */
async function answer(auth: AuthService, reply: FastifyReply, identity: Identity, scopes: string[], refreshFor: string | null, refreshToken?: string) {
  const access = await grantsFor(auth.rules, identity, parseScopes(scopes));
  const issued = await auth.issuer!.issue(identity, access);
  let refresh = refreshToken;
  if (refreshFor !== null && refresh === undefined && identity.kind === 'user') refresh = await newRefreshToken(auth, identity.name, refreshFor);
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  return {
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresIn,
    issued_at: issued.issuedAt.toISOString(),
    ...(refresh !== undefined ? { refresh_token: refresh } : {}),
    scope: access.map((g) => `${g.type}:${g.name}:${g.actions.join(',')}`).join(' '),
  };
}

/**
 * Refresh tokens are opaque random secrets stored as a sha256 (they have 256 bits of entropy,
 * so a slow hash adds nothing): unlike a signed JWT they can be revoked — a password change or
 * user deletion drops them — and they carry no claims a client could misread.
 */
async function newRefreshToken(auth: AuthService, username: string, clientId: string): Promise<string> {
  const secret = `${REFRESH_PREFIX}${generateSecret()}`;
  const now = new Date();
  await auth.store.saveRefreshToken({ hash: sha256Hex(secret), username, clientId, createdAt: now, expiresAt: new Date(now.getTime() + auth.refreshLifetimeMs) });
  return secret;
}

async function answerRefresh(auth: AuthService, reply: FastifyReply, secret: string, clientId: string, scopes: string[]) {
  const record = secret.startsWith(REFRESH_PREFIX) ? await auth.store.getRefreshToken(sha256Hex(secret)) : null;
  if (!record || record.expiresAt.getTime() <= Date.now() || record.clientId !== clientId) throw invalidGrant('invalid or expired refresh token');
  const identity = await auth.authenticator.current(record.username);
  if (!identity) throw invalidGrant('invalid or expired refresh token');
  return answer(auth, reply, identity, scopes, null, secret);
}
