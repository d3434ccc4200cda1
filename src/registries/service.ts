import { RegistryError } from '../core/errors.js';
import { describe as describeError } from '../client/transport.js';
import { RegistryClientError, parseChallenge } from '../client/index.js';
import { openRegistryClient } from './open-client.js';
import type { RegistryEndpoint, RegistryEndpointInput, RegistryEndpointStore } from './ports.js';
import { endpointFetch } from './tls-fetch.js';

/** An endpoint as the API and CLI show it: whether a credential is set, never its value. */
export function endpointView(endpoint: RegistryEndpoint) {
  return {
    id: endpoint.id,
    name: endpoint.name,
    url: endpoint.url,
    kind: endpoint.kind,
    description: endpoint.description,
    username: endpoint.username,
    hasCredential: endpoint.credential !== null,
    insecure: endpoint.insecure,
    hasCaBundle: endpoint.caBundle !== null,
    createdAt: new Date(endpoint.createdAt).toISOString(),
    updatedAt: new Date(endpoint.updatedAt).toISOString(),
  };
}

/** The answer of "test connection". */
export interface PingResult {
  ok: boolean;
  /** The final HTTP status of GET /v2/ (0 when the registry could not be reached). */
  status: number;
  /** How the registry asked to authenticate: none, basic or bearer (the Docker token flow). */
  auth: 'none' | 'basic' | 'bearer' | 'unknown';
  /** The Docker-Distribution-API-Version header, when sent. */
  apiVersion: string | null;
  latencyMs: number;
  /** Why it failed (null when ok); never contains the credential. */
  reason: string | null;
}

/** A change to an endpoint: omitted fields keep their value; null clears username, credential or caBundle. */
export type EndpointPatch = Partial<RegistryEndpointInput>;

export const ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Normalises and checks an endpoint URL: http or https, no user info (credentials go in their
 * own sealed field), no query, no path (a trailing slash or `/v2/` is dropped).
 */
export function normaliseEndpointUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RegistryError('INVALID_ARGUMENT', `endpoint url ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RegistryError('INVALID_ARGUMENT', 'endpoint url must be http or https');
  if (url.username || url.password)
    throw new RegistryError('INVALID_ARGUMENT', 'endpoint url must not carry credentials: give username and credential instead');
  if (url.search || url.hash) throw new RegistryError('INVALID_ARGUMENT', 'endpoint url must not have a query or fragment');
  // The distribution API lives at /v2/ of the host: a registry under a path prefix is not a registry.
  const path = url.pathname.replace(/\/+$/, '').replace(/\/v2$/, '');
  if (path !== '')
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `endpoint url must be the registry's origin (scheme://host[:port]), not a path under it: ${path}`,
    );
  return url.origin;
}

/**
 * Registry endpoints for /api/v1/registries and `berth registry`. `inUse` names what still
 * uses an endpoint (proxy cache projects, replication policies), so that a delete is refused
 * while something does.
 */
export class RegistryService {
  private readonly users: ((endpoint: RegistryEndpoint) => Promise<string[]>)[] = [];

  constructor(private readonly store: RegistryEndpointStore) {}

  /** Registers a check naming what uses an endpoint (e.g. `project hub`); a delete is refused while any answers. */
  addUsageCheck(check: (endpoint: RegistryEndpoint) => Promise<string[]>): void {
    this.users.push(check);
  }

  list(): Promise<RegistryEndpoint[]> {
    return this.store.list();
  }

  async get(name: string): Promise<RegistryEndpoint> {
    const found = await this.store.byName(name);
    if (!found) throw new RegistryError('NOT_FOUND', `registry endpoint ${name} not found`);
    return found;
  }

  async byId(id: number): Promise<RegistryEndpoint | null> {
    return this.store.byId(id);
  }

  async create(input: RegistryEndpointInput): Promise<RegistryEndpoint> {
    check(input);
    if (await this.store.byName(input.name)) throw new RegistryError('CONFLICT', `registry endpoint ${input.name} already exists`);
    return this.store.create({ ...input, url: normaliseEndpointUrl(input.url) }, Date.now());
  }

  async update(name: string, patch: EndpointPatch): Promise<RegistryEndpoint> {
    const current = await this.get(name);
    const { id: _id, createdAt: _c, updatedAt: _u, ...input } = current;
    const next = { ...input, ...patch, name: current.name };
    check(next);
    const updated = await this.store.update(name, { ...next, url: normaliseEndpointUrl(next.url) }, Date.now());
    if (!updated) throw new RegistryError('NOT_FOUND', `registry endpoint ${name} not found`);
    return updated;
  }

