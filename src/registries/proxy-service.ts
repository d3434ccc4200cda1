import { RegistryError } from '../core/errors.js';
import type { RegistryEndpointStore } from './ports.js';
import type { ProxyCache } from './proxy-cache.js';
import type { ProxyCacheStore, ProxyProject } from './proxy-ports.js';

export interface ProxyProjectInput {
  endpoint: string;
  namespace: string | null;
  tagTtlMs: number;
  /** Overrides `proxy.keepdeletedtags` for this project; null: follow it. */
  keepDeletedTags: boolean | null;
}

/**
 * Cache projects for /api/v1/projects/{project}/proxy-cache: binds a project to an endpoint.
 * A change applies at once in this process and within the refresh interval on other replicas.
 */
export class ProxyCacheService {
  constructor(
    private readonly store: ProxyCacheStore,
    private readonly endpoints: RegistryEndpointStore,
    private readonly cache: Pick<ProxyCache, 'refresh'>,
    /** Called after a project is bound: gives it the default retention unless it has a policy (the composition root wires src/retention). */
    private readonly onBound: (project: string) => Promise<void> = async () => undefined,
  ) {}

  async view(binding: ProxyProject) {
    const endpoint = await this.endpoints.byId(binding.endpointId);
    return {
      project: binding.project,
      endpoint: endpoint?.name ?? null,
      namespace: binding.namespace,
      tagTtlSeconds: binding.tagTtlMs / 1000,
      keepDeletedTags: binding.keepDeletedTags,
      createdAt: new Date(binding.createdAt).toISOString(),
      updatedAt: new Date(binding.updatedAt).toISOString(),
    };
  }

  list(): Promise<ProxyProject[]> {
    return this.store.projects();
  }

  async get(project: string): Promise<ProxyProject> {
    const found = await this.store.project(project);
    if (!found) throw new RegistryError('NOT_FOUND', `project ${project} is not a pull-through cache`);
    return found;
  }

  async set(project: string, input: ProxyProjectInput): Promise<ProxyProject> {
    const endpoint = await this.endpoints.byName(input.endpoint);
    if (!endpoint)
      throw new RegistryError(
        'INVALID_ARGUMENT',
        `registry endpoint ${input.endpoint} does not exist (add it with POST /api/v1/registries)`,
      );
    const saved = await this.store.setProject(
      { project, endpointId: endpoint.id, namespace: input.namespace, tagTtlMs: input.tagTtlMs, keepDeletedTags: input.keepDeletedTags },
      Date.now(),
    );
    await this.onBound(project);
    await this.cache.refresh();
    return saved;
  }

  async remove(project: string): Promise<void> {
    if (!(await this.store.deleteProject(project))) throw new RegistryError('NOT_FOUND', `project ${project} is not a pull-through cache`);
    await this.cache.refresh();
  }

  /** The cache projects using an endpoint (RegistryService refuses to delete it while any does). */
  async usersOf(endpointId: number): Promise<string[]> {
    return (await this.store.projects()).filter((p) => p.endpointId === endpointId).map((p) => `cache project ${p.project}`);
  }
}
