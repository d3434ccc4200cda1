import type { ManifestReference } from './manifest.js';
import type { MetadataTx } from './ports.js';

/**
 * Domain events: what changed, appended to the durable outbox in the same transaction as the
 * change itself (so an event exists exactly when its change committed). Consumers — GC's
 * review queue today; webhooks, audit export, replication and metrics later — read them in
 * order through src/events. Payloads name repositories and digests, never row ids, so an
 * event means the same thing to any consumer on any replica.
 */
export type DomainEvent =
  | { type: 'repository.created'; repository: string }
  | { type: 'blob.committed'; repository: string; digest: string; size: number }
  | { type: 'blob.mounted'; repository: string; digest: string; from: string | null }
  /** The blob was unlinked from the repository (its bytes may still serve other repositories). */
  | { type: 'blob.deleted'; repository: string; digest: string }
  | {
      type: 'manifest.pushed';
      repository: string;
      digest: string;
      mediaType: string;
      artifactType: string | null;
      subject: string | null;
      size: number;
      /** Tags this push set (empty for a push by digest). */
      tags: string[];
    }
  | { type: 'tag.created'; repository: string; tag: string; digest: string }
  | { type: 'tag.moved'; repository: string; tag: string; digest: string; previous: string }
  | { type: 'tag.deleted'; repository: string; tag: string; digest: string }
  | {
      type: 'manifest.deleted';
      repository: string;
      digest: string;
      /** Tags removed with it. */
      tags: string[];
      /** What it referenced: consumers such as GC need it after the rows are gone. */
      references: ManifestReference[];
      subject: string | null;
    }
  // Account changes (src/auth). Payloads never carry passwords, secrets or hashes.
  | { type: 'user.created'; username: string; admin: boolean }
  /** What changed: the password (the user's refresh tokens were revoked with it) or the admin flag. */
  | { type: 'user.updated'; username: string; changes: ('password' | 'admin')[] }
  /** Its memberships and refresh tokens went with it. */
  | { type: 'user.deleted'; username: string }
  /** `owner`, when set, became its project-admin in the same change (no separate member.set). */
  | { type: 'project.created'; project: string; public: boolean; owner: string | null }
  | { type: 'project.updated'; project: string; public: boolean }
  /** Its members and robots went with it (no separate member.removed / robot.deleted). */
  | { type: 'project.deleted'; project: string }
  | { type: 'member.set'; project: string; username: string; role: string }
  | { type: 'member.removed'; project: string; username: string }
  /** `robot` is the login name (robot$…); `project` null for a system robot. */
  | {
      type: 'robot.created';
      robot: string;
      project: string | null;
      permissions: { project: string; repository: string; actions: string[] }[];
    }
  | { type: 'robot.deleted'; robot: string; project: string | null }
  /** An identity binding (src/auth/bindings.ts): identities of `source` matching `kind` + `subject` hold `role` in `project`. */
  | { type: 'binding.created'; id: number; source: string; kind: string; subject: string; project: string; role: string }
  /** The users of its source lost the grants they held in `project` with it (re-derived at their next login). */
  | { type: 'binding.deleted'; id: number; source: string; kind: string; subject: string; project: string; role: string }
  /** A push raised the project's storage usage across `threshold` % of its limit (src/quotas; quotas.warning). */
  | { type: 'quota.warning'; project: string; used: number; limit: number; threshold: number }
  /** A push was refused: `requested` more bytes would have taken `used` over `limit` (src/quotas; appended after the refusal). */
  | { type: 'quota.exceeded'; project: string; repository: string; requested: number; used: number; limit: number }
  /**
   * A retention run ended (src/retention). `tagsRemoved`: tags it deleted (a dry run: would
   * delete); `manifestsUntagged`: artifacts left without a tag (GC collects them); `bytes`: what
   * GC will then free (blobs no other manifest references).
   */
  | {
      type: 'retention.finished';
      project: string;
      runId: number;
      dryRun: boolean;
      tagsRemoved: number;
      manifestsUntagged: number;
      bytes: number;
    }
  /**
   * An audit entry was written (src/auth; appended in the audit row's own transaction, so the
   * audit sinks of src/audit export every entry). Carries the row: `id` lets a SIEM deduplicate.
   */
  | {
      type: 'audit.recorded';
      id: number;
      /** Epoch milliseconds: when it happened. */
      at: number;
      actor: string;
      action: string;
      target: string;
      project: string | null;
      outcome: AuditOutcome;
      ip: string | null;
      detail?: unknown;
    }
  /**
   * Pulls of a manifest counted by one process since its last flush (core/pulls.ts): one event
   * per manifest per flush (events.pullflushinterval), written with the counts — never one per pull.
   */
  | { type: 'manifest.pulled'; repository: string; digest: string; pulls: number; lastPulledAt: number }
  /** A garbage-collection run completed (not a dry run): what it deleted (src/gc). */
  | { type: 'gc.finished'; manifests: number; links: number; blobs: number; bytesFreed: number; errors: number; durationMs: number }
  /** An artifact was scanned for vulnerabilities (src/scanning): packages matched and the findings counted by severity (Critical…Unknown, total). */
  | {
      type: 'scan.completed';
      repository: string;
      digest: string;
      packages: number;
      summary: Record<string, number>;
      /** Findings with a fixed version (events before this field have none). */ fixable?: number;
    }
  /** A vulnerability scan of an artifact could not complete (no package list, empty database…). */
  | { type: 'scan.failed'; repository: string; digest: string; error: string }
  /** A replication execution ended (src/replication): its policy, outcome and totals (`bytes`: blob bytes sent). */
  | {
      type: 'replication.finished';
      policy: string;
      executionId: number;
      direction: 'push' | 'pull';
      registry: string;
      trigger: string;
      status: string;
      copied: number;
      skipped: number;
      failed: number;
      deleted: number;
      bytes: number;
      durationMs: number;
    };

