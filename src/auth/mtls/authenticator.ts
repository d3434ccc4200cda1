import { RegistryError } from '../../core/errors.js';
import type { AuditOutcome } from '../../core/events.js';
import { ROBOT_PREFIX, type Identity, type LoginVia } from '../identity.js';
import type { Role } from '../permissions.js';
import type { AuditEntry, AuditRows, UserRows } from '../ports.js';
import type { ClientCertificate } from './listener.js';
import { parseSpiffeId } from './spiffe.js';

/** Where a certificate identity came from, as the audit log names it. */
export type CertificateSource = 'spiffe' | 'mtls';

/**
 * The project roles bound to a SPIFFE ID, one per project with the strongest role: exact-ID
 * bindings and prefixes it lies under on path boundaries (src/auth/bindings.ts `rolesFor`
 * with source 'spiffe').
 */
export type SpiffeRoles = (spiffeId: string) => Promise<{ project: string; role: Role }[]>;

/** How long a connection's successful certificate login is not audited again (as the password cache's minute). */
const AUDIT_QUIET_MS = 60_000;
const AUDIT_QUIET_MAX = 10_000;

/**
 * Turns a verified client certificate into an identity:
 * - an X.509-SVID → a workload `{ kind: 'workload', name: <SPIFFE ID>, source: 'spiffe' }`
 *   whose project roles are those its bindings give now (read at each authentication, so an
 *   unbound workload loses access at its next request or token);
 * - another certificate with http.tls.clientcn `user` → the existing Berth user its subject
 *   CN names (never created, never a robot); with `ignore` → nobody (null).
 * Refused certificates throw 401 with the reason. Logins are audited with their source
 * ('spiffe' or 'mtls'), once a minute per certificate, address and entry point.
 */
export class CertificateAuthenticator {
  private readonly quiet = new Map<string, number>();

  constructor(
    private readonly store: UserRows & AuditRows,
    private readonly roles: SpiffeRoles,
    private readonly config: { clientcn: 'ignore' | 'user'; trustDomains: string[] },
  ) {}

  /** Where an audit row the database refused goes (the server log). */
  auditFailed: (entry: AuditEntry, err: unknown) => void = () => {};

  async identify(certificate: ClientCertificate, ip: string, via: LoginVia): Promise<Identity | null> {
    if (certificate.state === 'refused') {
      await this.audit(
        'login.failed',
        'failure',
        'client-certificate',
        ip,
        { via, source: 'mtls', certificate: certificate.fingerprint, reason: certificate.reason },
        certificate.fingerprint,
        via,
      );
      throw new RegistryError('UNAUTHORIZED', `client certificate refused: ${certificate.reason}`);
    }
    if (certificate.state === 'spiffe') {
      const identity = await this.workload(certificate.spiffe.id);
      await this.audit(
        'login',
        'success',
        identity.name,
        ip,
        { via, source: 'spiffe', certificate: certificate.fingerprint },
        certificate.fingerprint,
        via,
      );
      return identity;
    }
    if (this.config.clientcn === 'ignore') return null;
    const name = certificate.commonName;
    const user = name !== '' && !name.startsWith(ROBOT_PREFIX) ? await this.store.getUser(name) : null;
    if (!user) {
      await this.audit(
        'login.failed',
        'failure',
        name || 'client-certificate',
        ip,
        { via, source: 'mtls', certificate: certificate.fingerprint, reason: 'no such user' },
        certificate.fingerprint,
        via,
      );
      throw new RegistryError(
        'UNAUTHORIZED',
        `client certificate refused: its subject CN "${name.slice(0, 128)}" names no Berth user (http.tls.clientcn: user)`,
      );
    }
    await this.audit(
      'login',
      'success',
      user.username,
      ip,
      { via, source: 'mtls', certificate: certificate.fingerprint },
      certificate.fingerprint,
      via,
    );
    return { kind: 'user', name: user.username, admin: user.admin };
  }

  /** The workload behind a SPIFFE ID, with the project roles its bindings give now. */
  async workload(spiffeId: string): Promise<Extract<Identity, { kind: 'workload' }>> {
    const roles = Object.fromEntries((await this.roles(spiffeId)).map((grant) => [grant.project, grant.role]));
    return { kind: 'workload', name: spiffeId, source: 'spiffe', roles };
  }

  /**
   * The current identity behind a token subject that is a SPIFFE ID (a token /token issued
   * to a certificate): null when it is not one, or its trust domain is no longer configured.
   */
  async current(subject: string): Promise<Identity | null> {
    const id = parseSpiffeId(subject);
    if ('error' in id || !this.config.trustDomains.includes(id.trustDomain)) return null;
    return this.workload(subject);
  }

  private async audit(
    action: string,
    outcome: AuditOutcome,
    actor: string,
    ip: string,
    detail: Record<string, unknown>,
    fingerprint: string,
    via: LoginVia,
  ): Promise<void> {
    const key = `${action}\u0000${fingerprint}\u0000${ip}\u0000${via}`;
    const now = Date.now();
    if ((this.quiet.get(key) ?? 0) > now) return;
    if (this.quiet.size >= AUDIT_QUIET_MAX) this.quiet.clear();
    this.quiet.set(key, now + AUDIT_QUIET_MS);
    const entry: AuditEntry = { actor, action, target: actor, ip, detail, outcome };
    try {
      await this.store.audit(entry);
    } catch (err) {
      this.auditFailed(entry, err);
    }
  }
}
