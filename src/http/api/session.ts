import { fastifyCookie } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SESSION_COOKIE, type BrowserSessions, type LiveSession } from '../../auth/sessions.js';
import { RegistryError } from '../../core/errors.js';
import type { ApiContext, ApiRoute } from './route.js';

const Session = z.lazy(() =>
  z
    .strictObject({
      username: z.string(),
      admin: z.boolean(),
      csrfToken: z.string().describe('send it as X-CSRF-Token with every mutating call signed in by the cookie; empty with auth.mode none'),
      expiresAt: z.string().nullable().describe('RFC 3339; null with auth.mode none (no session)'),
    })
    .meta({ id: 'Session' }),
);

const Login = z.lazy(() => z.object({ username: z.string().min(1).max(255), password: z.string().min(1).max(1024) }).strict());

/** The session cookie's value in a request, if any (parsed by @fastify/cookie). */
export function sessionCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || !header.includes(SESSION_COOKIE)) return undefined;
  return fastifyCookie.parse(header)[SESSION_COOKIE];
}

/** Secure when clients reach Berth over https (TLS here, or an https http.host / X-Forwarded-Proto behind a proxy). */
function secure(ctx: ApiContext): boolean {
  return ctx.request.protocol === 'https' || ctx.credentials.baseUrl.startsWith('https:');
}

/** Sets (value, max age) or clears (null) the session cookie: HttpOnly, SameSite=Strict, Path=/. */
export function setSessionCookie(reply: FastifyReply, value: string | null, maxAgeS: number, isSecure: boolean): void {
  reply.header(
    'set-cookie',
    fastifyCookie.serialize(SESSION_COOKIE, value ?? '', {
      httpOnly: true,
      sameSite: 'strict',
      path: '/',
      secure: isSecure,
      maxAge: value === null ? 0 : maxAgeS,
    }),
  );
}

/** Starts a session for a verified identity and sets its cookie (password sign-in and OIDC's ?ui=1). */
export async function startSession(
  sessions: BrowserSessions,
  ctx: ApiContext,
  identity: Parameters<BrowserSessions['create']>[0],
): Promise<LiveSession> {
  const { id, session } = await sessions.create(identity);
  setSessionCookie(ctx.reply, id, Math.ceil(sessions.settings.ttlMs / 1000), secure(ctx));
  return session;
}

export function sessionView(session: LiveSession) {
  return { username: session.username, admin: session.admin, csrfToken: session.csrfToken, expiresAt: session.expiresAt.toISOString() };
}

function sessionsOf(ctx: ApiContext): BrowserSessions {
  const sessions = ctx.features.sessions;
  if (!sessions) throw new RegistryError('NOT_FOUND', 'browser sessions are not available on this server');
  return sessions;
}

/** With auth.mode none every caller is an administrator: the UI gets a session-like answer without a cookie. */
const OPEN_SESSION = { username: 'anonymous', admin: true, csrfToken: '', expiresAt: null };

/**
 * Browser sessions of the web UI (docs/api.md#web-ui-api): sign in with a user's password (the
 * same accounts, identity sources and login throttle as `docker login`; robots refused), read
 * the session, sign out.
 */
export const sessionRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/session',
    summary:
      'Sign in to the web UI: {username, password} → a session cookie (HttpOnly, SameSite=Strict) and the CSRF token mutating calls must send as X-CSRF-Token',
    body: Login,
    response: Session,
    handler: async (ctx) => {
      if (ctx.auth.mode === 'none') return OPEN_SESSION;
      const sessions = sessionsOf(ctx);
      const { username, password } = ctx.body as z.infer<typeof Login>;
      if (username.startsWith('robot$')) throw new RegistryError('DENIED', 'robot accounts cannot sign in to the web UI');
      // No challenge header: a browser must not pop up its own login dialog.
      const identity = await ctx.auth.authenticator.login(username, password, ctx.credentials.ip, {}, 'api');
      ctx.reply.header('cache-control', 'no-store');
      return sessionView(await startSession(sessions, ctx, identity));
    },
  },
  {
    method: 'GET',
    path: '/session',
    summary: 'The current browser session (401 when signed out or expired)',
    response: Session,
    handler: async (ctx) => {
      if (ctx.auth.mode === 'none') return OPEN_SESSION;
      const id = sessionCookie(ctx.request);
      const live = id === undefined ? null : await sessionsOf(ctx).resolve(id);
      if (!live) throw new RegistryError('UNAUTHORIZED', 'not signed in (no session, or it expired or was signed out)');
      ctx.reply.header('cache-control', 'no-store');
      return sessionView(live);
    },
  },
  {
    method: 'DELETE',
    path: '/session',
    summary: 'Sign out: the session ends on the server and its cookie is cleared',
    status: 204,
    handler: async (ctx) => {
      const id = sessionCookie(ctx.request);
      if (id !== undefined && ctx.features.sessions) await ctx.features.sessions.revoke(id);
      setSessionCookie(ctx.reply, null, 0, secure(ctx));
    },
  },
];
