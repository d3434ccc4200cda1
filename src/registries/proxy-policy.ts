import { deny, type Policy } from '../core/policies.js';
import { projectOf } from '../core/names.js';
import type { RegistryError } from '../core/errors.js';
import type { ChangeReason } from '../core/events.js';
import type { ProxyCache } from './proxy-cache.js';

/** The refusal of a write to `repository`, or null when it is not read-through. */
export function proxyRefusal(cache: Pick<ProxyCache, 'binding'>, mirrorUrl: string | null, repository: string): RegistryError | null {
  if (mirrorUrl !== null)
    return deny(
      'proxy-cache',
      'UNSUPPORTED',
      `this registry is a pull-through mirror of ${mirrorUrl} (proxy.remoteurl): pushes and deletes are refused`,
    );
  const project = projectOf(repository);
  if (cache.binding(project))
    return deny(
      'proxy-cache',
      'DENIED',
      `project ${project} is a pull-through cache (proxy mode): its content comes from its upstream, pushes and deletes are refused`,
    );
  return null;
}

/**
 * Refuses every write to a pull-through cache project (its content is the upstream's), and with
 * `proxy.remoteurl` to the whole registry, as Distribution's proxy mode does: 403 DENIED naming
 * the project's proxy mode (405 UNSUPPORTED for a mirror). System writes pass: the cache's own
 * fills (`reason: 'proxy-cache'`, Registry.storeCachedManifest / linkCachedBlob) and a retention
 * run's deletes (`reason: 'retention'`); GC's deletions do not ask the write hooks.
 */
export function proxyCachePolicy(cache: Pick<ProxyCache, 'binding' | 'mirrorMode'>, mirrorUrl: string | null): Policy {
  const refuse = ({ repository, reason }: { repository: string; reason?: ChangeReason }) => {
    if (reason === 'proxy-cache') return;
    const refusal = proxyRefusal(cache, mirrorUrl, repository);
    if (refusal) throw refusal;
  };
  return {
    name: 'proxy-cache',
    hooks: {
      'upload.start': refuse,
      'blob.mount': refuse,
      'blob.commit': refuse,
      'manifest.put': refuse,
      'tag.put': refuse,
      'manifest.delete': (c) => (c.reason === 'retention' ? undefined : refuse(c)),
      'tag.delete': (c) => (c.reason === 'retention' ? undefined : refuse(c)),
      'blob.delete': refuse,
    },
  };
}
