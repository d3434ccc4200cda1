import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import type { ManifestReference } from '../../src/core/manifest.js';
import type { ManifestRecord, MetadataStore, UploadRecord } from '../../src/core/ports.js';
import type { OutboxStore } from '../../src/events/ports.js';
import type { JobRunStore } from '../../src/jobs/ports.js';
import { KyselyJobRunStore } from '../../src/metadata/jobs-store.js';
import { migrationNames } from '../../src/metadata/migrate.js';
import { transactionOf, type KyselyMetadataStore } from '../../src/metadata/kysely-store.js';
import { KyselyOutboxStore } from '../../src/metadata/outbox-store.js';

/**
 * The one MetadataStore contract: every adapter (SQLite, PostgreSQL) must pass it
 * unchanged. Tests share one store and isolate themselves by repository name, except
 * the catalog tests, which need a store of their own.
 */
export interface ContractSubject {
  store: MetadataStore;
  /** The outbox and job-history adapters on the same database. */
  outbox: OutboxStore;
  jobs: JobRunStore;
  /** Closes the store and removes its database. */
  destroy(): Promise<void>;
}

export type ContractFactory = () => Promise<ContractSubject>;

/** A subject for a Kysely-backed store: the outbox and job history on the same database. */
export function kyselySubject(store: KyselyMetadataStore, destroy: () => Promise<void>): ContractSubject {
  return {
    store,
    outbox: new KyselyOutboxStore(store.db, store.dialect, transactionOf),
    jobs: new KyselyJobRunStore(store.db, store.dialect),
    destroy,
  };
}

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';

let counter = 0;
/** A repository name no other test uses. */
function repo(label: string): string {
  return `contract/${label}-${++counter}-${randomBytes(3).toString('hex')}`;
}

function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function randomDigest(): string {
  return digestOf(randomBytes(16));
}

/** A manifest as these tests write it: the row, its references and the tags to point at it. */
interface ContractManifest extends Omit<ManifestRecord, 'createdAt'> {
  references: ManifestReference[];
  tags: string[];
}

type PutResult = { ok: true } | { ok: false; missing: ManifestReference[] };

/**
 * The port exercised through small transactions shaped like core's (src/core/registry.ts):
 * each helper is one use of `transaction` with the row adapters, so the contract checks the
 * rows, locks and atomicity every adapter must provide, not core's rules.
 */
function operations(store: MetadataStore) {
  const missingMarker = Symbol('missing');
  return {
    getBlob: (digest: string) => store.repositories.blob(digest),
    getLinkedBlob: (repository: string, digest: string) => store.repositories.linkedBlob(repository, digest),
    repositoriesWithBlob: (digest: string, limit: number) => store.repositories.linking(digest, limit),
    repositoryExists: (repository: string) => store.repositories.exists(repository),
    listRepositories: (page: { limit: number; after?: string }) => store.repositories.list(page),
    commitBlob: (repository: string, digest: string, size: number, uploadId?: string) =>
      store.transaction(async (tx) => {
        await tx.repositories.recordBlob(digest, size);
        assert.equal(await tx.repositories.lockBlob(digest), true);
        const { id } = await tx.repositories.ensure(repository);
        await tx.repositories.link(id, digest);
        if (uploadId) await tx.uploads.finish(uploadId, { repository, digest });
      }),
    linkBlob: (repository: string, digest: string) =>
      store.transaction(async (tx) => {
        if (!(await tx.repositories.lockBlob(digest))) return false;
        const { id } = await tx.repositories.ensure(repository);
        await tx.repositories.link(id, digest);
        return true;
      }),
    unlinkBlob: (repository: string, digest: string) =>
      store.transaction(async (tx) => {
        const id = await tx.repositories.id(repository);
        return id === null ? false : tx.repositories.unlink(id, digest);
      }),
    createUpload: (upload: Omit<UploadRecord, 'updatedAt'>) => store.uploads.create(upload),
    getUpload: (id: string) => store.uploads.get(id),
    updateUpload: (id: string, expected: number, size: number, staging: unknown, writer?: string) =>
      store.uploads.update(id, expected, size, staging, writer),
    claimUpload: (id: string, writer: string, now: number, until: number) => store.uploads.claim(id, writer, now, until),
    unclaimUpload: (id: string, writer: string) => store.uploads.unclaim(id, writer),
    deleteUpload: (id: string) => store.uploads.delete(id),
    listUploadsOlderThan: (cutoff: Date, limit: number) => store.uploads.listOlderThan(cutoff, limit),
    receipt: (id: string) => store.uploads.receipt(id),
    pruneReceipts: (cutoff: Date) => store.uploads.pruneReceipts(cutoff),
    finishThenFail: (id: string, receipt: { repository: string; digest: string }) =>
      store.transaction(async (tx) => {
        await tx.uploads.finish(id, receipt);
        throw new Error('rolled back');
      }),
    async putManifest(m: ContractManifest): Promise<PutResult> {
      try {
        await store.transaction(async (tx) => {
          const existing = await tx.repositories.id(m.repository);
          const missing = existing === null ? m.references : await tx.manifests.missingReferences(existing, m.references);
          if (missing.length > 0) throw { [missingMarker]: missing };
          const id = existing ?? (await tx.repositories.ensure(m.repository)).id;
          const { references: _r, tags: _t, repository: _n, ...row } = m;
          await tx.manifests.put({ ...row, repositoryId: id }, m.references);
          for (const tag of m.tags) await tx.manifests.setTag(id, tag, m.digest);
        });
        return { ok: true };
      } catch (err) {
        if (err && typeof err === 'object' && missingMarker in err)
          return { ok: false, missing: (err as Record<symbol, ManifestReference[]>)[missingMarker]! };
        throw err;
      }
    },
    getManifest: (repository: string, digest: string) => store.manifests.get(repository, digest),
    getManifestByTag: (repository: string, tag: string) => store.manifests.byTag(repository, tag),
    deleteManifest: (repository: string, digest: string) =>
      store.transaction(async (tx) => {
        const id = await tx.repositories.id(repository);
        if (id === null || !(await tx.manifests.lock(id, digest))) return false;
        await tx.manifests.delete(id, digest);
        return true;
      }),
    deleteTag: (repository: string, tag: string) =>
      store.transaction(async (tx) => {
        const id = await tx.repositories.id(repository);
        return id !== null && (await tx.manifests.deleteTag(id, tag)) !== null;
      }),
    deleteTags: (repository: string, tags: string[]) =>
      store.transaction(async (tx) => {
        const id = await tx.repositories.id(repository);
        if (id !== null) await tx.manifests.deleteTags(id, tags);
      }),
    listTags: (repository: string, page: { limit: number; after?: string }) => store.manifests.tags(repository, page),
    listReferrers: (repository: string, subject: string, artifactType?: string) =>
      store.manifests.referrers(repository, subject, artifactType),
    check: () => store.check(),
  };
}

