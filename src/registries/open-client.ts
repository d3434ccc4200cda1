import { OciClient, type OciClientOptions } from '../client/index.js';
import type { RegistryEndpoint } from './ports.js';
import { endpointFetch } from './tls-fetch.js';

/**
 * A src/client OciClient for an endpoint: its URL, its credentials (Basic, or the Docker
 * token flow when the registry challenges with Bearer) and its TLS options. `options` adds
 * the client's own (retries, headers). Replication and the pull-through cache open their
 * clients here; keep one per endpoint and use, so tokens are cached between requests.
 */
export function openRegistryClient(
  endpoint: Pick<RegistryEndpoint, 'url' | 'username' | 'credential' | 'insecure' | 'caBundle'>,
  options: Partial<Omit<OciClientOptions, 'baseUrl' | 'credentials' | 'fetch'>> = {},
): OciClient {
  return new OciClient({
    ...options,
    baseUrl: endpoint.url,
    credentials: endpoint.username !== null ? { username: endpoint.username, password: endpoint.credential ?? '' } : undefined,
    fetch: endpointFetch({ insecure: endpoint.insecure, caBundle: endpoint.caBundle }),
  });
}
