import type { Generated, Kysely, Selectable } from 'kysely';
import { RegistryError } from '../core/errors.js';
import type { SecretSealer } from '../core/secrets.js';
import type { RegistryEndpoint, RegistryEndpointInput, RegistryEndpointStore, RegistryKind } from '../registries/ports.js';
import { insertReturningId, isDuplicateKey, writeTransaction, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row type of migrations/0019-registries.ts. */
export interface RegistryEndpointTables {
  registry_endpoints: {
    id: Generated<number>;
    name: string;
    url: string;
    kind: string;
    description: string;
    username: string | null;
    credential: string | null;
    insecure: number;
    ca_bundle: string | null;
    created_at: number;
    updated_at: number;
  };
}

type Db = Kysely<RegistryEndpointTables>;
type Row = Selectable<RegistryEndpointTables['registry_endpoints']>;

/** A unique index refused the row, on any of the three databases. */
function uniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return isDuplicateKey(err) || code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** A sealed credential opens only on its own row. */
function sealContext(id: number): string {
  return `registry_endpoints:${id}:credential`;
}

/**
 * RegistryEndpointStore on Kysely (SQLite, PostgreSQL, MySQL). The credential is sealed with
 * the SecretSealer the composition root passes and opened only when read.
 */
export class KyselyRegistryEndpointStore implements RegistryEndpointStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly sealer: SecretSealer,
  ) {
    this.db = db as unknown as Db;
  }

  private opened(row: Row): RegistryEndpoint {
    const id = Number(row.id);
    return {
      id,
      name: row.name,
      url: row.url,
      kind: row.kind as RegistryKind,
      description: row.description,
      username: row.username,
      credential: row.credential === null ? null : this.sealer.open(row.credential, sealContext(id)),
      insecure: Number(row.insecure) === 1,
      caBundle: row.ca_bundle,
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }

  private static plain(input: RegistryEndpointInput) {
    return {
      name: input.name,
      url: input.url,
      kind: input.kind,
      description: input.description,
      username: input.username,
      insecure: input.insecure ? 1 : 0,
      ca_bundle: input.caBundle,
    };
  }

  async list(): Promise<RegistryEndpoint[]> {
    const rows = await this.db.selectFrom('registry_endpoints').selectAll().orderBy('name').execute();
    return rows.map((r) => this.opened(r));
  }

  async byName(name: string): Promise<RegistryEndpoint | null> {
    const row = await this.db.selectFrom('registry_endpoints').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? this.opened(row) : null;
  }

  async byId(id: number): Promise<RegistryEndpoint | null> {
    const row = await this.db.selectFrom('registry_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? this.opened(row) : null;
  }

  async create(input: RegistryEndpointInput, now: number): Promise<RegistryEndpoint> {
    try {
      return await writeTransaction(this.db, async (trx) => {
        // The id is part of the sealing context: insert, then store the sealed credential on the row.
        const id = await insertReturningId(
          trx
            .insertInto('registry_endpoints')
            .values({ ...KyselyRegistryEndpointStore.plain(input), credential: null, created_at: now, updated_at: now }),
          this.dialect,
        );
        if (input.credential !== null)
          await trx
            .updateTable('registry_endpoints')
            .set({ credential: this.sealer.seal(input.credential, sealContext(id)) })
            .where('id', '=', id)
            .execute();
        return { ...input, id, createdAt: now, updatedAt: now };
      });
    } catch (err) {
      if (uniqueViolation(err)) throw new RegistryError('CONFLICT', `registry endpoint ${input.name} already exists`);
      throw err;
    }
  }

  async update(name: string, input: RegistryEndpointInput, now: number): Promise<RegistryEndpoint | null> {
    const row = await this.db.selectFrom('registry_endpoints').select('id').where('name', '=', name).executeTakeFirst();
    if (!row) return null;
    const id = Number(row.id);
    const credential = input.credential === null ? null : this.sealer.seal(input.credential, sealContext(id));
    await this.db
      .updateTable('registry_endpoints')
      .set({ ...KyselyRegistryEndpointStore.plain(input), credential, updated_at: now })
      .where('id', '=', id)
      .execute();
    return this.byId(id);
  }

  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('registry_endpoints').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async sealStoredSecrets(): Promise<number> {
    const rows = await this.db.selectFrom('registry_endpoints').select(['id', 'credential']).execute();
    let sealed = 0;
    for (const row of rows) {
      const stored = row.credential;
      if (stored === null || !this.sealer.needsSealing(stored)) continue;
      const context = sealContext(Number(row.id));
      const result = await this.db
        .updateTable('registry_endpoints')
        .set({ credential: this.sealer.seal(this.sealer.open(stored, context), context) })
        .where('id', '=', row.id)
        .where('credential', '=', stored)
        .executeTakeFirst();
      sealed += Number(result.numUpdatedRows);
    }
    return sealed;
  }
}
