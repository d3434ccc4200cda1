import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyRing } from '../../src/auth/keys.js';
import type { AuthStore } from '../../src/auth/ports.js';
import { KyselyAuthStore } from '../../src/metadata/auth-store.js';
import type { KyselyMetadataStore } from '../../src/metadata/kysely-store.js';
import { openPostgresMetadata } from '../../src/metadata/postgres.js';
import { createTestDatabase, postgresOptions, type TestDatabase } from '../helpers/postgres.js';

/**
 * Token signing keys across replicas, made deterministic: two KeyRings (two replicas) on their
 * own connection pools to one PostgreSQL database. In test/ha/replicas.test.ts replicas that
 * started together sometimes each created a key, and a token signed with one replica's brand-new
 * key was refused by a replica that had loaded the key table less than a second before.
 */

const GRACE_MS = 5 * 60_000 + 30_000;

describe('signing keys shared by replicas (PostgreSQL)', () => {
  let db: TestDatabase;
  const stores: KyselyMetadataStore[] = [];
  let loads = 0;

  async function replicaStore(): Promise<AuthStore> {
    const metadata = await openPostgresMetadata(postgresOptions(db.url));
    stores.push(metadata);
    const store = new KyselyAuthStore(metadata.db);
    // The real store; only counts how often the key table is read.
    const listSigningKeys = store.listSigningKeys.bind(store);
    store.listSigningKeys = () => {
      loads++;
      return listSigningKeys();
    };
    return store;
  }

  before(async () => {
    db = await createTestDatabase('berth_keys');
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await db.drop();
  });

  it('a key another replica created a moment after this one loaded its keys verifies at once; unknown kids cost one reload per second', async () => {
    const verifier = new KeyRing(await replicaStore(), GRACE_MS);
    const signer = new KeyRing(await replicaStore(), GRACE_MS);
    await verifier.init();
    const kid = await signer.rotate(); // right after the verifier's load, as at a concurrent start
    assert.equal((await signer.signingKey()).kid, kid);

    const started = Date.now();
    await verifier.verificationKey({ alg: 'ES256', kid }, { payload: '', signature: '' } as never);
    assert.ok(Date.now() - started < 2_000, 'resolved within about a second');

    const loadsBefore = loads;
    const bogus = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        verifier.verificationKey({ alg: 'ES256', kid: 'no-such-key' }, { payload: '', signature: '' } as never),
      ),
    );
    assert.ok(
      bogus.every((r) => r.status === 'rejected'),
      'an unknown kid is refused',
    );
    assert.equal(loads - loadsBefore, 1, '20 tokens with an unknown kid caused one reload');
  });
});
