import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDatabaseConflict, isTransientDatabaseError } from '../../src/core/errors.js';

describe('isTransientDatabaseError: refusals a retry gets past', () => {
  it('knows deadlocks, serialization failures and lock timeouts of each database, also as a cause', () => {
    for (const code of ['40P01', '40001', '55P03', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'SQLITE_BUSY']) {
      assert.equal(isTransientDatabaseError(Object.assign(new Error('deadlock detected'), { code })), true, code);
    }
    const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    assert.equal(isTransientDatabaseError(new Error('storing the SBOM failed', { cause: deadlock })), true);
  });

  it('does not take other errors for one', () => {
    for (const err of [
      new Error('deadlock detected'),
      Object.assign(new Error('unique violation'), { code: '23505' }),
      Object.assign(new Error('no such file'), { code: 'ENOENT' }),
      null,
      undefined,
      'text',
    ]) {
      assert.equal(isTransientDatabaseError(err), false, String(err));
    }
  });

  it('a conflict (run the transaction again at once) is a deadlock or serialization failure, not a lock wait that ran out', () => {
    for (const code of ['40P01', '40001', 'ER_LOCK_DEADLOCK'])
      assert.equal(isDatabaseConflict(Object.assign(new Error('conflict'), { code })), true, code);
    for (const code of ['55P03', 'ER_LOCK_WAIT_TIMEOUT', 'SQLITE_BUSY', '23505'])
      assert.equal(isDatabaseConflict(Object.assign(new Error('waited'), { code })), false, code);
    assert.equal(
      isDatabaseConflict(new Error('wrapped', { cause: Object.assign(new Error('deadlock detected'), { code: '40P01' }) })),
      true,
    );
  });
});
