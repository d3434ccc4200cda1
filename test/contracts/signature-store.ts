import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import type { Stores } from '../../src/stores.js';
import { deploy, type Backend, type Deployment } from './deployment.js';
import { unique } from './fixtures.js';

/**
 * The signature trust-policy port (SignatureStore in src/signatures/ports.ts) on every metadata
 * back end, through the composition root's `stores.signatures`: policies and keys, the counters
 * caches compare with, and the index parents a child inherits from.
 */
export function signatureStoreContract(backend: Backend): void {
  describe(`signature store contract: ${backend}`, () => {
    let deployment: Deployment;
    let stores: Stores;
    before(async () => {
      deployment = await deploy(backend);
      stores = deployment.stores;
    });
    after(async () => deployment?.destroy());

    const project = async () => {
      const name = unique('sig');
      await stores.auth.createProject({ name, public: false, createdBy: 'test' });
      return name;
    };
    const inTx = <T>(work: (q: ReturnType<Stores['signatures']['within']>) => Promise<T>) =>
      stores.metadata.transaction((tx) => work(stores.signatures.within(tx)));
    const pem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;

    it('a project without a policy: no state, an empty snapshot; signaturesChanged creates nothing', async () => {
      const p = await project();
      assert.equal(await stores.signatures.state(p), null);
      await inTx((q) => q.signaturesChanged(p));
      assert.equal(await stores.signatures.state(p), null);
      assert.deepEqual(await stores.signatures.snapshot(p), { policy: null, keys: [], version: 0, signatures: 0 });
    });

    it('policy and keys: every change moves version, signatures moves signatures, keys come back in order', async () => {
      const p = await project();
      await inTx((q) => q.setPolicy(p, { mode: 'audit', inheritIndex: false }, 'alice', new Date(1000)));
      const first = (await stores.signatures.state(p))!;
      const a = await inTx((q) =>
        q.addKey(p, { name: 'a', kind: 'key', pem: pem(), fingerprint: 'f'.repeat(64) }, 'alice', new Date(2000)),
      );
      const b = await inTx((q) =>
        q.addKey(p, { name: 'b', kind: 'certificate', pem: 'PEM', fingerprint: 'e'.repeat(64) }, null, new Date(3000)),
      );
      await assert.rejects(
        inTx((q) => q.addKey(p, { name: 'a', kind: 'key', pem: 'x', fingerprint: '0'.repeat(64) }, null, new Date())),
        'one name per project',
      );
      await inTx((q) => q.setPolicy(p, { mode: 'enforce', inheritIndex: true }, 'bob', new Date(4000)));
      const afterChanges = (await stores.signatures.state(p))!;
      assert.equal(afterChanges.version, first.version + 3);
      assert.equal(afterChanges.signatures, first.signatures);
      await inTx((q) => q.signaturesChanged(p));
      assert.equal((await stores.signatures.state(p))!.signatures, first.signatures + 1);
      const snapshot = await stores.signatures.snapshot(p);
      assert.deepEqual(snapshot.policy, { project: p, mode: 'enforce', inheritIndex: true, updatedAt: new Date(4000), updatedBy: 'bob' });
      assert.deepEqual(
        snapshot.keys.map((k) => [k.id, k.name, k.kind, k.createdBy]),
        [
          [a.id, 'a', 'key', 'alice'],
          [b.id, 'b', 'certificate', null],
        ],
      );
      assert.equal(snapshot.keys[0]!.createdAt.getTime(), 2000);
      assert.equal(await inTx((q) => q.deleteKey(p, a.id)), true);
      assert.equal(await inTx((q) => q.deleteKey(p, a.id)), false);
      assert.equal(await inTx((q) => q.deleteKey(unique('nope'), b.id)), false, "another project's key");
      assert.equal((await stores.signatures.state(p))!.version, afterChanges.version + 1);
    });

    it('adding a key to a project without a policy creates it in mode off', async () => {
      const p = await project();
      await inTx((q) => q.addKey(p, { name: 'k', kind: 'key', pem: pem(), fingerprint: 'a'.repeat(64) }, 'carol', new Date(5000)));
      const snapshot = await stores.signatures.snapshot(p);
      assert.equal(snapshot.policy?.mode, 'off');
      assert.equal(snapshot.keys.length, 1);
    });

    it('deleting the project deletes its policy and keys', async () => {
      const p = await project();
      await inTx((q) => q.addKey(p, { name: 'k', kind: 'key', pem: pem(), fingerprint: 'a'.repeat(64) }, null, new Date()));
      await stores.auth.deleteProject(p);
      assert.equal(await stores.signatures.state(p), null);
    });

    it('parents: the indexes of a repository that list a digest as a child manifest', async () => {
      const repo = `${unique('par')}/app`;
      const child = `sha256:${'1'.repeat(64)}`;
      const index = `sha256:${'2'.repeat(64)}`;
      await stores.metadata.transaction(async (tx) => {
        const { id } = await tx.repositories.ensure(repo);
        await tx.manifests.put(
          {
            repositoryId: id,
            digest: child,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            artifactType: null,
            subjectDigest: null,
            annotations: null,
            size: 2,
            payload: Buffer.from('{}'),
          },
          [],
        );
        await tx.manifests.put(
          {
            repositoryId: id,
            digest: index,
            mediaType: 'application/vnd.oci.image.index.v1+json',
            artifactType: null,
            subjectDigest: null,
            annotations: null,
            size: 2,
            payload: Buffer.from('{}'),
          },
          [{ digest: child, kind: 'manifest' }],
        );
      });
      assert.deepEqual(await stores.signatures.parents(repo, child, 8), [index]);
      assert.deepEqual(await stores.signatures.parents(repo, index, 8), []);
      assert.deepEqual(await stores.signatures.parents(`${repo}-other`, child, 8), []);
    });
  });
}
