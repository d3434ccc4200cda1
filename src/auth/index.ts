import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema.js';
import type { MetadataStore } from '../core/ports.js';
import type { AuthStore } from './ports.js';
import { adoptOrphanRepositories } from './orphans.js';
import { AuthService, baseUrlResolver, type RequestOrigin } from './service.js';
import type { PasswordSource } from './sources.js';

/** The auth layer over the ports the composition root gives it (its own store, the registry's metadata). */
export function createAuthService(
  config: BerthConfig,
  store: AuthStore,
  metadata: MetadataStore,
  baseUrl: (origin: RequestOrigin) => string,
  sources: readonly PasswordSource[] = [],
): AuthService {
  return new AuthService(config.auth, store, metadata, baseUrl, sources);
}

/** Builds and initialises the auth layer for the server; warns when an open registry is exposed. */
export async function openAuth(
  config: BerthConfig,
  store: AuthStore,
  metadata: MetadataStore,
  logger: Logger,
  sources: readonly PasswordSource[] = [],
): Promise<AuthService> {
  const auth = createAuthService(config, store, metadata, baseUrlResolver(config), sources);
  await auth.init(logger);
  // Auth switched on over existing data: repositories without a project go to the system admin, before anyone can claim them.
  if (config.auth.mode === 'token') await adoptOrphanRepositories(store, config.auth.admin.username, logger);
  if (config.auth.mode === 'none' && !isLoopback(config.http.addr)) {
    logger.warn(
      { addr: config.http.addr },
      'auth.mode is none and Berth listens beyond loopback: ANYONE who can reach it may push, overwrite and delete images. Set auth.mode: token (see docs/security.md)',
    );
  }
  return auth;
}

function isLoopback(addr: string): boolean {
  const host = addr.slice(0, addr.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
