import { MediaTypes } from '../../core/media-types.js';
import { nextLink, type V2Handler } from './context.js';

/** GET /v2/ — API version check. */
export const apiVersion: V2Handler = async (_ctx, _request, reply) => {
  return reply.header('content-type', 'application/json; charset=utf-8').send('{}');
};

/** GET /v2/<name>/tags/list[?n=&last=] */
export const listTags: V2Handler = async ({ registry }, _request, reply, { name, query }) => {
  const n = registry.pageSize(query.get('n') ?? undefined);
  const page = await registry.listTags(name, n, query.get('last') ?? undefined);
  if (page.more && n !== undefined) reply.header('link', nextLink(`/v2/${name}/tags/list`, n, page.items.at(-1)!));
  return reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ name, tags: page.items }));
};

/**
 * GET /v2/_catalog[?n=&last=] — only repositories the caller may read. Pages are cut from the
 * visible names alone: a page holds up to n of them, and the Link's `last` is the last name
 * on the page, never a repository the caller cannot see. (Rows the caller may not read are
 * skipped while filling the page; a Link may lead to an empty last page.)
 */
export const listCatalog: V2Handler = async ({ registry, access }, _request, reply, { query, principal }) => {
  const n = registry.pageSize(query.get('n') ?? undefined);
  const limit = n ?? registry.options.maxPageSize;
  const readable = access.readFilter(principal);
  const visible: string[] = [];
  let after = query.get('last') ?? undefined;
  let more = false;
  while (limit > 0) {
    const page = await registry.listRepositories(registry.options.maxPageSize, after);
    for (const [i, repo] of page.items.entries()) {
      if (!(await readable(repo))) continue;
      visible.push(repo);
      if (visible.length === limit) {
        more = i < page.items.length - 1 || page.more;
        break;
      }
    }
    if (visible.length === limit || !page.more) break;
    after = page.items.at(-1);
  }
  if (more) reply.header('link', nextLink('/v2/_catalog', limit, visible.at(-1)!));
  return reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ repositories: visible }));
};

/** GET /v2/<name>/referrers/<digest>[?artifactType=] — an image index of the manifests whose subject is <digest>. */
export const listReferrers: V2Handler = async ({ registry }, _request, reply, { name, ref: digest, query }) => {
  const artifactType = query.get('artifactType') ?? undefined;
  const referrers = await registry.listReferrers(name, digest, artifactType);
  if (artifactType !== undefined) reply.header('oci-filters-applied', 'artifactType');
  const index = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: referrers.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType ? { artifactType: r.artifactType } : {}),
      ...(r.annotations ? { annotations: r.annotations } : {}),
    })),
  };
  // A Buffer, not a string: Fastify would append "; charset=utf-8" to a string's Content-Type,
  // and clients compare this media type exactly.
  return reply.header('content-type', MediaTypes.ociIndex).send(Buffer.from(JSON.stringify(index)));
};
