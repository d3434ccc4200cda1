import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema.js';
import type { MetadataStore } from '../core/ports.js';
import { KyselyAuthStore } from '../metadata/auth-store.js';
import { KyselyMetadataStore } from '../metadata/kysely-store.js';
import { AuthService, baseUrlResolver } from './service.js';

/** The auth layer over the metadata DB it shares with the registry (the one place that picks the AuthStore adapter). */
export function createAuthService(config: BerthConfig, metadata: MetadataStore, baseUrl: (request: FastifyRequest) => string): AuthService {
  if (!(metadata instanceof KyselyMetadataStore)) throw new Error('auth needs the Kysely metadata store (sqlite or postgres)');
  return new AuthService(config.auth, new KyselyAuthStore(metadata.db as unknown as Kysely<unknown>), metadata, baseUrl);
}

/** Builds and initialises the auth layer for the server; warns when an open registry is exposed. */
export async function openAuth(config: BerthConfig, metadata: MetadataStore, logger: Logger): Promise<AuthService> {
  const auth = createAuthService(config, metadata, baseUrlResolver(config));
  await auth.init(logger);
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
