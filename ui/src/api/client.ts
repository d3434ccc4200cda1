// The UI's API client: openapi-fetch over the paths generated from /api/v1/openapi.json
// (schema.d.ts, `npm run ui:api`). Every call of the UI goes through `api`; there is no
// hand-written fetch (the OIDC buttons are plain links: a full-page redirect to the provider).
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import type { ErrorBody } from './client-types';

export type ApiPaths = paths;

/** The browser session's CSRF token: sent as X-CSRF-Token on every mutating call. */
let csrfToken: string | null = null;
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when a call answers 401 while signed in: the session expired or was revoked. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const session: Middleware = {
  onRequest({ request }) {
    if (csrfToken && MUTATING.has(request.method)) request.headers.set('X-CSRF-Token', csrfToken);
    return request;
  },
  onResponse({ request, response }) {
    // The session probe and the sign-in itself answer 401 by design.
    if (response.status === 401 && csrfToken && !request.url.endsWith('/api/v1/session')) onUnauthorized();
    return response;
  },
};

export const api = createClient<ApiPaths>({
  baseUrl: typeof location === 'undefined' ? 'http://localhost' : location.origin,
  credentials: 'same-origin',
  // Looked up on each call, so tests can replace globalThis.fetch.
  fetch: (request) => globalThis.fetch(request),
});
api.use(session);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The body of a successful call, as T (the generated types describe no response bodies yet:
 * types.ts says what each endpoint answers); an ApiError with the server's message otherwise.
 */
export async function ok<T>(call: Promise<{ data?: unknown; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    const first = (error as ErrorBody | undefined)?.errors?.[0];
    throw new ApiError(
      response.status,
      first?.code ?? String(response.status),
      first?.message ?? `${response.status} ${response.statusText}`,
    );
  }
  return data as T;
}
