// Helpers of the component tests: a fake /api/v1 behind globalThis.fetch and a signed-in context.
import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import { vi } from 'vitest';
import { setCsrfToken } from './api/client';
import type { Me, SystemInfo } from './api/types';
import { SessionCtx, type SessionContext } from './session';

export interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: Headers;
}

type Handler = (call: Call) => unknown;

/** Routes `METHOD /api/v1/path` to handlers (a handler may return a Response); records every call. */
export function fakeApi(routes: Record<string, Handler>): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal('fetch', async (input: Request) => {
    const url = new URL(input.url);
    const body =
      input.method === 'GET' || input.method === 'DELETE'
        ? undefined
        : await input
            .clone()
            .text()
            .then((t) => (t ? JSON.parse(t) : undefined));
    const call: Call = {
      method: input.method,
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      body,
      headers: input.headers,
    };
    calls.push(call);
    const handler = routes[`${input.method} ${url.pathname}`] ?? routes[`${input.method} ${call.path}`];
    if (!handler) return json({ errors: [{ code: 'NOT_FOUND', message: `no fake for ${input.method} ${url.pathname}` }] }, 404);
    const answer = handler(call);
    return answer instanceof Response ? answer : answer === undefined ? new Response(null, { status: 204 }) : json(answer);
  });
  return calls;
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

export const INFO: SystemInfo = {
  version: '0.1.0',
  registryHost: 'registry.example:5000',
  features: { quotas: true, proxyCache: false },
  oidcProviders: [],
};

/** Renders `ui` as signed in: `admin`, or a member of projects with roles. */
export function renderSignedIn(ui: ReactNode, who: { admin?: boolean; projects?: Me['projects'] } = {}) {
  setCsrfToken('csrf-test');
  const projects = who.projects ?? [];
  const me: Me = {
    name: 'alice',
    username: 'alice',
    kind: 'user',
    admin: who.admin ?? false,
    projects,
    memberships: projects.map((p) => ({ project: p.name, username: 'alice', role: p.role })),
  };
  const ctx: SessionContext = {
    session: {
      username: 'alice',
      admin: who.admin ?? false,
      csrfToken: 'csrf-test',
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    },
    info: INFO,
    me,
    signOut: () => {},
  };
  return render(<SessionCtx.Provider value={ctx}>{ui}</SessionCtx.Provider>);
}
