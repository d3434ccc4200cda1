import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/server.js';
import { faultRounds, faultSeed, openBackend, runFaultRounds } from './faults.js';

/** kill -9 fault rounds on filesystem + PostgreSQL (see faults.ts; BERTH_FAULT_SEED, BERTH_FAULT_ROUNDS for longer runs). */
const SEED = faultSeed(20261204);
const ROUNDS = faultRounds(3);

describe('kill -9 faults on filesystem + PostgreSQL', () => {
  it(`keeps every acknowledged push; interrupted sessions complete or are unknown on GET (seed ${SEED}, ${ROUNDS} rounds)`, async (t) => {
    const dataDir = tempDir('berth-kill-fs-postgres-');
    const backend = await openBackend('fs-postgres', dataDir);
    try {
      const tally = await runFaultRounds({ backend, seed: SEED, rounds: ROUNDS, workers: 4, killPoints: ['random', 'commit', 'rehash'], gcChance: 0.3, log: (l) => t.diagnostic(l) });
      t.diagnostic(JSON.stringify(tally));
      assert.ok(tally.acknowledgedManifests > 0 && tally.interrupted > 0, 'the rounds pushed something and interrupted sessions (else they prove nothing)');
    } finally {
      await backend.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
