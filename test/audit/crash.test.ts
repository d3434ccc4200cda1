import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ADMIN_PASSWORD, addProject, addUser, adminAuth, api, basic } from '../auth/support.js';
import { makeImage, RegistryClient } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { readJsonLines, waitFor, type ExportedEntry } from './support.js';

describe('audit export across a kill -9', () => {
  const dataDir = tempDir('berth-audit-crash-');
  const sinkFile = path.join(dataDir, 'audit.jsonl');
  const configFile = path.join(dataDir, 'berth.yaml');
  writeFileSync(configFile, `audit:\n  sinks:\n    - type: file\n      path: ${sinkFile}\n`);
  const env = { BERTH_DATA_DIR: dataDir, BERTH_CONFIG: configFile, BERTH_AUTH_MODE: 'basic', BERTH_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD };
  let berth: BerthProcess | undefined;

  after(async () => {
    await berth?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('entries committed before the kill are all exported after the restart, each once', async () => {
    // First life: the outbox is never dispatched (the first round would come after an hour).
    berth = await startBerthProcess({ ...env, BERTH_EVENTS_INTERVAL: '1h' });
    await addUser(berth, 'dev', 'dev-secret-1');
    await addProject(berth, 'team');
    const admin = new RegistryClient(berth.url, { authorization: adminAuth() });
    await admin.pushImage('team/app', '1', makeImage({ layers: 1, layerSize: 32 }));
    assert.equal((await fetch(`${berth.url}/v2/`, { headers: { authorization: basic('dev', 'wrong') } })).status, 401);
    assert.equal((await admin.fetch('/v2/team/app/manifests/1', { method: 'DELETE' })).status, 202);
    const res = await api(berth, 'GET', '/audit?limit=1000', adminAuth());
    assert.equal(res.status, 200);
    const before = (await res.json()) as ExportedEntry[];
    assert.ok(['user.create', 'project.create', 'login', 'login.failed'].every((a) => before.some((e) => e.action === a)));
    await berth.kill();
    berth = undefined;
    assert.deepEqual(readJsonLines(sinkFile), [], 'nothing was exported before the kill');

    // Second life: the sink catches up from its cursor, and the delete is audited (by the outbox) and exported too.
    berth = await startBerthProcess({ ...env, BERTH_EVENTS_INTERVAL: '200ms' });
    const has = (e: ExportedEntry[]) => before.every((b) => e.some((x) => x.id === b.id)) && e.some((x) => x.action === 'tag.delete');
    await waitFor('every entry in the sink after the restart', () => has(readJsonLines(sinkFile)), 20_000);
    const exported = readJsonLines(sinkFile);
    for (const entry of before) {
      assert.deepEqual(
        exported.filter((e) => e.id === entry.id),
        [entry],
        `entry ${entry.id} (${entry.action}) exactly once, as the API shows it`,
      );
    }
    assert.equal(new Set(exported.map((e) => e.id)).size, exported.length, 'no entry twice');
    const deletion = exported.find((e) => e.action === 'tag.delete')!;
    assert.deepEqual([deletion.actor, deletion.target, deletion.project], ['admin', 'team/app:1', 'team']);
  });
});
