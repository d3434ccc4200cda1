import { describeFaultRounds } from './faults.js';

/** kill -9 fault rounds on filesystem + MySQL/MariaDB (see faults.ts; BERTH_FAULT_SEED, BERTH_FAULT_ROUNDS for longer runs). */
describeFaultRounds('filesystem + MySQL/MariaDB', 'mysql', 20261206, ['random', 'commit', 'rehash']);
