import type { HasUrl } from '../auth/support.js';

/** A signed-in browser: the session cookie and CSRF token POST /api/v1/session answered. */
export interface Browser {
  cookie: string;
  csrfToken: string;
  setCookie: string;
}

export function signInRaw(server: HasUrl, username: string, password: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ username, password }),
  });
}

/** Signs in as a browser would; throws unless it answered 200. */
export async function signIn(server: HasUrl, username: string, password: string): Promise<Browser> {
  const res = await signInRaw(server, username, password);
  if (res.status !== 200) throw new Error(`sign-in as ${username}: ${res.status} ${await res.text()}`);
  const setCookie = res.headers.get('set-cookie')!;
  const body = (await res.json()) as { csrfToken: string };
  return { cookie: setCookie.split(';')[0]!, csrfToken: body.csrfToken, setCookie };
}

/** Calls /api/v1 as the browser (cookie; the CSRF header unless `csrf` is false or a string to send instead). */
export function ui(
  server: HasUrl,
  browser: Browser,
  method: string,
  path: string,
  body?: unknown,
  csrf: boolean | string = true,
): Promise<Response> {
  const headers: Record<string, string> = { cookie: browser.cookie };
  if (csrf !== false) headers['x-csrf-token'] = csrf === true ? browser.csrfToken : csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${server.url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