/** How an audited action ended: done, refused for bad credentials (a failed login), or refused by authorization. */
export type AuditOutcome = 'success' | 'failure' | 'denied';
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['success', 'failure', 'denied'];

export type DomainEventType = DomainEvent['type'];

/** An event as stored in the outbox: its position in the total order, when and by whom. */
export interface StoredEvent {
  /** Position in the outbox's total order (gap-free for consumers: assigned at sequencing). */
  seq: number;
  at: number;
  actor: string | null;
  event: DomainEvent;
}

/** Who caused a change (for events and audit): a user, robot or system name. */
export interface Operation {
  actor?: string;
  /** The client address the change came from (for audit entries a write causes, e.g. a project created by a push). */
  ip?: string;
  /** Why a tag changes when it is not a client's own push or delete (tag history records it; hooks see it). */
  reason?: ChangeReason;
}

/**
 * A change made on a client's behalf: a rollback to an earlier digest, a retention run untagging,
 * or a pull-through cache storing what it fetched from its upstream (a system write that the
 * proxy-cache policy lets through while it refuses users' pushes).
 */
export type ChangeReason = 'restore' | 'retention' | 'proxy-cache';

/**
 * A reader of the outbox (registered in the composition root, run by src/events). It sees
 * every event at least once, in order; after a crash the batch it was handling comes again,
 * so handling must be idempotent.
 */
export interface EventConsumer {
  /** Unique and stable: it names the consumer's durable cursor. */
  name: string;
  /**
   * True: `handle` runs inside the transaction that moves the cursor, so effects written
   * through `tx` (e.g. GC's review queue) happen exactly once. False: `handle` runs first,
   * the cursor moves after it succeeded (effects outside the database, e.g. webhooks).
   */
  transactional: boolean;
  handle(events: StoredEvent[], tx: MetadataTx | null): Promise<void>;
}
