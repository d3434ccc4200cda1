/** The history of background job runs, in the metadata DB (adapter: src/metadata/jobs-store.ts). */

export type JobOutcome = 'running' | 'ok' | 'failed' | 'skipped';

export interface JobRun {
  id: number;
  job: string;
  /** The process that ran it (host:pid:nonce). */
  holder: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: JobOutcome;
  /** What the run did (job-specific JSON), or the error message of a failed run. */
  summary: unknown;
}

export interface JobRunStore {
  /** Records a run as started; returns its id. */
  start(job: string, holder: string, at: Date): Promise<number>;
  finish(id: number, outcome: Exclude<JobOutcome, 'running'>, summary: unknown, at: Date): Promise<void>;
  /** Most recent runs first, optionally of one job, at most `limit`. */
  list(limit: number, job?: string): Promise<JobRun[]>;
  /** Forgets runs started before `before`, keeping at least the newest `keep` of each job. */
  prune(before: Date, keep: number): Promise<number>;
}
