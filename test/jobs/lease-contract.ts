import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveConfigPaths } from '../../src/config/load.js';
import { configSchema, type BerthConfig } from '../../src/config/schema.js';
import { withLease, type LeaseStore } from '../../src/jobs/leases.js';
import { openStores, type Stores } from '../../src/stores.js';

/**
 * The LeaseStore contract (src/jobs/leases.ts), run against every metadata back end by
 * test/jobs/leases-<backend>.test.ts. Each suite gets a fresh, empty deployment and opens
 * its lease store through the composition root (openStores), as the server and `berth gc` do.
 */

export interface LeaseDeployment {
  config: BerthConfig;
  /** Removes the deployment (its data directory, its database). */
  destroy(): Promise<void>;
}

/** A resolved config for a data directory, optionally with `metadata:` settings. */
export function leaseConfig(dataDir: string, metadata?: Record<string, unknown>): BerthConfig {
  return resolveConfigPaths(configSchema.parse({ data: { dir: dataDir }, log: { level: 'silent' }, ...(metadata ? { metadata } : {}) }));
}

export function leaseContract(backend: string, deploy: () => Promise<LeaseDeployment>): void {
  describe(`LeaseStore contract: ${backend}`, () => {
    let deployment: LeaseDeployment;
    let stores: Stores;
    /** A second store on the same database: another replica, or `berth gc` beside the server. */
    let replica: Stores;
    let store: LeaseStore;
    before(async () => {
      deployment = await deploy();
      stores = await openStores(deployment.config);
      replica = await openStores(deployment.config);
      store = stores.leases;
    });
    after(async () => {
      await replica?.close();
      await stores?.close();
      await deployment?.destroy();
    });

    it('of many concurrent acquirers exactly one gets a free lease', async () => {
      const now = Date.now();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.tryAcquire('race', `holder-${i}`, now, now + 60_000)));
      assert.equal(results.filter(Boolean).length, 1);
      const winner = `holder-${results.indexOf(true)}`;
      assert.equal(await store.holder('race', Date.now()), winner);
    });

    it('of concurrent acquirers on two stores over the same database exactly one gets a free lease, and both see the winner', async () => {
      const now = Date.now();
      const acquirers = Array.from({ length: 10 }, (_, i) => ({
        store: i % 2 === 0 ? stores.leases : replica.leases,
        holder: `replica-${i % 2}-${i}`,
      }));
      const results = await Promise.all(acquirers.map((a) => a.store.tryAcquire('race-replicas', a.holder, now, now + 60_000)));
      assert.equal(results.filter(Boolean).length, 1);
      const winner = acquirers[results.indexOf(true)]!.holder;
      assert.equal(await stores.leases.holder('race-replicas', Date.now()), winner);
      assert.equal(await replica.leases.holder('race-replicas', Date.now()), winner);
    });

    it('an expired lease can be taken over; an unexpired one cannot', async () => {
      const now = Date.now();
      assert.equal(await store.tryAcquire('expiry', 'crashed', now - 120_000, now - 60_000), true);
      assert.equal(await store.holder('expiry', now), null, 'expired leases have no holder');
      assert.equal(await store.tryAcquire('expiry', 'next', now, now + 60_000), true);
      assert.equal(await store.tryAcquire('expiry', 'third', now, now + 60_000), false);
      assert.equal(await store.renew('expiry', 'crashed', now + 60_000), false, 'the old holder cannot renew');
    });

    it('the holder can renew its lease past the original expiry; after a takeover its renewal fails and the new holder keeps the lease', async () => {
      const now = Date.now();
      assert.equal(await store.tryAcquire('renewal', 'first', now, now + 1_000), true);
      assert.equal(await store.renew('renewal', 'first', now + 10_000), true);
      assert.equal(await store.holder('renewal', now + 5_000), 'first', 'renewed past its first expiry');
      assert.equal(await replica.leases.tryAcquire('renewal', 'second', now + 5_000, now + 60_000), false, 'a renewed lease is not free');
      assert.equal(
        await replica.leases.tryAcquire('renewal', 'second', now + 20_000, now + 60_000),
        true,
        'expired after the renewal: taken over',
      );
      assert.equal(await store.renew('renewal', 'first', now + 90_000), false, 'the old holder cannot renew after the takeover');
      assert.equal(await store.holder('renewal', now + 30_000), 'second');
      assert.equal(await store.holder('renewal', now + 61_000), null, "the failed renewal did not extend the new holder's lease");
    });

    it('only the holder can release a lease; released, it is free for anyone', async () => {
      const now = Date.now();
      assert.equal(await store.tryAcquire('release', 'owner', now, now + 60_000), true);
      await store.release('release', 'someone-else');
      await replica.leases.release('release', 'someone-else');
      assert.equal(await store.holder('release', Date.now()), 'owner', 'a release by another holder changes nothing');
      assert.equal(await replica.leases.tryAcquire('release', 'someone-else', Date.now(), Date.now() + 60_000), false);
      await store.release('release', 'owner');
      assert.equal(await store.holder('release', Date.now()), null, 'released');
      assert.equal(await store.renew('release', 'owner', Date.now() + 60_000), false, 'a released lease cannot be renewed');
      assert.equal(await replica.leases.tryAcquire('release', 'someone-else', Date.now(), Date.now() + 60_000), true);
      await store.release('never-taken', 'nobody');
      assert.equal(await store.holder('never-taken', Date.now()), null, 'releasing a lease nobody holds is a no-op');
    });

    it('holder() ignores expired leases: a lease has a holder until its expiry and none after it', async () => {
      const now = Date.now();
      assert.equal(await store.tryAcquire('expiring', 'brief', now, now + 1_000), true);
      assert.equal(await store.holder('expiring', now), 'brief');
      assert.equal(await store.holder('expiring', now + 1_000), 'brief', 'held up to and including its expiry time');
      assert.equal(await store.holder('expiring', now + 1_001), null, 'no holder once expired');
      assert.equal(await replica.leases.holder('expiring', now + 1_001), null);
      assert.equal(await store.holder('no-such-lease', now), null);
    });

    it('withLease renews while working and releases at the end', async () => {
      let takenMeanwhile: boolean | undefined;
      const outcome = await withLease(
        store,
        'renewed',
        async () => {
          await sleep(250); // > ttl: only renewal keeps the lease
          const now = Date.now();
          takenMeanwhile = await store.tryAcquire('renewed', 'intruder', now, now + 1000);
          return 'done';
        },
        { ttlMs: 90 },
      );
      assert.deepEqual(outcome, { acquired: true, value: 'done' });
      assert.equal(takenMeanwhile, false);
      assert.equal(await store.holder('renewed', Date.now()), null, 'released');
    });

    it('withLease does not run the work while someone else holds the lease, and says who', async () => {
      const now = Date.now();
      await store.tryAcquire('busy', 'replica-1', now, now + 60_000);
      let ran = false;
      const outcome = await withLease(store, 'busy', async () => {
        ran = true;
      });
      assert.deepEqual(outcome, { acquired: false, heldBy: 'replica-1' });
      assert.equal(ran, false);
    });

    it('a lost lease aborts the work through its signal', async () => {
      const outcome = await withLease(
        store,
        'stolen',
        async (lease) => {
          await store.release('stolen', lease.holder); // e.g. expired during a long pause and taken over
          const now = Date.now();
          await store.tryAcquire('stolen', 'thief', now, now + 60_000);
          for (let i = 0; i < 50 && !lease.signal.aborted; i++) await sleep(20);
          return lease.signal.aborted;
        },
        { ttlMs: 60 },
      );
      assert.deepEqual(outcome, { acquired: true, value: true });
      assert.equal(await store.holder('stolen', Date.now()), 'thief', 'releasing does not remove the new holder');
    });
  });
}
