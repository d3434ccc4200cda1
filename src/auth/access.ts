import type { Identity } from './identity.js';
import type { ClientCertificate } from './mtls/listener.js';
import type { Permission } from './permissions.js';
import type { Grant } from './scopes.js';

/** What a request needs, in the Docker token-scope vocabulary. */
export type Action = 'pull' | 'push' | 'delete' | '*';

export type Scope =
  /**
   * `requires` names Berth permissions checked beyond the wire actions (e.g. tag listing needs
   * `list-tags`, which a limited-guest lacks although it may pull); tokens only carry actions.
   */
  | { type: 'repository'; name: string; actions: Action[]; requires?: Permission[] }
  | { type: 'registry'; name: 'catalog'; actions: Action[] }
  | { type: 'base' };

/**
 * What a request presents, as the HTTP layer read it: auth never sees the framework's
 * request object. `baseUrl` is where clients reach this server (http.host, else the
 * request's own, proxy-aware), for the token realm.
 */
export interface RequestCredentials {
  /** The Authorization header, if any. */
  authorization?: string;
  /** Client address (honours http.trustproxy); keys the failed-login throttle. */
  ip: string;
  baseUrl: string;
  /** The TLS connection's client certificate (http.tls.clientcas), as verified at its handshake; absent or null: none. */
  clientCertificate?: ClientCertificate | null;
}

/** Who is calling. `anonymous` until an authenticator says otherwise. */
export interface Principal {
  subject: string;
  anonymous: boolean;
  /** Set by the basic and token policies; absent with auth: none. */
  identity?: Identity;
  /** The verified token's `access` claim (token mode). */
  grants?: Grant[];
  /** Client address (RequestCredentials.ip), recorded in the audit entry of a project its first push creates. */
  ip?: string;
}

/**
 * The single place a request's permission is decided. Routes declare their scope
 * in the route table (http/v2/routes.ts); the router calls `authorize` once per request.
 */
export interface AccessPolicy {
  /** Resolves the caller and checks `scope`; throws RegistryError UNAUTHORIZED/DENIED. */
  authorize(credentials: RequestCredentials, scope: Scope): Promise<Principal>;
  /** Whether `principal` may pull from `repository` (mount discovery). */
  canRead(principal: Principal, repository: string): Promise<boolean>;
  /** `canRead` for many repositories in a row (the catalog): each project's row and role are read once. */
  readFilter(principal: Principal): (repository: string) => Promise<boolean>;
}

/** auth: none — everyone may do everything. The zero-setup default. */
export class OpenAccessPolicy implements AccessPolicy {
  async authorize(): Promise<Principal> {
    return { subject: 'anonymous', anonymous: true };
  }

  async canRead(): Promise<boolean> {
    return true;
  }

  readFilter(): (repository: string) => Promise<boolean> {
    return async () => true;
  }
}
