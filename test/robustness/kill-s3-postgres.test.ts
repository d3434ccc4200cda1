import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/server.js';
import { faultRounds, faultSeed, openBackend, runFaultRounds } from './faults.js';

/** kill -9 fault rounds on S3 + PostgreSQL (see faults.ts; BERTH_FAULT_SEED, BERTH_FAULT_ROUNDS for longer runs). */
const SEED = faultSeed(20261205);
const ROUNDS = faultRounds(3);

describe('kill -9 faults on S3 + PostgreSQL', () => {
  it(`keeps every acknowledged push; interrupted sessions complete or are unknown on GET (seed ${SEED}, ${ROUNDS} rounds)`, async (t) => {
    const dataDir = tempDir('berth-kill-s3-postgres-');
    const backend = await openBackend('s3-postgres', dataDir);
    try {
      const tally = await runFaultRounds({ backend, seed: SEED, rounds: ROUNDS, workers: 4, killPoints: ['random', 'rehash'], gcChance: 0.3, log: (l) => t.diagnostic(l) });
      t.diagnostic(JSON.stringify(tally));
      assert.ok(tally.acknowledgedManifests > 0 && tally.interrupted > 0, 'the rounds pushed something and interrupted sessions (else they prove nothing)');
    } finally {
      await backend.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
