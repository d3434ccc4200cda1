import { sql, type Kysely } from 'kysely';
import type { MetricsQueries, ProjectInventory } from '../metrics/ports.js';
import { firstPathSegment, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** The counts behind Berth's inventory gauges: one grouped query each (src/metrics/ports.ts). */
export class KyselyMetricsStore implements MetricsQueries {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async projects(): Promise<ProjectInventory[]> {
    const project = firstPathSegment('r.name', this.dialect);
    const rows = await sql<{ project: string; repositories: number; artifacts: number }>`
      select ${project} as project, count(distinct r.id) as repositories, count(m.digest) as artifacts
      from repositories r left join manifests m on m.repository_id = r.id
      group by ${project} order by 1`.execute(this.db);
    return rows.rows.map((r) => ({ project: r.project, repositories: Number(r.repositories), artifacts: Number(r.artifacts) }));
  }

  async stored(): Promise<{ blobs: number; bytes: number }> {
    const total = await this.db
      .selectFrom('blobs')
      .select((eb) => [eb.fn.countAll<number>().as('blobs'), eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('bytes')])
      .executeTakeFirstOrThrow();
    return { blobs: Number(total.blobs), bytes: Number(total.bytes) };
  }
}
