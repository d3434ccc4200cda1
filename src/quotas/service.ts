import type { QuotaStore, QuotaUsage } from './ports.js';

/** A project's quota as the API and `berth quota show --json` print it. */
export interface QuotaView {
  project: string;
  /** Bytes the project uses (deduplicated: docs/policies.md#storage-quotas). */
  used: number;
  /** Bytes allowed; null: unlimited. */
  limit: number | null;
  /** used / limit in %, one decimal; null when unlimited. */
  percent: number | null;
}

export function quotaView(usage: QuotaUsage): QuotaView {
  const percent =
    usage.limit === null ? null : usage.limit === 0 ? (usage.used > 0 ? 100 : 0) : Math.round((usage.used / usage.limit) * 1000) / 10;
  return { project: usage.project, used: usage.used, limit: usage.limit, percent };
}

/** A difference between the kept usage and a from-scratch recount. */
export interface QuotaDrift {
  project: string;
  kept: number;
  recounted: number;
}

/** What the admin API and the CLI do with quotas (who may is checked by their callers). */
export class QuotaService {
  constructor(private readonly store: QuotaStore) {}

  async show(project: string): Promise<QuotaView> {
    return quotaView(await this.store.usage(project));
  }

  /** Every project with content or a limit; `visible` filters (e.g. the projects a caller may read). */
  async list(visible?: (project: string) => boolean): Promise<QuotaView[]> {
    return (await this.store.list()).filter((u) => !visible || visible(u.project)).map(quotaView);
  }

  /** Sets the limit in bytes (null: unlimited). */
  async setLimit(project: string, limit: number | null): Promise<QuotaView> {
    return quotaView(await this.store.setLimit(project, limit));
  }

  /** Compares the kept usage with a from-scratch recount: empty when they agree. */
  async verify(): Promise<QuotaDrift[]> {
    const kept = new Map((await this.store.list()).map((u) => [u.project, u.used]));
    const drift: QuotaDrift[] = [];
    for (const counted of await this.store.recount()) {
      const used = kept.get(counted.project) ?? 0;
      kept.delete(counted.project);
      if (used !== counted.used) drift.push({ project: counted.project, kept: used, recounted: counted.used });
    }
    for (const [project, used] of kept) if (used !== 0) drift.push({ project, kept: used, recounted: 0 });
    return drift;
  }

  /** Replaces the kept usage with a recount; the projects that changed. */
  async recount(): Promise<{ project: string; before: number; after: number }[]> {
    return this.store.rebuild();
  }
}
