import type { EventConsumer, StoredEvent } from '../core/events.js';
import { projectOf } from '../core/names.js';
import type { AuditRows, DatedAuditEntry } from './ports.js';

export const AUDIT_CONSUMER = 'audit';

/**
 * Deletes made through /v2 (a tag, a manifest, a blob's link) into the audit log. Core records
 * each delete as a domain event in the delete's own transaction, with its actor; this consumer
 * writes the audit entry in the transaction that moves its cursor, so every committed delete
 * gets exactly one entry, even across a crash (the entry appears within events.interval, at the
 * delete's own time). The event carries no client address: the entry's ip is null (the request
 * log line of the DELETE has it). Account changes are audited by the store in their own
 * transaction, not here.
 */
export function auditConsumer(store: Pick<AuditRows, 'auditWithin'>): EventConsumer {
  return {
    name: AUDIT_CONSUMER,
    transactional: true,
    async handle(events, tx) {
      if (!tx) throw new Error('the audit consumer runs inside a transaction');
      const entries = events.flatMap(auditEntryOf);
      if (entries.length > 0) await store.auditWithin(tx, entries);
    },
  };
}

function auditEntryOf(stored: StoredEvent): DatedAuditEntry[] {
  const e = stored.event;
  const base = {
    actor: stored.actor ?? 'anonymous',
    ip: null,
    at: new Date(stored.at),
    project: 'repository' in e ? projectOf(e.repository) : null,
  };
  switch (e.type) {
    case 'tag.deleted':
      return [{ ...base, action: 'tag.delete', target: `${e.repository}:${e.tag}`, detail: { digest: e.digest } }];
    case 'manifest.deleted':
      return [{ ...base, action: 'manifest.delete', target: `${e.repository}@${e.digest}`, detail: { tags: e.tags } }];
    case 'blob.deleted':
      return [{ ...base, action: 'blob.delete', target: `${e.repository}@${e.digest}` }];
    default:
      return [];
  }
}
