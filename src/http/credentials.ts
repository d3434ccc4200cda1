import type { FastifyRequest } from 'fastify';
import type { RequestCredentials } from '../auth/access.js';
import type { RequestOrigin } from '../auth/service.js';

/** How the base URL is found from a request's origin (AuthService.baseUrl: http.host, else the origin). */
export type BaseUrlOf = (origin: RequestOrigin) => string;

const ownOrigin: BaseUrlOf = (origin) => `${origin.protocol}://${origin.host}`;

/**
 * Reads what auth needs from a request (auth never sees Fastify's request). The address and
 * base URL are read only when a policy asks (a 401 challenge, an audit row): every /v2
 * request builds credentials, and with auth: none nobody reads them. A class, so the getters
 * live on its prototype (getters written per object cost ~50 MB of RSS under load).
 */
export function credentialsReader(baseUrl: BaseUrlOf = ownOrigin): (request: FastifyRequest) => RequestCredentials {
  return (request) => new LazyCredentials(request, baseUrl);
}

class LazyCredentials implements RequestCredentials {
  readonly authorization: string | undefined;

  constructor(
    private readonly request: FastifyRequest,
    private readonly baseUrlOf: BaseUrlOf,
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
}
