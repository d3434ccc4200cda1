import { sql, type Kysely, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import { projectOf } from '../core/names.js';
import type {
  ScanRecord,
  VulnPolicy,
  VulnPolicyMode,
  VulnPolicySettings,
  VulnPolicySnapshot,
  VulnPolicyState,
  VulnPolicyStore,
  VulnPolicyTxQueries,
  VulnThreshold,
  VulnUnscanned,
} from '../scanning/ports.js';
import { insertOrUpdate, type Dialect } from './dialect.js';
import type { Database } from './tables.js';
import { saveScanRow, type VulnDbTables } from './vulndb-store.js';

/** Row types of migrations/0017-vuln-policies.ts. */
export interface VulnPolicyTables {
  vuln_policies: {
    project: string;
    mode: string;
    severity: string;
    allowlist: string;
    unscanned: string;
    grace_seconds: number;
    inherit_index: number;
    version: number;
    scans: number;
    updated_at: number;
    updated_by: string | null;
  };
}

type VulnPolicyDatabase = Database & VulnPolicyTables & VulnDbTables;
type PolicyRow = VulnPolicyTables['vuln_policies'];

function policyOf(row: PolicyRow): VulnPolicy {
  return {
    project: row.project,
    mode: row.mode as VulnPolicyMode,
    severity: row.severity as VulnThreshold,
    allowlist: JSON.parse(row.allowlist) as string[],
    unscanned: row.unscanned as VulnUnscanned,
    graceSeconds: Number(row.grace_seconds),
    inheritIndex: Number(row.inherit_index) === 1,
    updatedAt: new Date(Number(row.updated_at)),
    updatedBy: row.updated_by,
  };
}

/** VulnPolicyTxQueries on one Kysely transaction (core's, the scanner's or the service's). */
class VulnPolicyTxRows implements VulnPolicyTxQueries {
  constructor(
    private readonly db: Transaction<VulnPolicyDatabase>,
    private readonly dialect: Dialect,
  ) {}

  async setPolicy(project: string, settings: VulnPolicySettings, actor: string | null, at: Date): Promise<VulnPolicy> {
    const row: PolicyRow = {
      project,
      mode: settings.mode,
      severity: settings.severity,
      allowlist: JSON.stringify(settings.allowlist),
      unscanned: settings.unscanned,
      grace_seconds: settings.graceSeconds,
      inherit_index: settings.inheritIndex ? 1 : 0,
      version: 1,
      scans: 0,
      updated_at: at.getTime(),
      updated_by: actor,
    };
    await insertOrUpdate(this.db.insertInto('vuln_policies').values(row), this.dialect, ['project'], {
      mode: row.mode,
      severity: row.severity,
      allowlist: row.allowlist,
      unscanned: row.unscanned,
      grace_seconds: row.grace_seconds,
      inherit_index: row.inherit_index,
      updated_at: row.updated_at,
      updated_by: row.updated_by,
      version: sql`${sql.ref('vuln_policies.version')} + 1`,
    }).execute();
    return policyOf(row);
  }

  async scanChanged(digest: string): Promise<void> {
    const holders = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select('r.name')
      .distinct()
      .where('m.digest', '=', digest)
      .execute();
    const projects = [...new Set(holders.map((h) => projectOf(h.name)))].sort();
    if (projects.length === 0) return;
    await this.db
      .updateTable('vuln_policies')
      .set({ scans: sql`${sql.ref('scans')} + 1` })
      .where('project', 'in', projects)
      .execute();
  }

  async contentRemoved(project: string): Promise<void> {
    await this.db
      .updateTable('vuln_policies')
      .set({ scans: sql`${sql.ref('scans')} + 1` })
      .where('project', '=', project)
      .execute();
  }

  async saveScan(scan: ScanRecord): Promise<void> {
    await saveScanRow(this.db as unknown as Kysely<VulnDbTables>, this.dialect, scan);
  }
}

/** The VulnPolicyStore port on the registry's Kysely database. */
export class KyselyVulnPolicyStore implements VulnPolicyStore {
  private readonly db: Kysely<VulnPolicyDatabase>;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Kysely<VulnPolicyDatabase>;
  }

  within(tx: MetadataTx): VulnPolicyTxQueries {
    return new VulnPolicyTxRows(this.transactionOf(tx) as unknown as Transaction<VulnPolicyDatabase>, this.dialect);
  }

  async state(project: string): Promise<VulnPolicyState | null> {
    const row = await this.db.selectFrom('vuln_policies').select(['version', 'scans']).where('project', '=', project).executeTakeFirst();
    return row ? { version: Number(row.version), scans: Number(row.scans) } : null;
  }

  async snapshot(project: string): Promise<VulnPolicySnapshot> {
    const row = await this.db.selectFrom('vuln_policies').selectAll().where('project', '=', project).executeTakeFirst();
    if (!row) return { policy: null, version: 0, scans: 0 };
    return { policy: policyOf(row), version: Number(row.version), scans: Number(row.scans) };
  }

  async pushedAt(repository: string, digest: string): Promise<number | null> {
    const row = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select('m.created_at')
      .where('r.name', '=', repository)
      .where('m.digest', '=', digest)
      .executeTakeFirst();
    return row ? Number(row.created_at) : null;
  }

  async parents(repository: string, digest: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('manifest_references as r')
      .innerJoin('repositories as repo', 'repo.id', 'r.repository_id')
      .select('r.manifest_digest')
      .where('repo.name', '=', repository)
      .where('r.child_digest', '=', digest)
      .where('r.kind', '=', 'manifest')
      .orderBy('r.manifest_digest')
      .limit(limit)
      .execute();
    return rows.map((r) => r.manifest_digest);
  }
}
