import { RegistryError } from '../../core/errors.js';
import type { AccessPolicy, Principal, RequestCredentials, Scope } from '../access.js';
import { checkScope, principalOf } from '../policies.js';
import type { AccessRules } from '../rules.js';
import type { CertificateAuthenticator } from './authenticator.js';

/**
 * The access policy with client certificates in front of the configured one (basic or token):
 * - a certificate that failed verification → 401 with the reason, whatever else is presented;
 * - an Authorization header → the configured policy decides (explicit credentials win);
 * - otherwise a verified certificate that names an identity (a SPIFFE ID, or a user with
 *   http.tls.clientcn: user) → that identity, checked against the permission table on every
 *   request: no password and no token round trip, also in auth.mode token;
 * - no certificate, or one that names nobody → the configured policy (anonymous, challenges).
 */
export class CertificateAccessPolicy implements AccessPolicy {
  constructor(
    private readonly inner: AccessPolicy,
    private readonly certificates: CertificateAuthenticator,
    private readonly rules: AccessRules,
  ) {}

  async authorize(credentials: RequestCredentials, scope: Scope): Promise<Principal> {
    const certificate = credentials.clientCertificate;
    if (!certificate || (certificate.state !== 'refused' && credentials.authorization !== undefined))
      return this.inner.authorize(credentials, scope);
    const identity = await this.certificates.identify(certificate, credentials.ip, 'v2');
    if (!identity) return this.inner.authorize(credentials, scope);
    // A certificate identity is never anonymous: checkScope answers 403 DENIED, not a challenge.
    await checkScope(this.rules, identity, scope, () => new RegistryError('UNAUTHORIZED', 'authentication required'));
    return principalOf(identity, credentials.ip);
  }

  canRead(principal: Principal, repository: string): Promise<boolean> {
    return this.inner.canRead(principal, repository);
  }

  readFilter(principal: Principal): (repository: string) => Promise<boolean> {
    return this.inner.readFilter(principal);
  }
}
