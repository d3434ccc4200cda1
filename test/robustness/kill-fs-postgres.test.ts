import { describeFaultRounds } from './faults.js';

/** kill -9 fault rounds on filesystem + PostgreSQL (see faults.ts; BERTH_FAULT_SEED, BERTH_FAULT_ROUNDS for longer runs). */
describeFaultRounds('filesystem + PostgreSQL', 'fs-postgres', 20261204, ['random', 'commit', 'rehash']);
