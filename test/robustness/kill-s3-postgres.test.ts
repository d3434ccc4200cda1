import { describeFaultRounds } from './faults.js';

/** kill -9 fault rounds on S3 + PostgreSQL (no commit kill point: it watches a staging directory) (see faults.ts; BERTH_FAULT_SEED, BERTH_FAULT_ROUNDS for longer runs). */
describeFaultRounds('S3 + PostgreSQL', 's3-postgres', 20261205, ['random', 'rehash']);
