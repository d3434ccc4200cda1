import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withLease } from '../../src/jobs/leases.js';
import type { LeaseStore } from '../../src/jobs/leases.js';
import type { TestServer } from '../helpers/server.js';
import { startGcServer } from './support.js';

describe('leases (in the metadata DB)', () => {
  let server: TestServer;
  let store: LeaseStore;
  before(async () => {
    ({ server } = await startGcServer());
    store = server.stores.leases;
  });
  after(async () => server.destroy());

  it('of many concurrent acquirers exactly one gets a free lease', async () => {
    const now = Date.now();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.tryAcquire('race', `holder-${i}`, now, now + 60_000)));
    assert.equal(results.filter(Boolean).length, 1);
    const winner = `holder-${results.indexOf(true)}`;
    assert.equal(await store.holder('race', Date.now()), winner);
  });

  it('an expired lease can be taken over; an unexpired one cannot', async () => {
    const now = Date.now();
    assert.equal(await store.tryAcquire('expiry', 'crashed', now - 120_000, now - 60_000), true);
    assert.equal(await store.holder('expiry', now), null, 'expired leases have no holder');
    assert.equal(await store.tryAcquire('expiry', 'next', now, now + 60_000), true);
    assert.equal(await store.tryAcquire('expiry', 'third', now, now + 60_000), false);
    assert.equal(await store.renew('expiry', 'crashed', now + 60_000), false, 'the old holder cannot renew');
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
