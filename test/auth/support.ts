import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { TestServer } from '../helpers/server.js';
import { startTestServer } from '../helpers/server.js';
import { useServer, type ServerFixture, type UseServerOptions } from '../helpers/use-server.js';

export const ADMIN_PASSWORD = 'admin-secret-1';

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export const adminAuth = () => basic('admin', ADMIN_PASSWORD);

/** Config overrides for auth on, an admin whose password is ADMIN_PASSWORD, and `extra` auth settings. */
export function authConfig(
  mode: 'basic' | 'token',
  extra: Record<string, unknown> = {},
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return { ...overrides, auth: { mode, admin: { password: ADMIN_PASSWORD }, ...extra } };
}

/** A server with auth on, an admin whose password is ADMIN_PASSWORD, and `extra` auth settings. */
export function startAuthServer(
  mode: 'basic' | 'token',
  extra: Record<string, unknown> = {},
  overrides: Record<string, unknown> = {},
): Promise<TestServer> {
  return startTestServer(authConfig(mode, extra, overrides));
}

/** useServer() for the calling describe with startAuthServer's settings. */
export function useAuthServer(
  mode: 'basic' | 'token',
  extra: Record<string, unknown> = {},
  overrides: Record<string, unknown> = {},
  options?: UseServerOptions,
): ServerFixture {
  return useServer(authConfig(mode, extra, overrides), options);
}

/** Calls the admin API as `authorization` with a JSON body; returns the response. */
/** Anything with a base URL: an in-process TestServer or a `berth serve` child process. */
export interface HasUrl {
  url: string;
}

export function api(server: HasUrl, method: string, path: string, authorization: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** One row of GET /api/v1/audit. */
export interface AuditEntry {
  id: number;
  actor: string;
  action: string;
  target: string;
  ip: string | null;
  detail?: Record<string, unknown>;
}

/** The audit log (its newest 1000 rows, as the admin reads it), oldest first; throws unless it answered 200. */
export async function auditLog(server: HasUrl): Promise<AuditEntry[]> {
  const res = await api(server, 'GET', '/audit?limit=1000', adminAuth());
  if (res.status !== 200) throw new Error(`GET /api/v1/audit answered ${res.status}`);
  return ((await res.json()) as AuditEntry[]).reverse();
}

/** Creates a user through the admin API; throws unless it worked. */
export async function addUser(server: HasUrl, username: string, password: string, admin = false): Promise<void> {
  const res = await api(server, 'POST', '/users', adminAuth(), { username, password, admin });
  if (res.status !== 201) throw new Error(`user ${username}: ${res.status} ${await res.text()}`);
}

export async function addProject(server: HasUrl, name: string, isPublic = false): Promise<void> {
  const res = await api(server, 'POST', '/projects', adminAuth(), { name, public: isPublic });
  if (res.status !== 201) throw new Error(`project ${name}: ${res.status} ${await res.text()}`);
}

export async function addMember(server: HasUrl, project: string, username: string, role: string): Promise<void> {
  const res = await api(server, 'PUT', `/projects/${project}/members/${username}`, adminAuth(), { role });
  if (res.status !== 204) throw new Error(`member ${username}: ${res.status} ${await res.text()}`);
}

export interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

/** GET /token with the given scopes (and Basic credentials when `authorization` is set). */
export async function getToken(
  server: HasUrl,
  scopes: string[],
  authorization?: string,
  extra: Record<string, string> = {},
): Promise<Response> {
  const params = new URLSearchParams({ service: 'berth', ...extra });
  for (const s of scopes) params.append('scope', s);
  return fetch(`${server.url}/token?${params}`, { headers: authorization ? { authorization } : {} });
}

export async function token(server: HasUrl, scopes: string[], authorization?: string): Promise<string> {
  const res = await getToken(server, scopes, authorization);
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as TokenAnswer).token;
}

export function claims(jwt: string): Record<string, unknown> & { access: { type: string; name: string; actions: string[] }[] } {
  return decodeJwt(jwt) as Record<string, unknown> & { access: { type: string; name: string; actions: string[] }[] };
}

export const header = decodeProtectedHeader;

export const bearer = (jwt: string) => `Bearer ${jwt}`;