type Operations = ReturnType<typeof operations>;

function manifest(repository: string, fields: Partial<ContractManifest> = {}): ContractManifest {
  const payload = fields.payload ?? Buffer.from(JSON.stringify({ schemaVersion: 2, nonce: randomBytes(8).toString('hex') }));
  return {
    repository,
    digest: digestOf(payload),
    mediaType: MANIFEST_TYPE,
    artifactType: null,
    subjectDigest: null,
    annotations: null,
    size: payload.length,
    payload,
    references: [],
    tags: [],
    ...fields,
  };
}

/** Commits a config and a layer blob into `repository` and returns their references. */
async function blobsIn(store: Operations, repository: string): Promise<ManifestReference[]> {
  const config = randomDigest();
  const layer = randomDigest();
  await store.commitBlob(repository, config, 100);
  await store.commitBlob(repository, layer, 2000);
  return [
    { digest: config, kind: 'config' },
    { digest: layer, kind: 'layer' },
  ];
}

/** Walks every page of a listing with page size `n`, checking `more` on each. */
async function collectPages(list: (after?: string) => Promise<{ items: string[]; more: boolean }>, n: number): Promise<string[][]> {
  const pages: string[][] = [];
  let last: string | undefined;
  for (;;) {
    const page = await list(last);
    assert.ok(page.items.length <= n, `a page holds at most n=${n} items`);
    pages.push(page.items);
    if (!page.more) return pages;
    assert.equal(page.items.length, n, 'a page followed by more is full');
    last = page.items.at(-1);
  }
}

