import type { LogConfig, LogEvent } from 'kysely';
import type { MetadataObserver } from '../metrics/ports.js';

const STATEMENTS = ['select', 'insert', 'update', 'delete'];

/** Kysely's `log` option reporting each statement's latency to `observer` (none without one: no cost when metrics are off). */
export function queryLog(observer: MetadataObserver | undefined): LogConfig | undefined {
  if (!observer) return undefined;
  return (event: LogEvent) => observer.query(statementOf(event.query.sql), event.queryDurationMillis / 1000, event.level === 'error');
}

/** The statement's verb, from its first word (Kysely writes them lower case; "with" queries count as other). */
function statementOf(sql: string): string {
  const verb = sql.trimStart().slice(0, 6).toLowerCase();
  return STATEMENTS.includes(verb) ? verb : 'other';
}
