import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal, Scope } from '../../auth/access.js';
import { RegistryError } from '../../core/errors.js';
import { validateRepositoryName } from '../../core/names.js';
import { deleteBlob, getBlob } from './blobs.js';
import type { V2Context, V2Handler } from './context.js';
import { apiVersion, listCatalog, listReferrers, listTags } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';

type Method = 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';

interface Endpoint {
  /** Matched against the path; group 1 is the repository name, group 2 the reference. */
  pattern: RegExp;
  methods: Partial<Record<Method, { handler: V2Handler; scope: (name: string) => Scope }>>;
}

const pull = (name: string): Scope => ({ type: 'repository', name, actions: ['pull'] });
const push = (name: string): Scope => ({ type: 'repository', name, actions: ['pull', 'push'] });
const remove = (name: string): Scope => ({ type: 'repository', name, actions: ['delete'] });
/** Pull on the wire, plus Berth's list-tags permission (a limited-guest may pull but not list tags). */
const listTagsScope = (name: string): Scope => ({ type: 'repository', name, actions: ['pull'], requires: ['list-tags'] });

const MANIFEST_METHODS: Endpoint['methods'] = {
  GET: { handler: getManifest, scope: pull },
  HEAD: { handler: getManifest, scope: pull },
  PUT: { handler: putManifest, scope: push },
  DELETE: { handler: deleteManifest, scope: remove },
};

/**
 * Every /v2 endpoint, the handler that serves it and the access it requires — the one
 * place to read to know where a request goes and who may make it. Order matters: the
 * upload patterns come before the blob pattern, and names are matched greedily.
 */
const ENDPOINTS: Endpoint[] = [
  {
    // HEAD too: some clients probe the API with it (Distribution answers any method here).
    pattern: /^\/v2\/?$/,
    methods: {
      GET: { handler: apiVersion, scope: () => ({ type: 'base' }) },
      HEAD: { handler: apiVersion, scope: () => ({ type: 'base' }) },
    },
  },
  {
    pattern: /^\/v2\/_catalog$/,
    methods: { GET: { handler: listCatalog, scope: () => ({ type: 'registry', name: 'catalog', actions: ['*'] }) } },
  },
  { pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: { handler: listTags, scope: listTagsScope } } },
  { pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/, methods: MANIFEST_METHODS },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, methods: { POST: { handler: startUpload, scope: push } } },
  {
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: {
      GET: { handler: uploadStatus, scope: push },
      PATCH: { handler: patchUpload, scope: push },
      PUT: { handler: putUpload, scope: push },
      DELETE: { handler: cancelUpload, scope: push },
    },
  },
  {
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    methods: {
      GET: { handler: getBlob, scope: pull },
      HEAD: { handler: getBlob, scope: pull },
      DELETE: { handler: deleteBlob, scope: remove },
    },
  },
  { pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: { handler: listReferrers, scope: pull } } },
  {
    // Last: a reference with a "/" in it, or an empty one (no tag can be either). The name ends
    // at the first "/manifests/", so PUT answers TAG_INVALID and GET/HEAD MANIFEST_UNKNOWN (the
    // handlers' rules for any invalid reference) instead of NAME_INVALID for a name that is fine.
    pattern: /^\/v2\/(.+?)\/manifests\/(.*)$/,
    methods: MANIFEST_METHODS,
  },
];

/**
 * A HEAD answer has no body, so a 403 would reach the user as a bare "403 (Forbidden)". A
 * refusal that carries a Bearer challenge (token mode: error="insufficient_scope" with the
 * reason as error_description) is sent as 401 instead, the status on which clients read the
 * challenge and print its description; on GET and every other method it stays 403 with its body.
 */
function bodilessRefusal(err: unknown): unknown {
  if (!(err instanceof RegistryError) || err.status !== 403 || err.headers['www-authenticate'] === undefined) return err;
  return new RegistryError('UNAUTHORIZED', err.message, err.detail, err.headers);
}

/** Registers the OCI distribution API under /v2. */
export function registerV2Routes(app: FastifyInstance, ctx: V2Context): void {
  const dispatch = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    const url = request.raw.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    for (const endpoint of ENDPOINTS) {
      const match = endpoint.pattern.exec(path);
      if (!match) continue;
      const route = endpoint.methods[request.method as Method];
      if (!route) {
        reply.header('allow', Object.keys(endpoint.methods).join(', '));
        throw new RegistryError('METHOD_NOT_ALLOWED', `${request.method} is not supported on ${path.slice(0, 200)}`);
      }
      const name = match[1] === undefined ? '' : validateRepositoryName(match[1]);
      let principal: Principal;
      try {
        principal = await ctx.access.authorize(ctx.credentials(request), route.scope(name));
      } catch (err) {
        throw request.method === 'HEAD' ? bodilessRefusal(err) : err;
      }
      return route.handler(ctx, request, reply, { name, ref: match[2] ?? '', query, principal });
    }
    if (/^\/v2\/.*\/(manifests|blobs|tags|referrers)\//.test(path)) {
      // Right shape, but the name part is not a valid repository name (e.g. "a//b", "../x", or empty in "/v2//tags/list").
      throw new RegistryError('NAME_INVALID', `invalid repository name in ${path.slice(0, 200)}`);
    }
    throw new RegistryError('ENDPOINT_NOT_FOUND', `no such endpoint: ${request.method} ${path.slice(0, 200)}`);
  };
  app.route({ method: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'], url: '/v2', handler: dispatch });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'], url: '/v2/*', handler: dispatch });
}
