import { describeFaultRounds } from './faults.js';

/** kill -9 fault rounds on the embedded default: filesystem blobs, SQLite metadata (see faults.ts; BERTH_FAULT_SEED, BERTH_FAULT_ROUNDS for longer runs). */
describeFaultRounds('filesystem + SQLite', 'fs-sqlite', 20261202, ['random', 'commit', 'rehash']);
