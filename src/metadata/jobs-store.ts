import type { Generated, Kysely } from 'kysely';
import type { JobOutcome, JobRun, JobRunStore } from '../jobs/ports.js';
import { insertReturningId, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row type of migrations/0004-seams.ts's job_runs. */
export interface JobTables {
  job_runs: {
    id: Generated<number>;
    job: string;
    holder: string;
    started_at: number;
    finished_at: number | null;
    outcome: string;
    summary: string | null;
  };
}

export class KyselyJobRunStore implements JobRunStore {
  private readonly db: Kysely<JobTables>;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {
    this.db = db as unknown as Kysely<JobTables>;
  }

  async start(job: string, holder: string, at: Date): Promise<number> {
    return insertReturningId(
      this.db
        .insertInto('job_runs')
        .values({ job, holder, started_at: at.getTime(), finished_at: null, outcome: 'running', summary: null }),
      this.dialect,
    );
  }

  async finish(id: number, outcome: Exclude<JobOutcome, 'running'>, summary: unknown, at: Date): Promise<void> {
    await this.db
      .updateTable('job_runs')
      .set({ outcome, finished_at: at.getTime(), summary: summary === undefined ? null : JSON.stringify(summary) })
      .where('id', '=', id)
      .execute();
  }

  async list(limit: number, job?: string): Promise<JobRun[]> {
    let query = this.db.selectFrom('job_runs').selectAll().orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit);
    if (job !== undefined) query = query.where('job', '=', job);
    return (await query.execute()).map((row) => ({
      id: Number(row.id),
      job: row.job,
      holder: row.holder,
      startedAt: new Date(Number(row.started_at)),
      finishedAt: row.finished_at === null ? null : new Date(Number(row.finished_at)),
      outcome: row.outcome as JobOutcome,
      summary: row.summary === null ? null : (JSON.parse(row.summary) as unknown),
    }));
  }

  async prune(before: Date, keep: number): Promise<number> {
    let deleted = 0;
    const jobs = await this.db.selectFrom('job_runs').select('job').distinct().execute();
    for (const { job } of jobs) {
      const newest = await this.db
        .selectFrom('job_runs')
        .select('started_at')
        .where('job', '=', job)
        .orderBy('started_at', 'desc')
        .offset(keep - 1)
        .limit(1)
        .executeTakeFirst();
      if (!newest) continue;
      const cutoff = Math.min(before.getTime(), Number(newest.started_at));
      const result = await this.db.deleteFrom('job_runs').where('job', '=', job).where('started_at', '<', cutoff).executeTakeFirst();
      deleted += Number(result.numDeletedRows);
    }
    return deleted;
  }
}
