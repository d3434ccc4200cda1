import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS, basicCredentials, identityName } from '../auth/identity.js';
import { BASIC_CHALLENGE } from '../auth/policies.js';
import type { AuthService } from '../auth/service.js';
import type { TokenAnswer, TokenService } from '../auth/token-service.js';
import { RegistryError } from '../core/errors.js';
import type { CertificateAuthenticator } from '../auth/mtls/index.js';
import { noteIdentity, requestCertificate, type PeerCertificateOf } from './credentials.js';

/** Client-certificate authentication at /token (http.tls.clientcas): each connection's certificate and who it names. */
export interface TokenCertificates {
  peer: PeerCertificateOf;
  authenticator: CertificateAuthenticator;
}

const FORM_LIMIT = 64 * 1024;

const badRequest = (message: string) => new RegistryError('INVALID_ARGUMENT', message);

/**
 * Berth's token server (Docker Registry token authentication):
 *   GET  /token?service=&scope=…[&offline_token=true&client_id=]  Basic credentials or anonymous
 *   POST /token  grant_type=password | refresh_token (OAuth2, form-encoded)
 *   GET  /token/jwks.json  the public keys tokens are signed with (for other services)
 * Each handler parses the request, makes one call to auth (authenticator, auth.tokens) and renders.
 */
export function registerTokenRoutes(app: FastifyInstance, auth: AuthService, certificates?: TokenCertificates): void {
  const tokens = auth.tokens!;
  app.register(async (scope) => {
    // Only this scope parses forms; the rest of the app streams bodies untouched.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) =>
      done(null, new URLSearchParams(body as string)),
    );
    scope.get('/token', async (request, reply) => render(reply, await getToken(auth, tokens, request, certificates)));
    scope.post('/token', async (request, reply) => render(reply, await postToken(auth, tokens, request, certificates)));
    scope.get('/token/jwks.json', async () => auth.keys.publicJwks());
  });
}

function render(reply: FastifyReply, answer: TokenAnswer): TokenAnswer {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  return answer;
}

function queryParams(request: FastifyRequest): URLSearchParams {
  const url = request.raw.url ?? '';
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

function checkService(auth: AuthService, service: string | null): void {
  if (service !== null && service !== auth.config.token.service)
    throw badRequest(`unknown service "${service.slice(0, 100)}"; this server is "${auth.config.token.service}"`);
}

async function getToken(
  auth: AuthService,
  tokens: TokenService,
  request: FastifyRequest,
  certificates: TokenCertificates | undefined,
): Promise<TokenAnswer> {
  const params = queryParams(request);
  checkService(auth, params.get('service'));
  const authorization = request.headers.authorization;
  // A client certificate: refused → 401 with its reason; otherwise it speaks unless Basic credentials do (as on /v2).
  const certificate = requestCertificate(request, certificates?.peer);
  if (certificates && certificate && (certificate.state === 'refused' || authorization === undefined)) {
    const identity = await certificates.authenticator.identify(certificate, request.ip, 'token');
    if (identity) {
      noteIdentity(request, identityName(identity));
      // No refresh token: it would outlive the certificate (and its revocation).
      return tokens.issue(identity, params.getAll('scope'), null);
    }
  }
  const credentials = basicCredentials(authorization);
  // A header that is there but unreadable is a client bug or a probe: never an anonymous token.
  if (!credentials && authorization !== undefined) {
    throw new RegistryError(
      'UNAUTHORIZED',
      'malformed Authorization header: the token endpoint takes Basic credentials (base64 of username:password)',
      null,
      BASIC_CHALLENGE,
    );
  }
  const identity = credentials
    ? await auth.authenticator.login(credentials.username, credentials.password, request.ip, BASIC_CHALLENGE, 'token')
    : ANONYMOUS;
  noteIdentity(request, identityName(identity));
  const wantsRefresh = params.get('offline_token') === 'true';
  return tokens.issue(identity, params.getAll('scope'), wantsRefresh ? params.get('client_id') : null);
}

async function postToken(
  auth: AuthService,
  tokens: TokenService,
  request: FastifyRequest,
  certificates: TokenCertificates | undefined,
): Promise<TokenAnswer> {
  const certificate = requestCertificate(request, certificates?.peer);
  // The form's credentials decide here, but a presented certificate that failed is refused (as on GET and /v2).
  if (certificates && certificate?.state === 'refused') await certificates.authenticator.identify(certificate, request.ip, 'token');
  if (!(request.body instanceof URLSearchParams)) throw badRequest('POST /token takes an application/x-www-form-urlencoded body');
  const form = request.body;
  checkService(auth, form.get('service'));
  const clientId = form.get('client_id') ?? 'unknown';
  const scopes = form.getAll('scope');
  switch (form.get('grant_type')) {
    case 'password': {
      const identity = await auth.authenticator.login(form.get('username') ?? '', form.get('password') ?? '', request.ip, {}, 'token');
      noteIdentity(request, identityName(identity));
      return tokens.issue(identity, scopes, form.get('access_type') === 'offline' ? clientId : null);
    }
    case 'refresh_token':
      return tokens.redeem(form.get('refresh_token') ?? '', clientId, scopes);
    default:
      throw badRequest('grant_type must be password or refresh_token');
  }
}
