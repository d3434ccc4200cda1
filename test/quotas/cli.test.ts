import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { addProject, adminAuth, useAuthServer } from '../auth/support.js';
import { metadataEnvOf, runBerth } from '../helpers/cli.js';
import { RegistryClient, makeBlob } from '../helpers/registry-client.js';
import { getQuota } from '../policies/quota-support.js';

describe("berth quota set / show / recount on the server's own data", () => {
  const reg = useAuthServer('basic', {}, {}, { setup: (server) => addProject(server, 'cli') });

  /** Runs `berth <args>` on the server's data directory and metadata database; the exit code and output. */
  const berth = (args: string[]) =>
    runBerth(args, { ...metadataEnvOf(reg.server.dataDir, reg.server.config.metadata), BERTH_AUTH_MODE: 'basic' }, 60_000);

  it('set takes effect on the running server at once; show --json equals the API; a bad size exits 2 naming it', async () => {
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    const set = await berth(['quota', 'set', 'cli', '1KiB']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'cli: 0 B used of 1.0 KiB (0% used)\n');
    assert.equal((await admin.pushBlob('cli/app', makeBlob(2000))).status, 403);
    assert.equal((await admin.pushBlob('cli/app', makeBlob(1000))).status, 201);
    const shown = JSON.parse((await berth(['quota', 'show', 'cli', '--json'])).stdout) as unknown;
    assert.deepEqual(shown, await getQuota(reg.server, 'cli'));
    assert.deepEqual(shown, { project: 'cli', used: 1000, limit: 1024, percent: 97.7 });

    assert.equal((await berth(['quota', 'set', 'cli', 'unlimited'])).code, 0);
    assert.equal((await admin.pushBlob('cli/app', makeBlob(2000))).status, 201);
    const bad = await berth(['quota', 'set', 'cli', 'lots']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"lots" is not a size/);
  });

  it('recount --check finds a kept figure that drifted (exit 1); recount corrects it from scratch', async () => {
    assert.deepEqual(await berth(['quota', 'recount', '--check']), { code: 0, stdout: 'usage matches a recount\n', stderr: '' });
    // Drift the kept figure behind Berth's back (as rows deleted outside Berth would).
    await sql`update quota_projects set used_bytes = 5 where project = 'cli'`.execute(reg.server.stores.metadata.db);
    const check = await berth(['quota', 'recount', '--check']);
    assert.equal(check.code, 1);
    assert.equal(check.stdout, 'cli: kept 5, recounted 3000\n');
    assert.equal((await berth(['quota', 'recount'])).stdout, 'cli: 5 -> 3000 bytes\n');
    assert.equal((await getQuota(reg.server, 'cli')).used, 3000);
  });
});
