/**
 * Replication's records (adapter: src/metadata/replication-store.ts, migration 0021):
 * policies, their executions, one task per artifact, and the checkpoints of blob uploads
 * in progress (so a restarted process continues a blob where it stopped).
 */

export type Direction = 'push' | 'pull';
export type TriggerKind = 'manual' | 'cron' | 'event';
/** `stopping`: a stop was asked while it ran; the runner ends it as `stopped` before its next artifact. */
export type ExecutionStatus = 'pending' | 'running' | 'stopping' | 'succeeded' | 'partial' | 'failed' | 'stopped';
export type TaskStatus = 'copied' | 'skipped' | 'failed' | 'deleted';

export interface ReplicationPolicy {
  id: number;
  name: string;
  description: string;
  /** push: this Berth → the endpoint; pull: the endpoint → this Berth. */
  direction: Direction;
  /** The registry endpoint's name (src/registries). */
  registry: string;
  /** picomatch globs over source repository names (empty: every repository). */
  repositories: string[];
  /** picomatch globs over tags (empty: every tag). */
  tags: string[];
  /** Only artifacts of these types (manifest artifactType or config media type); empty: any. */
  artifactTypes: string[];
  /** Only artifacts with at least one signature referrer (cosign or Notary v2). */
  onlySigned: boolean;
  /** Destination namespace (graph.ts rewriteRepository); null keeps the source name. */
  destNamespace: string | null;
  /** Leading components dropped before the namespace is prefixed (-1: keep the last only). */
  flatten: number;
  trigger: TriggerKind;
  /** Cron expression for trigger `cron`. */
  cron: string | null;
  /** Re-point destination tags that point elsewhere. */
  override: boolean;
  /** Delete destination tags (in matched repositories) that are gone at the source. */
  deletion: boolean;
  /** Blobs in flight at once. */
  concurrency: number;
  /** Bytes per second over the execution, null: unlimited. */
  bandwidth: number | null;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export type ReplicationPolicyInput = Omit<ReplicationPolicy, 'id' | 'createdAt' | 'updatedAt'>;

export interface ExecutionScope {
  /** Only this source repository (an execution triggered by a push). */
  repository?: string;
  /** Only these tags. */
  tags?: string[];
}

export interface Execution {
  id: number;
  policy: string;
  trigger: TriggerKind;
  status: ExecutionStatus;
  scope: ExecutionScope | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  copied: number;
  skipped: number;
  failed: number;
  deleted: number;
  /** Blob bytes sent to the destination. */
  bytes: number;
  error: string | null;
}

export interface Task {
  id: number;
  executionId: number;
  sourceRepository: string;
  destRepository: string;
  /** The tag (or digest) copied. */
  reference: string;
  digest: string | null;
  status: TaskStatus;
  reason: string | null;
  bytes: number;
  /** Bytes a resumed blob did not send again. */
  resumedBytes: number;
  durationMs: number;
  finishedAt: number;
}

export type NewTask = Omit<Task, 'id'>;

export interface ReplicationStore {
  listPolicies(): Promise<ReplicationPolicy[]>;
  policy(name: string): Promise<ReplicationPolicy | null>;
  /** Throws RegistryError CONFLICT when the name is taken. */
  createPolicy(input: ReplicationPolicyInput, now: number): Promise<ReplicationPolicy>;
  updatePolicy(name: string, input: ReplicationPolicyInput, now: number): Promise<ReplicationPolicy | null>;
  deletePolicy(name: string): Promise<boolean>;
  /** Policies using an endpoint (an endpoint in use may not be deleted). */
  policiesUsing(registry: string): Promise<string[]>;

  createExecution(policy: string, trigger: TriggerKind, scope: ExecutionScope | null, now: number): Promise<Execution>;
  execution(id: number): Promise<Execution | null>;
  /** Newest first; optionally of one policy; keyset by id. */
  listExecutions(query: { policy?: string; before?: number; limit: number }): Promise<Execution[]>;
  /** Executions to run: pending ones, and running ones whose runner is gone (oldest first). */
  runnable(limit: number): Promise<Execution[]>;
  /** The newest execution of a policy with this trigger (cron scheduling). */
  lastExecution(policy: string, trigger: TriggerKind): Promise<Execution | null>;
  markRunning(id: number, now: number): Promise<void>;
  /** A pending execution becomes `stopped` at once, a running one `stopping`; null when it was not pending or running. */
  requestStop(id: number, now: number): Promise<Execution | null>;
  finishExecution(
    id: number,
    result: Pick<Execution, 'status' | 'copied' | 'skipped' | 'failed' | 'deleted' | 'bytes' | 'error'>,
    now: number,
  ): Promise<void>;

  /**
   * Deletes finished executions that finished before `before`, with their tasks — except the
   * newest execution of each policy (cron scheduling counts from it, and the API shows it).
   * Returns how many executions went.
   */
  pruneExecutions(before: number): Promise<number>;

  addTask(task: NewTask): Promise<void>;
  tasks(executionId: number, query: { status?: TaskStatus; after?: number; limit: number }): Promise<Task[]>;

  checkpoint(key: string): Promise<{ location: string; offset: number } | null>;
  saveCheckpoint(key: string, location: string, offset: number, now: number): Promise<void>;
  deleteCheckpoint(key: string): Promise<void>;
}
