import type { DomainEvent } from '../core/events.js';

/** An exported audit entry: the audit row, as GET /api/v1/audit shows it. */
export type AuditRecorded = Extract<DomainEvent, { type: 'audit.recorded' }>;

/** RFC 5424 SD-ID of Berth's structured data: a private name under 32473, the enterprise number RFC 5612 reserves for examples. */
export const AUDIT_SD_ID = 'audit@32473';
export const APP_NAME = 'berth';

/** RFC 5424 severities by outcome: refusals are warnings (4), the rest informational (6). */
const SEVERITY = { success: 6, failure: 4, denied: 4 } as const;

/** The entry as one JSON object (no newline): the fields of GET /api/v1/audit, `at` in RFC 3339. */
export function auditJson(entry: AuditRecorded): string {
  const { type: _type, id, at, ...row } = entry;
  return JSON.stringify({ id, at: new Date(at).toISOString(), ...row });
}

export interface SyslogOrigin {
  facility: number;
  hostname: string;
  procId: string;
}

/**
 * The entry as an RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME berth PROCID MSGID [audit@32473 …] MSG`,
 * MSGID the action, the structured data id, actor, action, resource, outcome (and project and
 * ip when known), MSG the JSON object of auditJson.
 */
export function syslogMessage(entry: AuditRecorded, origin: SyslogOrigin): string {
  const pri = origin.facility * 8 + SEVERITY[entry.outcome];
  const params: [string, string | null][] = [
    ['id', String(entry.id)],
    ['actor', entry.actor],
    ['action', entry.action],
    ['resource', entry.target],
    ['outcome', entry.outcome],
    ['project', entry.project],
    ['ip', entry.ip],
  ];
  const sd = params
    .filter((p): p is [string, string] => p[1] !== null)
    .map(([name, value]) => `${name}="${escapeParamValue(value)}"`)
    .join(' ');
  const header = [
    `<${pri}>1`,
    new Date(entry.at).toISOString(),
    headerField(origin.hostname, 255),
    APP_NAME,
    headerField(origin.procId, 128),
    headerField(entry.action, 32),
  ];
  return `${header.join(' ')} [${AUDIT_SD_ID} ${sd}] ${auditJson(entry)}`;
}

/** A header field: printable US-ASCII without spaces, at most `max` characters; '-' (NILVALUE) when nothing is left. */
function headerField(value: string, max: number): string {
  const printable = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return printable === '' ? '-' : printable;
}

/** RFC 5424 §6.3.3: '"', '\' and ']' in a PARAM-VALUE are escaped with a backslash. */
function escapeParamValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}