  async remove(name: string): Promise<void> {
    const endpoint = await this.get(name);
    const users = (await Promise.all(this.users.map((c) => c(endpoint)))).flat();
    if (users.length > 0) throw new RegistryError('CONFLICT', `registry endpoint ${name} is in use by ${users.join(', ')}`);
    if (!(await this.store.delete(name))) throw new RegistryError('NOT_FOUND', `registry endpoint ${name} not found`);
  }

  /** "Test connection" of a stored endpoint. */
  async ping(name: string, timeoutMs = 10_000): Promise<PingResult> {
    return pingEndpoint(await this.get(name), timeoutMs);
  }
}

/** What to do about a certificate the endpoint's TLS settings do not trust. */
function tlsHint(err: unknown): string {
  const code = String((err as { cause?: { code?: unknown } }).cause?.code ?? '');
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)
    ? ': the TLS certificate is not trusted (give the endpoint its CA as caBundle, or set insecure)'
    : '';
}

function check(input: RegistryEndpointInput): void {
  if (!ENDPOINT_NAME.test(input.name))
    throw new RegistryError('INVALID_ARGUMENT', 'endpoint name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}');
  if (input.credential !== null && input.username === null) throw new RegistryError('INVALID_ARGUMENT', 'a credential needs a username');
  if (input.caBundle !== null && !input.caBundle.includes('-----BEGIN CERTIFICATE-----'))
    throw new RegistryError('INVALID_ARGUMENT', 'caBundle must be PEM certificates');
}

/**
 * Reaches GET /v2/ of an endpoint, authenticating the way it asks (Basic, or a token from
 * its Bearer realm), and says whether that worked and, if not, why.
 */
export async function pingEndpoint(endpoint: RegistryEndpoint, timeoutMs = 10_000): Promise<PingResult> {
  const started = Date.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const result = (partial: Omit<PingResult, 'latencyMs'>): PingResult => ({ ...partial, latencyMs: Date.now() - started });
  const where = `${endpoint.url}/v2/`;
  // First without credentials, to learn how it asks to authenticate.
  let auth: PingResult['auth'] = 'none';
  let first: Response;
  try {
    first = await endpointFetch(endpoint)(where, { signal, redirect: 'manual' });
    await first.arrayBuffer().catch(() => undefined);
  } catch (err) {
    const reason = signal.aborted
      ? `no answer from ${where} within ${timeoutMs} ms`
      : `cannot reach ${where}: ${describeError(err)}${tlsHint(err)}`;
    return result({ ok: false, status: 0, auth: 'unknown', apiVersion: null, reason });
  }
  if (first.status === 401) {
    const challenge = parseChallenge(first.headers.get('www-authenticate'));
    auth = challenge?.scheme === 'basic' ? 'basic' : challenge?.scheme === 'bearer' ? 'bearer' : 'unknown';
    if (endpoint.username === null) {
      return result({
        ok: false,
        status: 401,
        auth,
        apiVersion: null,
        reason: `${where} asks for authentication (${auth}) and the endpoint has no username and credential`,
      });
    }
  }
  const client = openRegistryClient(endpoint, { retry: { attempts: 1 } });
  try {
    const res = await client.send({ method: 'GET', url: '/v2/', signal });
    await res.arrayBuffer().catch(() => undefined);
    const apiVersion = res.headers.get('docker-distribution-api-version');
    if (res.status === 200) return result({ ok: true, status: 200, auth, apiVersion, reason: null });
    const reason =
      res.status === 401
        ? `${where} refused the credential of user ${endpoint.username} (${auth})`
        : `${where} answered HTTP ${res.status}${res.status === 404 ? ' (not a registry: no distribution API at this URL)' : ''}`;
    return result({ ok: false, status: res.status, auth, apiVersion, reason });
  } catch (err) {
    if (signal.aborted)
      return result({ ok: false, status: 0, auth, apiVersion: null, reason: `no answer from ${where} within ${timeoutMs} ms` });
    if (err instanceof RegistryClientError && err.status !== 0) {
      const reason =
        err.status === 401 || err.status === 403
          ? `the token service refused the credential of user ${endpoint.username}: ${err.message}`
          : `token request failed: ${err.message}`;
      return result({ ok: false, status: err.status === 403 ? 403 : 401, auth, apiVersion: null, reason });
    }
    return result({ ok: false, status: 0, auth, apiVersion: null, reason: err instanceof Error ? err.message : String(err) });
  }
}
