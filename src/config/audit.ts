import { z } from 'zod';

/** RFC 5424 §6.2.1 facility numbers by the names syslog.conf uses. */
export const SYSLOG_FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  security: 13,
  console: 14,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

type FacilityName = keyof typeof SYSLOG_FACILITIES;

/** Which audit entries a sink exports (all when absent), and the name of its cursor. */
const sinkCommon = {
  /** Names the sink's durable cursor (`audit-sink:<name>`); default: its type and destination. A new name starts over from the outbox. */
  name: z.string().min(1).max(100).optional(),
  /** Only these actions (exact names: login, login.failed, access.denied, tag.delete …). */
  actions: z.array(z.string().min(1)).min(1).optional(),
  /** Only these outcomes. */
  outcomes: z
    .array(z.enum(['success', 'failure', 'denied']))
    .min(1)
    .optional(),
};

/** One audit sink: JSON lines to a file (`path: -`: stdout) or stdout, or RFC 5424 syslog over UDP or TCP. */
export const auditSinkSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('file'), path: z.string().min(1), ...sinkCommon }).strict(),
  z.object({ type: z.literal('stdout'), ...sinkCommon }).strict(),
  z
    .object({
      type: z.literal('syslog'),
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535).default(514),
      protocol: z.enum(['udp', 'tcp']).default('udp'),
      /** A facility name (auth, authpriv, local0 … local7 …) or its number 0..23. */
      facility: z
        .union([z.enum(Object.keys(SYSLOG_FACILITIES) as [FacilityName, ...FacilityName[]]), z.number().int().min(0).max(23)])
        .default('authpriv'),
      ...sinkCommon,
    })
    .strict(),
]);

export type AuditSinkConfig = z.infer<typeof auditSinkSchema>;

/** `audit:` — export of the audit log to SIEMs (src/audit, docs/observability.md#audit-export). */
export const auditConfigSchema = z
  .object({ sinks: z.array(auditSinkSchema).default([]) })
  .strict()
  .refine((a) => new Set(a.sinks.map(sinkName)).size === a.sinks.length, {
    message: 'two audit sinks have the same name: give each a distinct name',
    path: ['sinks'],
  })
  .default({ sinks: [] });

/** The sink's name: given, or its type and destination (file:/var/log/berth/audit.jsonl, syslog:tcp://siem:6514). */
export function sinkName(sink: AuditSinkConfig): string {
  if (sink.name) return sink.name;
  if (sink.type === 'syslog') return `syslog:${sink.protocol}://${sink.host}:${sink.port}`;
  return sink.type === 'stdout' || sink.path === '-' ? 'stdout' : `file:${sink.path}`;
}

/** The facility's number. */
export function facilityNumber(facility: FacilityName | number): number {
  return typeof facility === 'number' ? facility : SYSLOG_FACILITIES[facility];
}
