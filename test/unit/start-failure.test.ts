import assert from 'node:assert/strict';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ADMIN_URL, createTestDatabase } from '../helpers/postgres.js';
import { startTestServer, tempDir } from '../helpers/server.js';

/** Connections open to `database` right now (pg_stat_activity), seen from the maintenance database. */
async function connectionsTo(database: string): Promise<number> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [database]);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

describe('a server that fails while wiring its features', () => {
  it('an unreadable LDAP CA file: the start is refused naming the file, and the metadata connections it opened are closed', async () => {
    const dir = tempDir('berth-start-failure-');
    const db = await createTestDatabase();
    try {
      const missing = path.join(dir, 'no-such-ca.pem');
      await assert.rejects(
        startTestServer({
          data: { dir: path.join(dir, 'data') },
          metadata: { driver: 'postgres', url: db.url },
          auth: {
            mode: 'token',
            admin: { password: 'admin-password-1' },
            ldap: { url: 'ldaps://127.0.0.1:1', ca: missing, user: { basedn: 'dc=example,dc=org' } },
          },
        }),
        (err: Error) => err.message.includes('no-such-ca.pem'),
      );
      // Migrations ran on a pooled connection: with the stores left open it would still be here.
      assert.equal(await connectionsTo(db.name), 0);
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
