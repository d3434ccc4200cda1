import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StoredAdvisory, VulnDbStore } from '../../src/scanning/ports.js';
import { deploy, type Backend, type Deployment } from '../contracts/deployment.js';

/**
 * The vulnerability database's port contract (VulnDbStore in src/scanning/ports.ts) on every
 * metadata back end, through the composition root's `stores.vulndb`: batches replace records
 * only when `modified` grew, a failing batch stores nothing, look-ups by ecosystem and name skip
 * withdrawn advisories, counts, the import run log and per-artifact scan results.
 */
export function vulnDbStoreContract(backend: Backend): void {
  describe(`vulnerability database store contract: ${backend}`, () => {
    let deployment: Deployment;
    let store: VulnDbStore;
    before(async () => {
      deployment = await deploy(backend);
      store = deployment.stores.vulndb;
    });
    after(async () => deployment?.destroy());

    const advisory = (
      id: string,
      modified: number,
      packages: Array<[string, string]>,
      extra: Partial<StoredAdvisory> = {},
    ): StoredAdvisory => ({
      id,
      modified,
      withdrawn: null,
      packages: packages.map(([ecosystem, name]) => ({ ecosystem, name })),
      document: JSON.stringify({ id, modified, note: 'ü ✓' }),
      ...extra,
    });
    const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

    it('a batch inserts new records; the same modified again is unchanged; a newer one replaces the record and its packages; an older one is ignored', async () => {
      assert.deepEqual(
        await store.storeBatch([
          advisory('A-1', 100, [['npm', 'a']]),
          advisory('A-2', 100, [
            ['npm', 'b'],
            ['Go', 'example.com/b'],
          ]),
        ]),
        { inserted: 2, updated: 0, unchanged: 0 },
      );
      assert.deepEqual(await store.storeBatch([advisory('A-1', 100, [['npm', 'a']])]), { inserted: 0, updated: 0, unchanged: 1 });
      const newer = advisory('A-1', 200, [['npm', 'a2']], { document: '{"id":"A-1","v":2}' });
      assert.deepEqual(await store.storeBatch([newer, advisory('A-3', 5, [['npm', 'a']])]), { inserted: 1, updated: 1, unchanged: 0 });
      assert.equal(await store.advisory('A-1'), '{"id":"A-1","v":2}');
      assert.deepEqual(ids(await store.affecting(['npm'], ['a'])), ['A-3'], 'the old package row left with the old record');
      assert.deepEqual(ids(await store.affecting(['npm'], ['a2'])), ['A-1']);
      assert.deepEqual(await store.storeBatch([advisory('A-1', 150, [['npm', 'a']])]), { inserted: 0, updated: 0, unchanged: 1 });
      assert.equal(await store.advisory('A-1'), '{"id":"A-1","v":2}', 'an older copy never replaces a newer one');
      assert.deepEqual(await store.storeBatch([]), { inserted: 0, updated: 0, unchanged: 0 });
    });

    it('the same id twice in a batch: the newest is stored once; a package named twice by one advisory is indexed once', async () => {
      const outcome = await store.storeBatch([
        advisory('D-1', 1, [['npm', 'd']]),
        advisory('D-1', 3, [
          ['npm', 'd'],
          ['npm', 'd'],
        ]),
        advisory('D-1', 2, [['npm', 'd']]),
      ]);
      assert.deepEqual(outcome, { inserted: 1, updated: 0, unchanged: 2 });
      assert.deepEqual(ids(await store.affecting(['npm'], ['d'])), ['D-1']);
      assert.equal(JSON.parse((await store.advisory('D-1'))!).modified, 3);
    });

    it('a batch that fails in the database stores none of its records (one transaction)', async () => {
      const bad = advisory('F-2', 1, [['npm', 'f']]);
      bad.packages.push({ ecosystem: null as unknown as string, name: 'f' });
      await assert.rejects(store.storeBatch([advisory('F-1', 1, [['npm', 'f']]), bad]));
      assert.equal(await store.advisory('F-1'), null);
      assert.equal(await store.advisory('F-2'), null);
      assert.deepEqual(await store.affecting(['npm'], ['f']), []);
    });

    it('look-ups: by any of the ecosystems and names given, withdrawn advisories left out, each advisory once, by id; byte-exact names', async () => {
      await store.storeBatch([
        advisory('L-2', 1, [
          ['Debian:12', 'openssl'],
          ['Debian:11', 'openssl'],
        ]),
        advisory('L-1', 1, [['Debian', 'openssl']]),
        advisory('L-3', 1, [['Debian:12', 'openssl']], { withdrawn: 2 }),
        advisory('L-4', 1, [['Debian:12', 'OpenSSL']]),
        advisory('L-5', 1, [['Alpine:v3.19', 'openssl']]),
      ]);
      assert.deepEqual(ids(await store.affecting(['Debian:12', 'Debian'], ['openssl'])), ['L-1', 'L-2']);
      assert.deepEqual(ids(await store.affecting(['Debian:12'], ['OpenSSL'])), ['L-4']);
      assert.deepEqual(ids(await store.affecting(['Alpine:v3.19'], ['openssl', 'nothing'])), ['L-5']);
      assert.deepEqual(await store.affecting([], ['openssl']), []);
      assert.deepEqual(await store.affecting(['Debian:12'], []), []);
    });

    it('look-ups of more names than one statement takes (chunks)', async () => {
      const many = Array.from({ length: 700 }, (_, i) => advisory(`M-${String(i).padStart(4, '0')}`, 1, [['crates.io', `crate-${i}`]]));
      assert.equal((await store.storeBatch(many)).inserted, 700);
      const found = await store.affecting(
        ['crates.io'],
        many.map((_, i) => `crate-${i}`),
      );
      assert.equal(found.length, 700);
      assert.deepEqual(
        ids(found),
        many.map((a) => a.id),
      );
    });

    it('counts: advisories, withdrawn, per ecosystem (distinct advisories), newest modified', async () => {
      const counts = await store.counts();
      assert.equal(counts.advisories, 709, 'A-1..3, D-1, L-1..5, 700 M-');
      assert.equal(counts.withdrawn, 1);
      assert.equal(counts.byEcosystem['crates.io'], 700);
      assert.equal(counts.byEcosystem['Debian:12'], 3);
      assert.equal(counts.newestModified, 200);
    });

    it('import runs: started as running, updated with counts and errors, listed newest first', async () => {
      const first = await store.startImport('/data/osv/Debian.zip', 1000);
      const second = await store.startImport('/data/osv/npm', 2000);
      assert.ok(second > first);
      await store.updateImport({
        id: first,
        finishedAt: 1500,
        outcome: 'complete',
        files: 10,
        inserted: 7,
        updated: 1,
        unchanged: 1,
        invalid: 1,
        errors: ['x.json: not JSON ü'],
      });
      const runs = await store.imports(10);
      assert.deepEqual(runs.slice(0, 2), [
        {
          id: second,
          source: '/data/osv/npm',
          startedAt: 2000,
          finishedAt: null,
          outcome: 'running',
          files: 0,
          inserted: 0,
          updated: 0,
          unchanged: 0,
          invalid: 0,
          errors: [],
        },
        {
          id: first,
          source: '/data/osv/Debian.zip',
          startedAt: 1000,
          finishedAt: 1500,
          outcome: 'complete',
          files: 10,
          inserted: 7,
          updated: 1,
          unchanged: 1,
          invalid: 1,
          errors: ['x.json: not JSON ü'],
        },
      ]);
      assert.equal((await store.imports(1)).length, 1);
    });

    it('scan results: stored per digest, replaced by the next scan, read back exactly (unicode, nulls); unknown digest null', async () => {
      const digest = `sha256:${'a'.repeat(64)}`;
      assert.equal(await store.scanOf(digest), null);
      const first = {
        digest,
        status: 'failed' as const,
        scannedAt: 10,
        source: 'none',
        databaseImport: null,
        packages: 0,
        summary: {},
        findings: [],
        error: 'no package list ü',
      };
      await store.saveScan(first);
      assert.deepEqual(await store.scanOf(digest), first);
      const second = {
        ...first,
        status: 'complete' as const,
        scannedAt: 20,
        source: 'request',
        databaseImport: 7,
        packages: 2,
        summary: { High: 1, total: 1 },
        findings: [{ id: 'X-1', severity: 'High' }],
        error: null,
      };
      await store.saveScan(second);
      assert.deepEqual(await store.scanOf(digest), second);
      assert.equal(await store.scanOf(`sha256:${'b'.repeat(64)}`), null);
    });

    it('a scan saved in a registry write commits with its event, or neither does (within(tx))', async () => {
      const metadata = deployment.stores.metadata;
      const digest = `sha256:${'c'.repeat(64)}`;
      const scan = {
        digest,
        status: 'complete' as const,
        scannedAt: 30,
        source: 'sbom',
        databaseImport: 1,
        packages: 1,
        summary: { total: 0 },
        findings: [],
        error: null,
      };
      await assert.rejects(
        metadata.transaction(async (tx) => {
          await store.within(tx).saveScan(scan);
          await tx.events.append([{ type: 'scan.completed', repository: 'team/app', digest, packages: 1, summary: { total: 0 } }], null);
          throw new Error('rolled back');
        }),
        /rolled back/,
      );
      assert.equal(await store.scanOf(digest), null, 'no row without its event');
      await metadata.transaction(async (tx) => {
        await store.within(tx).saveScan(scan);
        await tx.events.append([{ type: 'scan.completed', repository: 'team/app', digest, packages: 1, summary: { total: 0 } }], null);
      });
      assert.deepEqual(await store.scanOf(digest), scan);
    });

    it('supply chain: settings upserted per project; the queue in order of due time, retried with a later due time, given up as failed, done rows gone; counts', async () => {
      const chain = deployment.stores.supplyChain;
      assert.equal(await chain.settings('team'), null);
      await chain.setSettings({ project: 'team', sbomOnPush: true, scanOnPush: false, updatedAt: 5, updatedBy: 'ü-owner' });
      await chain.setSettings({ project: 'team', sbomOnPush: true, scanOnPush: true, updatedAt: 6, updatedBy: 'owner' });
      assert.deepEqual(await chain.settings('team'), {
        project: 'team',
        sbomOnPush: true,
        scanOnPush: true,
        updatedAt: 6,
        updatedBy: 'owner',
      });
      const d = (c: string) => `sha256:${c.repeat(64)}`;
      await chain.enqueue(
        [
          { repository: 'team/app', digest: d('1'), sbom: true, scan: false, reason: 'push' },
          { repository: 'team/app', digest: d('2'), sbom: false, scan: true, reason: 'backfill' },
        ],
        100,
      );
      await deployment.stores.metadata.transaction(async (tx) => {
        const rows = chain.within(tx);
        assert.deepEqual([...(await rows.settingsOf(['team', 'nobody']))], [['team', { sbom: true, scan: true }]]);
        await rows.enqueue([{ repository: 'team/x', digest: d('3'), sbom: true, scan: true, reason: 'push' }], 200);
      });
      assert.deepEqual(await chain.queueCounts(), { pending: 3, failed: 0, oldestPendingAt: 100 });
      const due = await chain.due(150, 10);
      assert.deepEqual(
        due.map((q) => [q.digest, q.sbom, q.scan, q.reason, q.attempts, q.state]),
        [
          [d('1'), true, false, 'push', 0, 'pending'],
          [d('2'), false, true, 'backfill', 0, 'pending'],
        ],
      );
      await chain.retry(due[0]!.id, 1, 1_000, 'layer unreadable ü', false);
      await chain.retry(due[1]!.id, 5, 1_000, 'gave up', true);
      assert.deepEqual(
        (await chain.due(999, 10)).map((q) => q.digest),
        [d('3')],
      );
      const later = await chain.due(1_000, 10);
      assert.deepEqual(
        later.map((q) => [q.digest, q.attempts, q.lastError]),
        [
          [d('3'), 0, null],
          [d('1'), 1, 'layer unreadable ü'],
        ],
      );
      assert.deepEqual(
        (await chain.failedItems(10)).map((q) => [q.digest, q.state, q.lastError]),
        [[d('2'), 'failed', 'gave up']],
      );
      for (const q of later) await chain.done(q.id);
      assert.deepEqual(await chain.queueCounts(), { pending: 0, failed: 1, oldestPendingAt: null });
    });
  });
}
