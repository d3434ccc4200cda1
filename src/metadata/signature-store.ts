import { sql, type Generated, type Kysely, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type {
  SignatureStore,
  SignatureTxQueries,
  TrustedKey,
  TrustedKeyInput,
  TrustKind,
  TrustMode,
  TrustPolicy,
  TrustPolicySettings,
  TrustSnapshot,
  TrustState,
} from '../signatures/ports.js';
import { insertOrKeep, insertOrUpdate, insertReturningId, type AnyDb, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0010-signatures.ts. */
export interface SignatureTables {
  signature_policies: {
    project: string;
    mode: string;
    inherit_index: number;
    version: number;
    signatures: number;
    updated_at: number;
    updated_by: string | null;
  };
  signature_keys: {
    id: Generated<number>;
    project: string;
    name: string;
    kind: string;
    pem: string;
    fingerprint: string;
    created_at: number;
    created_by: string | null;
  };
}

type SignatureDatabase = Database & SignatureTables;
type Db = AnyDb<SignatureDatabase>;
type PolicyRow = SignatureTables['signature_policies'];
type KeyRow = Omit<SignatureTables['signature_keys'], 'id'> & { id: number };

function policyOf(row: PolicyRow): TrustPolicy {
  return {
    project: row.project,
    mode: row.mode as TrustMode,
    inheritIndex: Number(row.inherit_index) === 1,
    updatedAt: new Date(Number(row.updated_at)),
    updatedBy: row.updated_by,
  };
}

function keyOf(row: KeyRow): TrustedKey {
  return {
    id: Number(row.id),
    project: row.project,
    name: row.name,
    kind: row.kind as TrustKind,
    pem: row.pem,
    fingerprint: row.fingerprint,
    createdAt: new Date(Number(row.created_at)),
    createdBy: row.created_by,
  };
}

async function stateOf(db: Db, project: string): Promise<TrustState | null> {
  const row = await db.selectFrom('signature_policies').select(['version', 'signatures']).where('project', '=', project).executeTakeFirst();
  return row ? { version: Number(row.version), signatures: Number(row.signatures) } : null;
}

/** SignatureTxQueries on one Kysely transaction (core's, or the service's). */
class SignatureTxRows implements SignatureTxQueries {
  constructor(
    private readonly db: Transaction<SignatureDatabase>,
    private readonly dialect: Dialect,
  ) {}

  async setPolicy(project: string, settings: TrustPolicySettings, actor: string | null, at: Date): Promise<TrustPolicy> {
    const row: PolicyRow = {
      project,
      mode: settings.mode,
      inherit_index: settings.inheritIndex ? 1 : 0,
      version: 1,
      signatures: 0,
      updated_at: at.getTime(),
      updated_by: actor,
    };
    await insertOrUpdate(this.db.insertInto('signature_policies').values(row), this.dialect, ['project'], {
      mode: row.mode,
      inherit_index: row.inherit_index,
      updated_at: row.updated_at,
      updated_by: row.updated_by,
      version: sql`${sql.ref('signature_policies.version')} + 1`,
    }).execute();
    return policyOf(row);
  }

  async addKey(project: string, key: TrustedKeyInput, actor: string | null, at: Date): Promise<TrustedKey> {
    const policy: PolicyRow = {
      project,
      mode: 'off',
      inherit_index: 1,
      version: 0,
      signatures: 0,
      updated_at: at.getTime(),
      updated_by: actor,
    };
    await insertOrKeep(this.db.insertInto('signature_policies').values(policy), this.dialect, ['project']).execute();
    const row = {
      project,
      name: key.name,
      kind: key.kind,
      pem: key.pem,
      fingerprint: key.fingerprint,
      created_at: at.getTime(),
      created_by: actor,
    };
    const id = await insertReturningId(this.db.insertInto('signature_keys').values(row), this.dialect);
    await this.bumpVersion(project);
    return keyOf({ ...row, id });
  }

  async deleteKey(project: string, id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('signature_keys').where('project', '=', project).where('id', '=', id).executeTakeFirst();
    const found = Number(result.numDeletedRows) > 0;
    if (found) await this.bumpVersion(project);
    return found;
  }

  async signaturesChanged(project: string): Promise<void> {
    await this.db
      .updateTable('signature_policies')
      .set({ signatures: sql`${sql.ref('signatures')} + 1` })
      .where('project', '=', project)
      .execute();
  }

  private async bumpVersion(project: string): Promise<void> {
    await this.db
      .updateTable('signature_policies')
      .set({ version: sql`${sql.ref('version')} + 1` })
      .where('project', '=', project)
      .execute();
  }
}

/** The SignatureStore port on the registry's Kysely database. */
export class KyselySignatureStore implements SignatureStore {
  private readonly db: Kysely<SignatureDatabase>;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Kysely<SignatureDatabase>;
  }

  within(tx: MetadataTx): SignatureTxQueries {
    return new SignatureTxRows(this.transactionOf(tx) as unknown as Transaction<SignatureDatabase>, this.dialect);
  }

  state(project: string): Promise<TrustState | null> {
    return stateOf(this.db, project);
  }

  async snapshot(project: string): Promise<TrustSnapshot> {
    const row = await this.db.selectFrom('signature_policies').selectAll().where('project', '=', project).executeTakeFirst();
    if (!row) return { policy: null, keys: [], version: 0, signatures: 0 };
    const keys = await this.db.selectFrom('signature_keys').selectAll().where('project', '=', project).orderBy('id').execute();
    return {
      policy: policyOf(row),
      keys: keys.map((k) => keyOf(k as KeyRow)),
      version: Number(row.version),
      signatures: Number(row.signatures),
    };
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
