import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compactWhenIdle } from '../../src/idle-compaction.js';

/** Keeps one core busy for `ms` (the CPU time compactWhenIdle reads as activity). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('idle compaction: one compacting GC per idle spell (src/idle-compaction.ts)', () => {
  it('compacts once after an idle interval, not again while idle, and again after a busy interval', async () => {
    const figures: { heapBefore: number; heapAfter: number }[] = [];
    // An interval counts as idle under 25 % of a core: the test runner's own threads stay well below.
    const compaction = compactWhenIdle({ intervalMs: 300, idleShare: 0.25, atStart: false, onCompaction: (f) => figures.push(f) });
    try {
      await sleep(1_100); // 3 idle intervals
      assert.equal(compaction.compactions(), 1, 'the start-up heap is compacted once, then nothing while idle');
      assert.equal(figures.length, 1);
      assert.ok(
        figures[0]!.heapAfter > 0 && figures[0]!.heapAfter <= figures[0]!.heapBefore,
        `heap ${figures[0]!.heapBefore} -> ${figures[0]!.heapAfter}`,
      );

      spin(500); // the interval that sees this is busy
      await sleep(1_000);
      assert.equal(compaction.compactions(), 2, 'a busy interval makes the next idle one compact again');
    } finally {
      compaction.stop();
    }
    const after = compaction.compactions();
    await sleep(700);
    assert.equal(compaction.compactions(), after, 'stop() ends the checks');
  });

  it('compacts at once when started (atStart, the default), and again at the first idle interval', async () => {
    const compaction = compactWhenIdle({ intervalMs: 300, idleShare: 0.25 });
    try {
      assert.equal(compaction.compactions(), 1, 'a server loaded from its first second still gets the start-up heap compacted');
      await sleep(1_100);
      assert.equal(compaction.compactions(), 2);
    } finally {
      compaction.stop();
    }
  });
});
