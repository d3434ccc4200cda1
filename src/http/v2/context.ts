import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessPolicy, Principal, RequestCredentials } from '../../auth/access.js';
import type { Operation } from '../../core/events.js';
import type { Registry } from '../../core/registry.js';

/** What every /v2 handler gets: the core, the access policy, and the parsed path. */
export interface V2Context {
  registry: Registry;
  access: AccessPolicy;
  /** What the request presents to the access policy (built here, so auth never sees Fastify). */
  credentials: (request: FastifyRequest) => RequestCredentials;
}

export interface V2Params {
  /** Repository name (validated). Empty for /v2/ and /v2/_catalog. */
  name: string;
  /** Tag, digest or upload id, depending on the route. */
  ref: string;
  query: URLSearchParams;
  principal: Principal;
}

export type V2Handler = (ctx: V2Context, request: FastifyRequest, reply: FastifyReply, params: V2Params) => Promise<unknown>;

/** Who makes a change, as core records it in events (the principal's subject). */
export function operation(principal: Principal): Operation {
  return { actor: principal.subject, ...(principal.ip !== undefined ? { ip: principal.ip } : {}) };
}

/** Whether the request carries a body (a PUT that only finalises an upload carries none). */
export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return request.headers['transfer-encoding'] !== undefined;
}

/** Parsed Content-Length, or undefined when absent or chunked. */
export function contentLength(request: FastifyRequest): number | undefined {
  const length = request.headers['content-length'];
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
}

/** `<path>?n=…&last=…` pagination link in the RFC 5988 form clients follow. */
export function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}
