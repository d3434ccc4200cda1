import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReferrerRecord } from '../../src/core/ports.js';
import type { ArtifactReader } from '../../src/signatures/discover.js';
import { signaturePolicy, TrustCache, type Violation } from '../../src/signatures/policy.js';
import type { SignatureStore, TrustSnapshot } from '../../src/signatures/ports.js';
import { trustMaterial } from '../../src/signatures/trust.js';
import { cosignKeys, cosignSign, simpleSigningPayload } from './support.js';

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * The verdict cache on its own (in-memory fakes of the store and of core's reads, counting
 * every read): a verified pull is served without crypto or reads; counters decide when a
 * verdict is judged again; refusals are re-judged when the counters move.
 */
describe('signature verdict cache', () => {
  const keys = cosignKeys();
  const image = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'d'.repeat(64)}`, size: 3 }],
    }),
  );
  const digest = digestOf(image);

  function world() {
    const reads = { manifests: 0, blobs: 0, state: 0, snapshots: 0 };
    const snapshot: TrustSnapshot = {
      policy: { project: 'team', mode: 'enforce', inheritIndex: true, updatedAt: new Date(), updatedBy: null },
      keys: [{ id: 1, project: 'team', createdAt: new Date(), createdBy: null, ...trustMaterial('release', keys.publicPem) }],
      version: 1,
      signatures: 0,
    };
    const manifests = new Map<string, Buffer>([[digest, image]]);
    const blobs = new Map<string, Buffer>();
    const store: SignatureStore = {
      within: () => ({
        setPolicy: async () => assert.fail(),
        addKey: async () => assert.fail(),
        deleteKey: async () => false,
        signaturesChanged: async () => void snapshot.signatures++,
      }),
      state: async () => (reads.state++, { version: snapshot.version, signatures: snapshot.signatures }),
      snapshot: async () => (reads.snapshots++, structuredClone(snapshot)),
      parents: async () => [],
    };
    const reader: ArtifactReader = {
      manifest: async (_repository, reference) => {
        reads.manifests++;
        const payload = manifests.get(reference);
        return payload
          ? {
              digest: reference.startsWith('sha256:') ? reference : digestOf(payload),
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              size: payload.length,
              payload,
            }
          : null;
      },
      referrers: async (): Promise<ReferrerRecord[]> => [],
      blob: async (_repository, d) => (reads.blobs++, blobs.get(d) ?? null),
    };
    const sign = () => {
      const payload = simpleSigningPayload('team/app', digest);
      blobs.set(digestOf(payload), payload);
      const sig = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'e'.repeat(64)}`, size: 2 },
          layers: [
            {
              mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
              digest: digestOf(payload),
              size: payload.length,
              annotations: { 'dev.cosignproject.cosign/signature': cosignSign(keys.privateKey, payload) },
            },
          ],
        }),
      );
      manifests.set(`${digest.replace(':', '-')}.sig`, sig);
      snapshot.signatures++;
    };
    return { reads, snapshot, reader, store, sign };
  }

  const serve = async (policy: ReturnType<typeof signaturePolicy>): Promise<void> =>
    policy.hooks['manifest.serve']!(
      { repository: 'team/app', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', reference: 'v1', actor: 'dev' },
      null,
    );

  it('a verified manifest is judged once: later pulls read nothing and verify nothing', async () => {
    const w = world();
    w.sign();
    const policy = signaturePolicy(w.store, new TrustCache(w.store, 60_000), w.reader, () => assert.fail('no violation'));
    await serve(policy);
    const afterFirst = { ...w.reads };
    assert.equal(afterFirst.blobs, 1, 'the payload was read once');
    for (let i = 0; i < 1000; i++) await serve(policy);
    assert.deepEqual(w.reads, afterFirst, 'a thousand more pulls: no read, no state query');
  });

  it('a refusal is re-judged at the next pull once a signature arrived; the violation is recorded once', async () => {
    const w = world();
    const violations: Violation[] = [];
    const policy = signaturePolicy(w.store, new TrustCache(w.store, 60_000), w.reader, (v) => violations.push(v));
    await assert.rejects(serve(policy), /no signature found/);
    await assert.rejects(serve(policy), /no signature found/);
    assert.equal(violations.length, 1);
    assert.equal(violations[0]!.mode, 'enforce');
    w.sign();
    await serve(policy);
  });

  it('a key removed elsewhere applies once the counters are compared again (the refresh interval)', async () => {
    const w = world();
    w.sign();
    const policy = signaturePolicy(w.store, new TrustCache(w.store, 20), w.reader, () => undefined);
    await serve(policy);
    w.snapshot.keys = [];
    w.snapshot.version++;
    await new Promise((resolve) => setTimeout(resolve, 30));
    await assert.rejects(serve(policy), /the trust policy has no public key to verify it with/);
  });
});