/** Byte order, as PostgreSQL's "C" collation and SQLite's BINARY sort (all names are ASCII). */
function byteOrder(names: string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

export function runMetadataContract(name: string, factory: ContractFactory): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let store: Operations;
    before(async () => {
      subject = await factory();
      store = operations(subject.store);
    });
    after(async () => subject?.destroy());

    describe('blobs', () => {
      it('an unknown blob is null globally and in a repository', async () => {
        const digest = randomDigest();
        assert.equal(await store.getBlob(digest), null);
        assert.equal(await store.getLinkedBlob(repo('none'), digest), null);
      });

      it('commitBlob records the blob and links it into that repository only', async () => {
        const [a, b] = [repo('a'), repo('b')];
        const digest = randomDigest();
        await store.commitBlob(a, digest, 1234);
        assert.deepEqual(await store.getBlob(digest), { size: 1234 });
        assert.deepEqual(await store.getLinkedBlob(a, digest), { size: 1234 });
        assert.equal(await store.getLinkedBlob(b, digest), null);
        assert.equal(await store.repositoryExists(a), true);
        assert.equal(await store.repositoryExists(b), false);
      });

      it('commitBlob is idempotent', async () => {
        const r = repo('idem');
        const digest = randomDigest();
        await store.commitBlob(r, digest, 10);
        await store.commitBlob(r, digest, 10);
        assert.deepEqual(await store.getLinkedBlob(r, digest), { size: 10 });
        assert.deepEqual(await store.repositoriesWithBlob(digest, 10), [r]);
      });

      it('sizes beyond 32 bits come back as exact numbers', async () => {
        const r = repo('big');
        const digest = randomDigest();
        const size = 5 * 2 ** 30 + 7;
        await store.commitBlob(r, digest, size);
        const got = await store.getLinkedBlob(r, digest);
        assert.equal(typeof got?.size, 'number');
        assert.equal(got?.size, size);
      });

      it('commitBlob deletes the upload session it completes', async () => {
        const r = repo('commit-upload');
        const id = randomBytes(8).toString('hex');
        await store.createUpload({ id, repository: r, size: 0, staging: null, createdAt: new Date() });
        await store.commitBlob(r, randomDigest(), 5, id);
        assert.equal(await store.getUpload(id), null);
      });

      it('commitBlob leaves a receipt of what the session committed, pruned by age; a rolled-back commit leaves none', async () => {
        const r = repo('receipt');
        const id = randomBytes(8).toString('hex');
        const digest = randomDigest();
        assert.equal(await store.receipt(id), null);
        await store.createUpload({ id, repository: r, size: 0, staging: null, createdAt: new Date() });
        await store.commitBlob(r, digest, 5, id);
        assert.deepEqual(await store.receipt(id), { repository: r, digest });
        // Only receipts finished before the cutoff go.
        assert.equal(await store.pruneReceipts(new Date(Date.now() - 60_000)), 0);
        assert.deepEqual(await store.receipt(id), { repository: r, digest });
        assert.ok((await store.pruneReceipts(new Date(Date.now() + 60_000))) >= 1);
        assert.equal(await store.receipt(id), null);
        const rolledBack = randomBytes(8).toString('hex');
        await store.createUpload({ id: rolledBack, repository: r, size: 0, staging: null, createdAt: new Date() });
        await assert.rejects(store.finishThenFail(rolledBack, { repository: r, digest }), /rolled back/);
        assert.equal(await store.receipt(rolledBack), null);
        assert.notEqual(await store.getUpload(rolledBack), null);
      });

      it('linkBlob of an unknown blob answers false and creates nothing', async () => {
        const r = repo('link-unknown');
        assert.equal(await store.linkBlob(r, randomDigest()), false);
        assert.equal(await store.repositoryExists(r), false);
      });

      it('linkBlob mounts a known blob; repositoriesWithBlob lists holders in order, up to the limit', async () => {
        const [src, dst1, dst2] = [repo('src'), repo('dst'), repo('dst')];
        const digest = randomDigest();
        await store.commitBlob(src, digest, 42);
        assert.equal(await store.linkBlob(dst1, digest), true);
        assert.equal(await store.linkBlob(dst2, digest), true);
        assert.equal(await store.linkBlob(dst2, digest), true, 'linking twice is fine');
        assert.deepEqual(await store.getLinkedBlob(dst1, digest), { size: 42 });
        const holders = byteOrder([src, dst1, dst2]);
        assert.deepEqual(await store.repositoriesWithBlob(digest, 10), holders);
        assert.deepEqual(await store.repositoriesWithBlob(digest, 2), holders.slice(0, 2));
      });

      it('unlinkBlob removes only that link, once', async () => {
        const [a, b] = [repo('unlink'), repo('unlink')];
        const digest = randomDigest();
        await store.commitBlob(a, digest, 7);
        await store.linkBlob(b, digest);
        assert.equal(await store.unlinkBlob(a, digest), true);
        assert.equal(await store.unlinkBlob(a, digest), false);
        assert.equal(await store.unlinkBlob(repo('never'), digest), false);
        assert.equal(await store.getLinkedBlob(a, digest), null);
        assert.deepEqual(await store.getLinkedBlob(b, digest), { size: 7 });
        assert.deepEqual(await store.getBlob(digest), { size: 7 }, 'the blob itself stays known');
      });
    });

    describe('uploads', () => {
      it('createUpload / getUpload round-trip every field', async () => {
        const id = randomBytes(8).toString('hex');
        const createdAt = new Date(Date.now() - 5000);
        const staging = { path: '/x/y', parts: [{ n: 1, etag: '"abc"' }] };
        await store.createUpload({ id, repository: repo('up'), size: 0, staging, createdAt });
        const got = await store.getUpload(id);
        assert.ok(got);
        assert.equal(got.size, 0);
        assert.deepEqual(got.staging, staging);
        assert.equal(got.createdAt.getTime(), createdAt.getTime());
        assert.equal(got.updatedAt.getTime(), createdAt.getTime());
        assert.equal(await store.getUpload('no-such-upload'), null);
      });

      it('updateUpload is a compare-and-set on the size', async () => {
        const id = randomBytes(8).toString('hex');
        await store.createUpload({ id, repository: repo('cas'), size: 0, staging: { v: 0 }, createdAt: new Date() });
        assert.equal(await store.updateUpload(id, 0, 100, { v: 1 }), true);
        assert.equal(await store.updateUpload(id, 0, 200, { v: 2 }), false, 'a stale expected size is refused');
        const got = await store.getUpload(id);
        assert.equal(got?.size, 100);
        assert.deepEqual(got?.staging, { v: 1 });
        assert.equal(await store.updateUpload('no-such-upload', 0, 1, null), false);
      });

      it('claimUpload: one writer at a time across processes; renewals, expiry, unclaim, and the freeing size update', async () => {
        const id = randomBytes(8).toString('hex');
        await store.createUpload({ id, repository: repo('claim'), size: 0, staging: null, createdAt: new Date() });
        const now = Date.now();
        assert.equal(await store.claimUpload(id, 'a', now, now + 10_000), true);
        assert.equal(await store.claimUpload(id, 'b', now, now + 10_000), false, 'held by a');
        assert.equal(await store.claimUpload(id, 'a', now + 1, now + 20_000), true, 'a renews');
        assert.equal(await store.claimUpload(id, 'b', now + 15_000, now + 30_000), false, 'a renewed past this instant');
        assert.equal(await store.claimUpload(id, 'b', now + 20_001, now + 30_000), true, 'a ran out: b takes over');
        assert.equal(await store.updateUpload(id, 0, 10, null, 'a'), false, 'a no longer holds it: its bytes are not recorded');
        assert.equal(await store.updateUpload(id, 0, 10, null, 'b'), true, 'the holder records its bytes');
        assert.equal(await store.claimUpload(id, 'c', now + 20_002, now + 40_000), true, 'that update freed the session');
        await store.unclaimUpload(id, 'b');
        assert.equal(await store.claimUpload(id, 'd', now + 20_003, now + 40_000), false, 'unclaim by a non-holder changes nothing');
        await store.unclaimUpload(id, 'c');
        assert.equal(await store.claimUpload(id, 'd', now + 20_003, now + 40_000), true);
        const racers = await Promise.all(['e', 'f', 'g', 'h'].map((w) => store.claimUpload(id, w, now + 40_001, now + 50_000)));
        assert.equal(racers.filter(Boolean).length, 1, 'of writers racing for an expired claim exactly one wins');
        assert.equal(await store.claimUpload('no-such-upload', 'a', now, now + 1), false);
      });

      it('concurrent updates from the same size: exactly one wins', async () => {
        const id = randomBytes(8).toString('hex');
        await store.createUpload({ id, repository: repo('race'), size: 0, staging: null, createdAt: new Date() });
        const results = await Promise.all([1, 2, 3, 4, 5].map((n) => store.updateUpload(id, 0, n * 10, { n })));
        assert.equal(results.filter(Boolean).length, 1);
        const winner = results.indexOf(true) + 1;
        assert.equal((await store.getUpload(id))?.size, winner * 10);
      });

      it('deleteUpload answers true once', async () => {
        const id = randomBytes(8).toString('hex');
        await store.createUpload({ id, repository: repo('del'), size: 0, staging: null, createdAt: new Date() });
        assert.equal(await store.deleteUpload(id), true);
        assert.equal(await store.deleteUpload(id), false);
        assert.equal(await store.getUpload(id), null);
      });

      it('listUploadsOlderThan returns stale sessions, oldest first, up to the limit', async () => {
        const r = repo('stale');
        const ids = ['old-1', 'old-2', 'old-3'].map((label) => `${label}-${randomBytes(4).toString('hex')}`);
        // Far in the past, so sessions created by other tests are never older.
        for (const [i, id] of ids.entries()) {
          await store.createUpload({ id, repository: r, size: 0, staging: null, createdAt: new Date(Date.UTC(2001, 0, 1 + i)) });
        }
        await store.createUpload({
          id: `fresh-${randomBytes(4).toString('hex')}`,
          repository: r,
          size: 0,
          staging: null,
          createdAt: new Date(Date.UTC(2001, 6, 1)),
        });
        const cutoff = new Date(Date.UTC(2001, 1, 1));
        assert.deepEqual(
          (await store.listUploadsOlderThan(cutoff, 10)).map((u) => u.id),
          ids,
        );
        assert.deepEqual(
          (await store.listUploadsOlderThan(cutoff, 2)).map((u) => u.id),
          ids.slice(0, 2),
        );
        // An update refreshes the session: it is no longer stale.
        assert.equal(await store.updateUpload(ids[0]!, 0, 1, null), true);
        assert.deepEqual(
          (await store.listUploadsOlderThan(cutoff, 10)).map((u) => u.id),
          ids.slice(1),
        );
        for (const id of ids) await store.deleteUpload(id);
      });
    });

    describe('manifests and tags', () => {
      it('putManifest with missing references answers {ok:false, missing} and stores nothing', async () => {
        const r = repo('missing');
        const [config, layer] = await blobsIn(store, r);
        const absent: ManifestReference = { digest: randomDigest(), kind: 'layer' };
        const m = manifest(r, { references: [config!, absent, layer!], tags: ['v1'] });
        assert.deepEqual(await store.putManifest(m), { ok: false, missing: [absent] });
        assert.equal(await store.getManifest(r, m.digest), null);
        assert.equal(await store.getManifestByTag(r, 'v1'), null);
        assert.deepEqual(await store.listTags(r, { limit: 10 }), { items: [], more: false });
      });

      it('a refused manifest does not create its repository (the catalog stays unchanged)', async () => {
        const r = repo('refused');
        const absent: ManifestReference = { digest: randomDigest(), kind: 'config' };
        assert.deepEqual(await store.putManifest(manifest(r, { references: [absent], tags: ['v1'] })), { ok: false, missing: [absent] });
        assert.equal(await store.repositoryExists(r), false);
      });

      it('a blob linked only to another repository counts as missing', async () => {
        const [a, b] = [repo('other'), repo('other')];
        const refs = await blobsIn(store, a);
        const result = await store.putManifest(manifest(b, { references: refs }));
        assert.equal(result.ok, false);
        assert.deepEqual(!result.ok && result.missing, refs);
      });

      it('putManifest stores every field; the manifest resolves by digest and by tag', async () => {
        const r = repo('put');
        const refs = await blobsIn(store, r);
        const subject = manifest(r);
        assert.deepEqual(await store.putManifest(subject), { ok: true });
        const m = manifest(r, {
          references: refs,
          tags: ['v1', 'latest'],
          artifactType: 'application/vnd.example+type',
          subjectDigest: subject.digest,
          annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
        });
        const before = Date.now();
        assert.deepEqual(await store.putManifest(m), { ok: true });
        for (const got of [
          await store.getManifest(r, m.digest),
          await store.getManifestByTag(r, 'v1'),
          await store.getManifestByTag(r, 'latest'),
        ]) {
          assert.ok(got);
          assert.equal(got.repository, r);
          assert.equal(got.digest, m.digest);
          assert.equal(got.mediaType, MANIFEST_TYPE);
          assert.equal(got.artifactType, 'application/vnd.example+type');
          assert.equal(got.subjectDigest, subject.digest);
          assert.deepEqual(got.annotations, m.annotations);
          assert.equal(got.size, m.size);
          assert.ok(Buffer.isBuffer(got.payload));
          assert.deepEqual(got.payload, m.payload);
          assert.ok(got.createdAt.getTime() >= before - 1000 && got.createdAt.getTime() <= Date.now() + 1000);
        }
        assert.equal(await store.getManifest(repo('elsewhere'), m.digest), null);
        assert.equal(await store.getManifestByTag(r, 'nope'), null);
      });

      it('payload bytes survive exactly, including non-UTF-8 bytes', async () => {
        const r = repo('bytes');
        const payload = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0x00, 0xff, 0xfe, 0x80]), Buffer.from('"}')]);
        const m = manifest(r, { payload, size: payload.length, digest: digestOf(payload) });
        assert.deepEqual(await store.putManifest(m), { ok: true });
        assert.deepEqual((await store.getManifest(r, m.digest))?.payload, payload);
      });

      it('putManifest of an existing manifest is idempotent and adds its tags', async () => {
        const r = repo('again');
        const m = manifest(r, { tags: ['a'] });
        assert.deepEqual(await store.putManifest(m), { ok: true });
        assert.deepEqual(await store.putManifest({ ...m, tags: ['b'] }), { ok: true });
        assert.deepEqual((await store.listTags(r, { limit: 10 })).items, ['a', 'b']);
      });

      it('an index needs its child manifests in the repository', async () => {
        const r = repo('index');
        const child = manifest(r, { references: await blobsIn(store, r) });
        const index = manifest(r, { mediaType: INDEX_TYPE, references: [{ digest: child.digest, kind: 'manifest' }], tags: ['multi'] });
        assert.deepEqual(await store.putManifest(index), { ok: false, missing: [{ digest: child.digest, kind: 'manifest' }] });
        assert.deepEqual(await store.putManifest(child), { ok: true });
        assert.deepEqual(await store.putManifest(index), { ok: true });
        assert.equal((await store.getManifestByTag(r, 'multi'))?.mediaType, INDEX_TYPE);
      });

      it('pushing a tag again moves it to the new manifest', async () => {
        const r = repo('move');
        const [m1, m2] = [manifest(r, { tags: ['latest', 'v1'] }), manifest(r, { tags: ['latest'] })];
        await store.putManifest(m1);
        await store.putManifest(m2);
        assert.equal((await store.getManifestByTag(r, 'latest'))?.digest, m2.digest);
        assert.equal((await store.getManifestByTag(r, 'v1'))?.digest, m1.digest);
        assert.deepEqual((await store.listTags(r, { limit: 10 })).items, ['latest', 'v1']);
      });

      it("deleteManifest removes the manifest and its tags, not other manifests' tags", async () => {
        const r = repo('delete');
        const [m1, m2] = [manifest(r, { tags: ['a', 'b'], references: await blobsIn(store, r) }), manifest(r, { tags: ['c'] })];
        await store.putManifest(m1);
        await store.putManifest(m2);
        assert.equal(await store.deleteManifest(r, m1.digest), true);
        assert.equal(await store.getManifest(r, m1.digest), null);
        assert.equal(await store.getManifestByTag(r, 'a'), null);
        assert.deepEqual((await store.listTags(r, { limit: 10 })).items, ['c']);
        assert.equal(await store.deleteManifest(r, m1.digest), false);
        assert.equal(await store.deleteManifest(repo('never'), m1.digest), false);
        assert.deepEqual(await store.putManifest(m1), { ok: true }, 'it can be pushed again');
      });

      it('deleteTag removes the tag only; the manifest stays reachable by digest', async () => {
        const r = repo('untag');
        const m = manifest(r, { tags: ['x', 'y'] });
        await store.putManifest(m);
        assert.equal(await store.deleteTag(r, 'x'), true);
        assert.equal(await store.deleteTag(r, 'x'), false);
        assert.equal(await store.deleteTag(repo('never'), 'x'), false);
        assert.equal(await store.getManifestByTag(r, 'x'), null);
        assert.equal((await store.getManifest(r, m.digest))?.digest, m.digest);
        assert.deepEqual((await store.listTags(r, { limit: 10 })).items, ['y']);
      });

      it('deleteTags removes the named tags (absent ones ignored) and leaves the others and the manifest', async () => {
        const r = repo('untag-many');
        const m = manifest(r, { tags: ['a', 'b', 'c', 'd'] });
        await store.putManifest(m);
        await store.deleteTags(r, ['a', 'c', 'nope']);
        await store.deleteTags(r, []);
        assert.deepEqual((await store.listTags(r, { limit: 10 })).items, ['b', 'd']);
        assert.equal((await store.getManifest(r, m.digest))?.digest, m.digest);
      });

      it('concurrent pushes into a new repository all succeed and create it once', async () => {
        const r = repo('concurrent');
        const ms = Array.from({ length: 8 }, (_, i) => manifest(r, { tags: [`t${i}`] }));
        const results = await Promise.all(ms.map((m) => store.putManifest(m)));
        assert.ok(results.every((x) => x.ok));
        assert.equal((await store.listTags(r, { limit: 100 })).items.length, 8);
      });
    });

    describe('listings', () => {
      // Uppercase sorts before lowercase, '-' < '.' < digits < '_' in byte order; a
      // linguistic collation (en_US) would interleave them and break `last` pagination.
      const TAGS = ['latest', 'Latest', 'v1', 'V1', 'a-b', 'a.b', 'a_b', 'ab', 'a', 'A', '_x', '1.0', '10', '9', 'a-', 'z'];

      it('listTags pages in byte order with keyset pagination and an exact `more`', async () => {
        const r = repo('tags');
        await store.putManifest(manifest(r, { tags: TAGS }));
        const sorted = byteOrder(TAGS);
        assert.deepEqual((await store.listTags(r, { limit: 100 })).items, sorted);
        for (const n of [1, 3, TAGS.length]) {
          const pages = await collectPages((last) => store.listTags(r, { limit: n, after: last }), n);
          assert.deepEqual(pages.flat(), sorted, `n=${n}`);
        }
        assert.deepEqual(
          await store.listTags(r, { limit: TAGS.length }),
          { items: sorted, more: false },
          'a page that ends exactly at the end has more=false',
        );
        assert.deepEqual(await store.listTags(r, { limit: TAGS.length - 1 }), { items: sorted.slice(0, -1), more: true });
      });

      it('listTags `after` a value that is not a tag starts at the next one', async () => {
        const r = repo('tags-after');
        await store.putManifest(manifest(r, { tags: TAGS }));
        const sorted = byteOrder(TAGS);
        assert.deepEqual((await store.listTags(r, { limit: 3, after: 'Lz' })).items, sorted.filter((t) => t > 'Lz').slice(0, 3));
        assert.deepEqual(await store.listTags(r, { limit: 3, after: 'zzz' }), { items: [], more: false });
        assert.deepEqual(await store.listTags(repo('unknown'), { limit: 3 }), { items: [], more: false });
      });
    });

    describe('catalog (a store of its own)', () => {
      let own: ContractSubject;
      before(async () => {
        own = await factory();
      });
      after(async () => own?.destroy());

      it('listRepositories pages every repository in byte order', async () => {
        const names = ['b', 'a', 'a-b', 'a.b', 'a/b', 'a_b', 'ab', 'a0', 'library/ubuntu', 'library-x/y', 'z/z/z'];
        for (const name of names) await operations(own.store).commitBlob(name, randomDigest(), 1);
        const sorted = byteOrder(names);
        assert.deepEqual(await operations(own.store).listRepositories({ limit: 100 }), { items: sorted, more: false });
        for (const n of [1, 4, names.length]) {
          const pages = await collectPages((last) => operations(own.store).listRepositories({ limit: n, after: last }), n);
          assert.deepEqual(pages.flat(), sorted, `n=${n}`);
        }
        assert.deepEqual(await operations(own.store).listRepositories({ limit: 2, after: 'a/b' }), {
          items: sorted.slice(sorted.indexOf('a/b') + 1, sorted.indexOf('a/b') + 3),
          more: true,
        });
        for (const name of names) assert.equal(await operations(own.store).repositoryExists(name), true);
        assert.equal(await operations(own.store).repositoryExists('a/c'), false);
      });
    });

    describe('referrers', () => {
      it('listReferrers lists manifests whose subject is the digest, filtered by artifactType', async () => {
        const [r, other] = [repo('ref'), repo('ref-other')];
        const subject = manifest(r);
        await store.putManifest(subject);
        const sig = manifest(r, { subjectDigest: subject.digest, artifactType: 'application/vnd.example.sig', annotations: { a: '1' } });
        const sbom = manifest(r, { subjectDigest: subject.digest, artifactType: 'application/vnd.example.sbom' });
        const plain = manifest(r, { subjectDigest: subject.digest });
        const unrelated = manifest(r, { artifactType: 'application/vnd.example.sig' });
        const elsewhere = manifest(other, { subjectDigest: subject.digest, artifactType: 'application/vnd.example.sig' });
        for (const m of [sig, sbom, plain, unrelated, elsewhere]) assert.deepEqual(await store.putManifest(m), { ok: true });

        const all = await store.listReferrers(r, subject.digest);
        const expected = [sig, sbom, plain]
          .map((m) => ({
            digest: m.digest,
            mediaType: m.mediaType,
            artifactType: m.artifactType,
            size: m.size,
            annotations: m.annotations,
          }))
          .sort((a, b) => (a.digest < b.digest ? -1 : 1));
        assert.deepEqual(all, expected);
        assert.deepEqual(
          (await store.listReferrers(r, subject.digest, 'application/vnd.example.sig')).map((x) => x.digest),
          [sig.digest],
        );
        assert.deepEqual(await store.listReferrers(r, subject.digest, 'application/vnd.none'), []);
        assert.deepEqual(await store.listReferrers(r, randomDigest()), []);
        assert.deepEqual(
          (await store.listReferrers(other, subject.digest)).map((x) => x.digest),
          [elsewhere.digest],
          'a subject need not exist in the repository',
        );
      });

      it('deleting a referrer removes it from the list', async () => {
        const r = repo('ref-del');
        const subject = manifest(r);
        const sig = manifest(r, { subjectDigest: subject.digest, artifactType: 'application/vnd.example.sig' });
        await store.putManifest(subject);
        await store.putManifest(sig);
        assert.equal((await store.listReferrers(r, subject.digest)).length, 1);
        await store.deleteManifest(r, sig.digest);
        assert.deepEqual(await store.listReferrers(r, subject.digest), []);
      });
    });

    describe('transactions and the outbox', () => {
      it('two transactions that lock the same rows in opposite orders both commit: the one the database aborts for the deadlock is run again', async () => {
        const r = repo('deadlock');
        const [first, second] = [randomDigest(), randomDigest()];
        await store.commitBlob(r, first, 1);
        await store.commitBlob(r, second, 1);
        const id = (await subject.store.transaction((tx) => tx.repositories.ensure(r))).id;
        // Each locks one link row (an upsert), waits until the other holds its own (or 500 ms: on
        // SQLite the second cannot begin before the first ends), then locks the other's.
        const holding = { a: false, b: false };
        const attempts = { a: 0, b: 0 };
        const otherHolds = async (other: 'a' | 'b') => {
          for (const start = Date.now(); !holding[other] && Date.now() - start < 500;)
            await new Promise((resolve) => setTimeout(resolve, 5));
        };
        const crosswise = (me: 'a' | 'b', other: 'a' | 'b', [mine, theirs]: string[]) =>
          subject.store.transaction(async (tx) => {
            attempts[me]++;
            await tx.repositories.link(id, mine!);
            holding[me] = true;
            await otherHolds(other);
            await tx.repositories.link(id, theirs!);
            return attempts[me];
          });
        await Promise.all([crosswise('a', 'b', [first, second]), crosswise('b', 'a', [second, first])]);
        const dialect = (subject.store as KyselyMetadataStore).dialect;
        if (dialect === 'sqlite') assert.deepEqual(attempts, { a: 1, b: 1 }, 'SQLite runs writers one at a time');
        else
          assert.equal(
            attempts.a + attempts.b,
            3,
            `${dialect}: one of the two was aborted for the deadlock and ran again (${JSON.stringify(attempts)})`,
          );
        assert.deepEqual(await store.getLinkedBlob(r, first), { size: 1 });
      });

      it('a transaction that throws leaves no row and no event behind', async () => {
        const r = repo('rollback');
        const before = await subject.outbox.status();
        await assert.rejects(
          subject.store.transaction(async (tx) => {
            await tx.repositories.ensure(r);
            await tx.events.append([{ type: 'repository.created', repository: r }], 'alice');
            throw new Error('refused');
          }),
          /refused/,
        );
        assert.equal(await subject.store.repositories.exists(r), false);
        assert.deepEqual(await subject.outbox.status(), before);
      });

      it('events are positioned once, read in order after a cursor, and pruned only when every consumer passed them', async () => {
        const r = repo('events');
        await subject.outbox.sequence(10_000);
        const start = (await subject.outbox.status()).lastSeq;
        for (let i = 0; i < 3; i++) {
          await subject.store.transaction((tx) =>
            tx.events.append([{ type: 'tag.created', repository: r, tag: `t${i}`, digest: randomDigest() }], i === 0 ? 'alice' : null),
          );
        }
        assert.equal((await subject.outbox.status()).unsequenced, 3);
        assert.deepEqual(await subject.outbox.read(start, 10), [], 'unpositioned events are not delivered');
        assert.equal(await subject.outbox.sequence(2), 2);
        assert.equal(await subject.outbox.sequence(10), 1);
        assert.equal(await subject.outbox.sequence(10), 0, 'each event is positioned once');
        const events = await subject.outbox.read(start, 10);
        assert.deepEqual(
          events.map((e) => e.seq),
          [start + 1, start + 2, start + 3],
        );
        assert.deepEqual(
          events.map((e) => (e.event as { tag: string }).tag),
          ['t0', 't1', 't2'],
        );
        assert.equal(events[0]!.actor, 'alice');
        assert.equal(events[1]!.actor, null);
        assert.ok(events.every((e) => Math.abs(e.at - Date.now()) < 60_000));

        const [a, b] = [`contract-a-${counter}`, `contract-b-${counter}`];
        assert.equal(await subject.outbox.position(a), 0);
        await subject.outbox.advance(a, start + 3);
        await subject.outbox.advance(b, start + 1);
        assert.equal(await subject.outbox.position(a), start + 3);
        assert.ok((await subject.outbox.prune([a, b], Date.now() + 1000)) >= 1);
        assert.equal((await subject.outbox.read(0, 1))[0]?.seq, start + 2, 'everything both consumers passed is gone');
        assert.deepEqual(
          (await subject.outbox.read(start, 10)).map((e) => e.seq),
          [start + 2, start + 3],
          'what b has not passed stays',
        );
        assert.equal(await subject.outbox.prune([a, b], 0), 0, 'nothing younger than the cutoff goes');
      });

      it('a cursor moved inside a transaction moves only if it commits', async () => {
        const name = `contract-tx-${counter}`;
        await assert.rejects(
          subject.store.transaction(async (tx) => {
            await subject.outbox.advance(name, 42, tx);
            throw new Error('rolled back');
          }),
        );
        assert.equal(await subject.outbox.position(name), 0);
        await subject.store.transaction((tx) => subject.outbox.advance(name, 42, tx));
        assert.equal(await subject.outbox.position(name), 42);
      });

      it('pull counts add up per manifest and keep the latest time', async () => {
        const r = repo('pulls');
        const digest = randomDigest();
        await store.commitBlob(r, randomDigest(), 1);
        await subject.store.recordPulls([{ repository: r, digest, pulls: 2, lastPulledAt: 2000 }]);
        await subject.store.recordPulls([
          { repository: r, digest, pulls: 3, lastPulledAt: 1000 },
          { repository: repo('no-such-repository'), digest, pulls: 1, lastPulledAt: 1 },
        ]);
        const db = (subject.store as KyselyMetadataStore).db as unknown as Kysely<{
          pull_stats: { digest: string; pulls: number; last_pulled_at: number };
        }>;
        const row = await db.selectFrom('pull_stats').select(['pulls', 'last_pulled_at']).where('digest', '=', digest).execute();
        assert.deepEqual(
          row.map((x) => ({ pulls: Number(x.pulls), last: Number(x.last_pulled_at) })),
          [{ pulls: 5, last: 2000 }],
        );
      });

      it('job runs are recorded, listed newest first and pruned keeping the newest', async () => {
        const job = `contract-job-${counter}`;
        const first = await subject.jobs.start(job, 'host:1', new Date(Date.UTC(2001, 0, 1)));
        await subject.jobs.finish(first, 'ok', { purged: 3 }, new Date(Date.UTC(2001, 0, 1, 0, 1)));
        const second = await subject.jobs.start(job, 'host:1', new Date(Date.UTC(2001, 0, 2)));
        await subject.jobs.finish(second, 'failed', { error: 'boom' }, new Date(Date.UTC(2001, 0, 2, 0, 1)));
        const runs = await subject.jobs.list(10, job);
        assert.deepEqual(
          runs.map((r) => [r.id, r.outcome, r.summary]),
          [
            [second, 'failed', { error: 'boom' }],
            [first, 'ok', { purged: 3 }],
          ],
        );
        assert.equal(runs[1]!.finishedAt?.getTime(), Date.UTC(2001, 0, 1, 0, 1));
        assert.equal(await subject.jobs.prune(new Date(), 1), 1);
        assert.deepEqual(
          (await subject.jobs.list(10, job)).map((r) => r.id),
          [second],
        );
      });
    });

    it('check() succeeds on a working store', async () => {
      await store.check();
    });
  });
}

/**
 * Replicas starting together on a fresh database: every one migrates successfully and each
 * migration is applied once (advisory lock on PostgreSQL, GET_LOCK on MySQL).
 */
export async function assertConcurrentFirstStarts(open: () => Promise<KyselyMetadataStore>, replicas = 4): Promise<void> {
  const stores = await Promise.all(Array.from({ length: replicas }, open));
  try {
    for (const store of stores) await store.check();
    const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(stores[0]!.db);
    assert.deepEqual(
      rows.map((r) => r.name),
      migrationNames(),
    );
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}
