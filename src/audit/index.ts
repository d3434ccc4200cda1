import { createHash } from 'node:crypto';
import os from 'node:os';
import { facilityNumber, sinkName, type AuditSinkConfig } from '../config/audit.js';
import type { EventConsumer } from '../core/events.js';
import { auditJson, syslogMessage, type AuditRecorded } from './format.js';
import { FileSink, StdoutSink, TcpSyslogSink, UdpSyslogSink, type AuditSink } from './sinks.js';

export const SINK_CURSOR_PREFIX = 'audit-sink:';
/** event_cursors.name holds 128 characters. */
const MAX_CURSOR_NAME = 128;

/**
 * One outbox consumer per configured sink (audit.sinks). Each exports the `audit.recorded`
 * events after its own durable cursor, then moves it: at least once. In-process retries skip
 * what was already written, so an entry is written twice only when the process dies between
 * writing a batch and moving the cursor (or a connection breaks mid-batch); receivers dedupe by `id`.
 */
export function auditSinkConsumers(sinks: readonly AuditSinkConfig[]): EventConsumer[] {
  return sinks.map((config) => auditSinkConsumer(cursorName(sinkName(config)), openSink(config), formatterOf(config), filterOf(config)));
}

export function auditSinkConsumer(
  name: string,
  sink: AuditSink,
  format: (entry: AuditRecorded) => string,
  accepts: (entry: AuditRecorded) => boolean,
): EventConsumer {
  /** The last outbox position this process wrote: a batch retried after a failure resumes past it. */
  let written = 0;
  return {
    name,
    transactional: false,
    async handle(events) {
      const fresh = events.filter((e) => e.seq > written);
      if (fresh.length === 0) return;
      const entries = fresh.flatMap((e) => (e.event.type === 'audit.recorded' && accepts(e.event) ? [format(e.event)] : []));
      if (entries.length > 0) await sink.write(entries);
      written = fresh.at(-1)!.seq;
    },
  };
}

function openSink(config: AuditSinkConfig): AuditSink {
  if (config.type === 'syslog')
    return config.protocol === 'tcp' ? new TcpSyslogSink(config.host, config.port) : new UdpSyslogSink(config.host, config.port);
  return config.type === 'stdout' || config.path === '-' ? new StdoutSink() : new FileSink(config.path);
}

function formatterOf(config: AuditSinkConfig): (entry: AuditRecorded) => string {
  if (config.type !== 'syslog') return auditJson;
  const origin = { facility: facilityNumber(config.facility), hostname: os.hostname(), procId: String(process.pid) };
  return (entry) => syslogMessage(entry, origin);
}

function filterOf(config: AuditSinkConfig): (entry: AuditRecorded) => boolean {
  const actions = config.actions && new Set(config.actions);
  const outcomes = config.outcomes && new Set<string>(config.outcomes);
  return (entry) => (!actions || actions.has(entry.action)) && (!outcomes || outcomes.has(entry.outcome));
}

/** The sink's cursor name; a name too long for the column is shortened to a hash of it (still stable). */
function cursorName(sink: string): string {
  const name = `${SINK_CURSOR_PREFIX}${sink}`;
  return name.length <= MAX_CURSOR_NAME ? name : `${SINK_CURSOR_PREFIX}${createHash('sha256').update(sink).digest('hex')}`;
}
