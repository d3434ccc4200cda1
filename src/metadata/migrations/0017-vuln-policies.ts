import { type Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Vulnerability pull policies (src/scanning/policy.ts, docs/supply-chain.md): one row per
 * project with a policy — its mode (off, audit, enforce), the severity threshold, the
 * allowlist of vulnerability ids (JSON array), what happens to unscanned artifacts (allow,
 * deny, grace) with the grace period, whether index children inherit an index's scan — and
 * two counters replicas compare their verdict caches with: `version` (bumped by every policy
 * change) and `scans` (bumped in the transaction of every scan result stored for an artifact
 * the project holds, and of every removal of content from the project).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const fk = foreignKeys(ctx.dialect);
  await db.schema
    .createTable('vuln_policies')
    .addColumn('project', t.key(255), (c) => fk.column(c.primaryKey(), 'project', 'projects.name', 'cascade'))
    .addColumn('mode', t.plainKey(16), (c) => c.notNull())
    .addColumn('severity', t.plainKey(16), (c) => c.notNull())
    .addColumn('allowlist', t.text, (c) => c.notNull())
    .addColumn('unscanned', t.plainKey(16), (c) => c.notNull())
    .addColumn('grace_seconds', 'bigint', (c) => c.notNull())
    .addColumn('inherit_index', 'integer', (c) => c.notNull())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('scans', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_by', t.text)
    .$call(fk.table('vuln_policies'))
    .execute();
}
