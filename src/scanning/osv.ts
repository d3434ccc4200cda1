import { z } from 'zod';
import type { StoredAdvisory } from './ports.js';
import { baseEcosystem } from './versions/index.js';

/**
 * The OSV schema (ossf/osv-schema, v1.7), as far as Berth reads it. Unknown fields are kept
 * (passthrough) except `details`; a record the schema refuses is counted and skipped by the
 * importer, never half-stored.
 */

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const timestamp = z.string().refine((s) => RFC3339.test(s) && Number.isFinite(Date.parse(s)), 'an RFC 3339 time');

/** Each event holds exactly one of introduced, fixed, last_affected, limit. */
const event = z
  .object({
    introduced: z.string().min(1).optional(),
    fixed: z.string().min(1).optional(),
    last_affected: z.string().min(1).optional(),
    limit: z.string().min(1).optional(),
  })
  .loose()
  .refine(
    (e) => [e.introduced, e.fixed, e.last_affected, e.limit].filter((v) => v !== undefined).length === 1,
    'an event holds exactly one of introduced, fixed, last_affected, limit',
  );

const range = z
  .object({
    type: z.enum(['SEMVER', 'ECOSYSTEM', 'GIT']),
    repo: z.string().optional(),
    events: z.array(event).min(1),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .loose()
  .refine((r) => r.type !== 'GIT' || (r.repo !== undefined && r.repo !== ''), 'a GIT range names its repo');

const severity = z.object({ type: z.string().min(1), score: z.string().min(1) }).loose();

const affected = z
  .object({
    package: z
      .object({
        // The lengths the database's keys hold (migrations/0012-vulndb.ts).
        ecosystem: z.string().min(1).max(64),
        name: z.string().min(1).max(320),
        purl: z.string().optional(),
      })
      .loose()
      .optional(),
    severity: z.array(severity).optional(),
    ranges: z.array(range).optional(),
    versions: z.array(z.string()).optional(),
    ecosystem_specific: z.record(z.string(), z.unknown()).optional(),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

export const osvRecordSchema = z
  .object({
    schema_version: z.string().optional(),
    id: z
      .string()
      .min(1)
      .max(191)
      .regex(/^[^\s]+$/, 'an id without blanks'),
    modified: timestamp,
    published: timestamp.optional(),
    withdrawn: timestamp.optional(),
    aliases: z.array(z.string()).optional(),
    upstream: z.array(z.string()).optional(),
    related: z.array(z.string()).optional(),
    summary: z.string().optional(),
    details: z.string().optional(),
    severity: z.array(severity).optional(),
    affected: z.array(affected).optional(),
    references: z.array(z.object({ type: z.string(), url: z.string() }).loose()).optional(),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

export type OsvRecord = z.infer<typeof osvRecordSchema>;
export type OsvAffected = z.infer<typeof affected>;
export type OsvRange = z.infer<typeof range>;
export type OsvEvent = z.infer<typeof event>;
export type OsvSeverity = z.infer<typeof severity>;

/**
 * The package name as the matcher looks it up: PyPI names are compared normalised (PEP 503:
 * lower case, runs of `-_.` as one `-`), as OSV and pip do; every other ecosystem as written.
 */
export function packageKey(ecosystem: string, name: string): string {
  if (baseEcosystem(ecosystem) === 'PyPI') return name.toLowerCase().replace(/[-_.]+/g, '-');
  return name;
}

/** A readable reason for a refused record: the first problems zod found, with their paths. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'record'}: ${i.message}`)
    .join('; ');
}

export type ParsedRecord = { ok: true; record: StoredAdvisory } | { ok: false; reason: string };

/** Validates one OSV JSON text and turns it into what the store keeps. */
export function parseOsv(text: string): ParsedRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message})` };
  }
  const parsed = osvRecordSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `not an OSV record: ${describeIssues(parsed.error)}` };
  const { details: _details, ...kept } = parsed.data;
  const packages = (kept.affected ?? []).flatMap((a) =>
    a.package ? [{ ecosystem: a.package.ecosystem, name: packageKey(a.package.ecosystem, a.package.name) }] : [],
  );
  return {
    ok: true,
    record: {
      id: kept.id,
      modified: Date.parse(kept.modified),
      withdrawn: kept.withdrawn === undefined ? null : Date.parse(kept.withdrawn),
      packages,
      document: JSON.stringify(kept),
    },
  };
}
