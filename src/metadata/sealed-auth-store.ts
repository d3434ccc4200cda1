import { sql, type Kysely } from 'kysely';
import type { SigningKeyRecord } from '../auth/ports.js';
import type { SecretSealer } from '../core/secrets.js';
import { KyselyAuthStore, type AuthTables } from './auth-store.js';
import type { Dialect } from './dialect.js';
import type { Database } from './tables.js';

/**
 * The sealed value's context (additional authenticated data): a private key sealed for one
 * kid does not open as another's. Also the subject of the error messages.
 */
export function signingKeyContext(kid: string): string {
  return `signing key ${kid}`;
}

/**
 * The AuthStore with token signing keys sealed at rest (docs/security.md#secrets-at-rest):
 * `private_jwk` is sealed by the composition root's SecretSealer before it reaches the row and
 * opened when read, so the KeyRing and the port contract see plain JWKs as before. Without a
 * secrets key the sealer passes values through, and a sealed row found then fails loudly
 * (SealedSecretError) instead of being taken for a missing key.
 */
export class SealedAuthStore extends KyselyAuthStore {
  private readonly rows: Kysely<AuthTables>;

  constructor(
    db: Kysely<Database>,
    private readonly rowsDialect: Dialect,
    private readonly sealer: SecretSealer,
  ) {
    super(db, rowsDialect);
    this.rows = db as unknown as Kysely<AuthTables>;
  }

  override async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return (await super.listSigningKeys()).map((key) => ({
      ...key,
      privateJwk: this.sealer.open(key.privateJwk, signingKeyContext(key.kid)),
    }));
  }

  override addSigningKey(key: Omit<SigningKeyRecord, 'retiredAt'>): Promise<void> {
    return super.addSigningKey({ ...key, privateJwk: this.sealer.seal(key.privateJwk, signingKeyContext(key.kid)) });
  }

  /**
   * Start-up, with a secrets key: checks that every sealed private key opens with it (a wrong
   * key is a start-up error, before anything is sealed with it) and seals those stored in
   * plain text or sealed with a previous key (`secrets.previouskeys`). Each row is replaced
   * only if it still holds the value read (compare and set), so replicas starting together
   * seal each row once and never overwrite each other. Returns the number of rows it sealed.
   */
  async sealSigningKeys(): Promise<number> {
    if (!this.sealer.enabled) return 0;
    const rows = await this.rows.selectFrom('signing_keys').select(['kid', 'private_jwk']).execute();
    const opened = rows.map((row) => this.sealer.open(row.private_jwk, signingKeyContext(row.kid)));
    let sealed = 0;
    for (const [i, row] of rows.entries()) {
      if (!this.sealer.needsSealing(row.private_jwk)) continue;
      const result = await this.rows
        .updateTable('signing_keys')
        .set({ private_jwk: this.sealer.seal(opened[i]!, signingKeyContext(row.kid)) })
        .where('kid', '=', row.kid)
        .where('private_jwk', '=', row.private_jwk)
        .executeTakeFirst();
      sealed += Number(result.numUpdatedRows);
    }
    // The replaced plain text may still sit in SQLite's write-ahead log: empty it.
    if (sealed > 0 && this.rowsDialect === 'sqlite') await sql`pragma wal_checkpoint(TRUNCATE)`.execute(this.rows);
    return sealed;
  }
}
