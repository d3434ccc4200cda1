import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { resolveConfigPaths } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { checkDataPermissions } from '../../src/secrets/index.js';
import { startServer } from '../../src/server.js';
import { makeBlob, RegistryClient } from '../helpers/registry-client.js';
import { tempDir } from '../helpers/server.js';

/**
 * File modes of what Berth creates (docs/security.md#secrets-at-rest). Always on SQLite and
 * the filesystem store, whatever back end the suite runs on: they are what this checks.
 */
const root = tempDir('berth-perms-');
after(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

function configFor(dataDir: string, extra: Record<string, unknown> = {}) {
  return resolveConfigPaths(
    configSchema.parse({
      http: { addr: '127.0.0.1:0' },
      data: { dir: dataDir },
      metadata: { driver: 'sqlite' },
      storage: { filesystem: {} },
      ...extra,
    }),
  );
}

/** Starts a server on `dataDir` whose log lines (JSON) are collected in `lines`. */
async function start(dataDir: string, lines: Record<string, unknown>[] = [], extra: Record<string, unknown> = {}) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return startServer(configFor(dataDir, extra), pino({ level: 'info' }, sink));
}

describe('data directory permissions', () => {
  it('a fresh data directory is 0700; the SQLite file, its -wal and -shm 0600; blobs and upload staging files 0600 in 0700 directories', async () => {
    const dataDir = path.join(root, 'fresh', 'data');
    const server = await start(dataDir);
    try {
      const db = path.join(dataDir, 'berth.db');
      const storage = path.join(dataDir, 'storage');
      const client = new RegistryClient(server.url);
      const blob = makeBlob(64);
      assert.equal((await client.pushBlob('perm/test', blob)).status, 201);
      const digest = blob.digest;
      const staging = await fetch(`${server.url}/v2/perm/test/blobs/uploads/`, { method: 'POST' });
      assert.equal(staging.status, 202);
      const uploadId = staging.headers.get('docker-upload-uuid')!;
      const hex = digest.slice('sha256:'.length);
      const dirs = [
        dataDir,
        storage,
        path.join(storage, 'blobs'),
        path.join(storage, 'blobs', 'sha256'),
        path.join(storage, 'blobs', 'sha256', hex.slice(0, 2)),
        path.join(storage, 'uploads'),
      ];
      const files = [
        db,
        `${db}-wal`,
        `${db}-shm`,
        path.join(storage, 'blobs', 'sha256', hex.slice(0, 2), hex),
        path.join(storage, 'uploads', uploadId),
      ];
      assert.deepEqual(
        [...dirs, ...files].map((p) => [path.relative(root, p), octal(mode(p))]),
        [...dirs.map((p) => [path.relative(root, p), '0700']), ...files.map((p) => [path.relative(root, p), '0600'])],
      );
      assert.deepEqual(checkDataPermissions(configFor(dataDir)), []);
    } finally {
      await server.close();
    }
  });

  it('an existing data directory and database readable by others are reported at start with the mode and the chmod that fixes them, and left as they are', async () => {
    const dataDir = path.join(root, 'loose');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const db = path.join(dataDir, 'berth.db');
    await (await start(dataDir)).close();
    chmodSync(db, 0o644);

    const lines: Record<string, unknown>[] = [];
    const server = await start(dataDir, lines);
    await server.close();
    const warnings = lines.filter((l) => l.level === 40 && typeof l.fix === 'string');
    const dirWarning = warnings.find((l) => l.path === dataDir);
    const dbWarning = warnings.find((l) => l.path === db);
    assert.ok(dirWarning && dbWarning, JSON.stringify(warnings));
    assert.equal(dirWarning.mode, '0755');
    assert.equal(dirWarning.fix, `chmod 700 ${dataDir}`);
    assert.equal(dbWarning.mode, '0644');
    assert.equal(dbWarning.fix, `chmod 600 ${db}`);
    assert.match(String(dbWarning.msg), /other local users may read/);
    assert.equal(mode(db), 0o644, 'Berth reports, it does not change the modes of existing files');
    assert.equal(mode(dataDir), 0o755);
    // Without a secrets key the start-up log says so, once.
    assert.equal(lines.filter((l) => /secrets at rest are not encrypted/.test(String(l.msg))).length, 1);
  });

  it('a secrets key file readable by others is reported; with a key the log says the keys are sealed', async () => {
    const dataDir = path.join(root, 'keyfile');
    const keyfile = path.join(root, 'secrets.key');
    writeFileSync(keyfile, randomBytes(32).toString('base64'));
    chmodSync(keyfile, 0o644);
    const lines: Record<string, unknown>[] = [];
    const server = await start(dataDir, lines, { secrets: { keyfile } });
    await server.close();
    assert.ok(lines.some((l) => l.level === 40 && l.path === keyfile && l.fix === `chmod 600 ${keyfile}`));
    assert.ok(lines.some((l) => /sealed with AES-256-GCM/.test(String(l.msg))));
    assert.ok(!lines.some((l) => /not encrypted/.test(String(l.msg))));
  });
});
