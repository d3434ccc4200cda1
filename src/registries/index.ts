export {
  REGISTRY_KINDS,
  type RegistryEndpoint,
  type RegistryEndpointInput,
  type RegistryEndpointStore,
  type RegistryKind,
} from './ports.js';
export {
  RegistryService,
  endpointView,
  pingEndpoint,
  normaliseEndpointUrl,
  ENDPOINT_NAME,
  type EndpointPatch,
  type PingResult,
} from './service.js';
export { openRegistryClient } from './open-client.js';
export { endpointFetch, type TlsOptions } from './tls-fetch.js';
