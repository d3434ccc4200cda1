import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Actor } from '../../auth/accounts.js';
import type { Identity } from '../../auth/identity.js';
import type { AuthService } from '../../auth/service.js';

/** Who may reach a route at all; finer checks (project roles, self-service) happen in the handler. */
export type ApiAccess = 'public' | 'user' | 'admin';

export interface ApiContext {
  auth: AuthService;
  identity: Identity;
  actor: Actor;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: unknown;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** One admin-API endpoint: the same table registers the routes and writes openapi.json. */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify path under /api/v1, e.g. /projects/:project/members/:username */
  path: string;
  access: ApiAccess;
  summary: string;
  body?: z.ZodType;
  /** Status of a successful answer (default 200; 204 sends no body). */
  status?: number;
  handler(ctx: ApiContext): Promise<unknown>;
}
