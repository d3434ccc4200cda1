import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { AccessPolicy, Principal, RequestCredentials, Scope } from '../auth/access.js';
import { basicCredentials, bearerToken } from '../auth/identity.js';
import type { ClientCertificate } from '../auth/mtls/index.js';
import { originUrl, type RequestOrigin } from '../auth/service.js';

/** How the base URL is found from a request's origin (AuthService.baseUrl: http.host, else the origin). */
export type BaseUrlOf = (origin: RequestOrigin) => string;

const ownOrigin: BaseUrlOf = originUrl;

/** Who each request acted as, once auth said so (for the request log and the audit of refusals). */
const identities = new WeakMap<FastifyRequest, string>();

/** Records that `request` acts as `name` (a user, robot or external subject). */
export function noteIdentity(request: FastifyRequest, name: string): void {
  if (name !== '' && name !== 'anonymous') identities.set(request, name);
}

/** The identity noted for `request`, if any. */
export function notedIdentity(request: FastifyRequest): string | undefined {
  return identities.get(request);
}

/**
 * The name a request's credentials claim: the Basic username, or the Bearer token's subject
 * (decoded, not verified). Only meaningful once auth has accepted those credentials — e.g. for
 * a 403, which auth answers only to an authenticated caller.
 */
export function claimedIdentity(authorization: string | undefined): string | undefined {
  const basic = basicCredentials(authorization);
  if (basic) return basic.username;
  const token = bearerToken(authorization);
  if (!token) return undefined;
  try {
    const sub = decodeJwt(token).sub;
    return typeof sub === 'string' && sub !== '' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads what auth needs from a request (auth never sees Fastify's request). The address and
 * base URL are read only when a policy asks (a 401 challenge, an audit row): every /v2
 * request builds credentials, and with auth: none nobody reads them. A class, so the getters
 * live on its prototype (getters written per object cost ~50 MB of RSS under load).
 */
export function credentialsReader(
  baseUrl: BaseUrlOf = ownOrigin,
  peer?: PeerCertificateOf,
): (request: FastifyRequest) => RequestCredentials {
  return (request) => new LazyCredentials(request, baseUrl, peer);
}

/** The client certificate of a TLS connection (src/auth/mtls: verified at the handshake), null for none. */
export type PeerCertificateOf = (socket: TLSSocket) => ClientCertificate | null;

/** The client certificate `request` came with, or null (none, or client certificates are off). */
export function requestCertificate(request: FastifyRequest, peer: PeerCertificateOf | undefined): ClientCertificate | null {
  return peer ? peer(request.raw.socket as TLSSocket) : null;
}

class LazyCredentials implements RequestCredentials {
  readonly authorization: string | undefined;

  constructor(
    readonly request: FastifyRequest,
    private readonly baseUrlOf: BaseUrlOf,
    private readonly peer: PeerCertificateOf | undefined,
  ) {
    const authorization = request.headers.authorization;
    this.authorization = typeof authorization === 'string' ? authorization : undefined;
  }

  get ip(): string {
    return this.request.ip;
  }

  get baseUrl(): string {
    return this.baseUrlOf({ protocol: this.request.protocol, host: this.request.host });
  }

  get clientCertificate(): ClientCertificate | null {
    return requestCertificate(this.request, this.peer);
  }
}

/**
 * The access policy the /v2 router is given: `policy`, and the principal it accepts is noted
 * on the request (the request log names who acted). One wrapper here instead of a line in
 * every policy. A plain class (not a Proxy): authorize runs on every /v2 request.
 */
export function identityNotingPolicy(policy: AccessPolicy): AccessPolicy {
  return new IdentityNotingPolicy(policy);
}

class IdentityNotingPolicy implements AccessPolicy {
  constructor(private readonly policy: AccessPolicy) {}

  async authorize(credentials: RequestCredentials, scope: Scope): Promise<Principal> {
    const principal = await this.policy.authorize(credentials, scope);
    if (!principal.anonymous && credentials instanceof LazyCredentials) noteIdentity(credentials.request, principal.subject);
    return principal;
  }

  canRead(principal: Principal, repository: string): Promise<boolean> {
    return this.policy.canRead(principal, repository);
  }

  readFilter(principal: Principal): (repository: string) => Promise<boolean> {
    return this.policy.readFilter(principal);
  }
}
