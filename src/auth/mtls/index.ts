import type { Logger } from 'pino';
import type { AccessPolicy } from '../access.js';
import type { AuthService } from '../service.js';
import { CertificateAuthenticator } from './authenticator.js';
import { ClientCertificateListener, type ClientCertificateConfig } from './listener.js';
import { CertificateAccessPolicy } from './policy.js';

export { CertificateAuthenticator, type CertificateSource, type SpiffeRoles } from './authenticator.js';
export { ClientCertificateListener, type ClientCertificate, type ClientCertificateConfig } from './listener.js';
export { CertificateAccessPolicy } from './policy.js';

/** Client-certificate authentication as the server wires it (src/server.ts). */
export interface ClientCertificateAuth {
  listener: ClientCertificateListener;
  authenticator: CertificateAuthenticator;
  /** The /v2 access policy: certificates in front of auth's own. */
  policy: AccessPolicy;
}

/**
 * Builds client-certificate authentication over the auth layer, or null when http.tls has no
 * clientcas — or auth.mode is none, where there is no identity to establish (logged).
 * Tokens /token issues to a SPIFFE ID resolve to the workload again on /v2.
 */
export function openClientCertificateAuth(
  config: ClientCertificateConfig | undefined,
  auth: AuthService,
  logger: Logger,
): ClientCertificateAuth | null {
  if (!config?.clientcas) return null;
  if (auth.mode === 'none') {
    logger.warn(
      'http.tls.clientcas is set but auth.mode is none: client certificates are asked for and not used (everyone may do everything)',
    );
    return null;
  }
  // SPIFFE IDs get their project roles from the identity bindings of source 'spiffe' (exact ID, or a prefix on a path boundary).
  const roles = (id: string) => auth.bindings.rolesFor('spiffe', [], id);
  const authenticator = new CertificateAuthenticator(auth.store, roles, {
    clientcn: config.clientcn,
    trustDomains: config.spiffe?.trustdomains ?? [],
  });
  authenticator.auditFailed = (entry, err) =>
    logger.error({ err, audit: entry }, 'could not write a certificate login audit entry; it is logged here instead');
  auth.authenticator.workloads = (subject) => authenticator.current(subject);
  return {
    listener: new ClientCertificateListener(config, logger),
    authenticator,
    policy: new CertificateAccessPolicy(auth.policy, authenticator, auth.rules),
  };
}
