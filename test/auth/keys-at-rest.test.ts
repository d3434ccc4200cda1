import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { newSigningKeyRecord } from '../../src/auth/keys.js';
import { SealedAuthStore } from '../../src/metadata/sealed-auth-store.js';
import { AesGcmSealer } from '../../src/secrets/index.js';
import { ROOT, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import { adminAuth, authConfig, token } from './support.js';

const exec = promisify(execFile);

/**
 * Token signing keys sealed at rest (docs/security.md#secrets-at-rest), on the suite's metadata
 * back end: one data directory restarted with no key, the key, a wrong key, and no key again.
 */
describe('token signing keys at rest', () => {
  const dataDir = tempDir();
  let key = randomBytes(32).toString('base64');
  let server: TestServer | undefined;
  after(async () => {
    await server?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = (env: NodeJS.ProcessEnv = {}) => startTestServer(authConfig('token', {}, { data: { dir: dataDir } }), env);
  const restart = async (env: NodeJS.ProcessEnv = {}) => {
    await server?.close();
    server = undefined;
    server = await start(env);
    return server;
  };
  const v2 = async (bearer: string) => (await fetch(`${server!.url}/v2/`, { headers: { authorization: `Bearer ${bearer}` } })).status;

  /** The private part (`d`) of every signing key, as the running server opens them. */
  async function privateParts(): Promise<string[]> {
    return (await server!.stores.auth.listSigningKeys()).map((k) => (JSON.parse(k.privateJwk) as { d: string }).d);
  }

  /** private_jwk as stored in the row, whatever the back end. */
  async function storedRows(): Promise<string[]> {
    const { rows } = await sql<{ private_jwk: string }>`select private_jwk from signing_keys`.execute(server!.stores.metadata.db);
    return rows.map((r) => r.private_jwk);
  }

  /** Every file under the data directory (SQLite's db, -wal, -shm; blobs), as bytes. */
  function rawDataFiles(dir = dataDir): Buffer[] {
    return readdirSync(dir).flatMap((name) => {
      const file = path.join(dir, name);
      return statSync(file).isDirectory() ? rawDataFiles(file) : [readFileSync(file)];
    });
  }
  const onDisk = (secret: string) => rawDataFiles().some((bytes) => bytes.includes(secret));
  let sqlite = false;

  let d: string;
  let oldToken: string;

  it('without a secrets key the private key is stored in plain text (and the scan below can see it)', async () => {
    await restart();
    sqlite = server!.config.metadata.driver === 'sqlite';
    oldToken = await token(server!, [], adminAuth());
    const parts = await privateParts();
    assert.equal(parts.length, 1);
    d = parts[0]!;
    assert.ok(d.length >= 43);
    assert.ok((await storedRows()).some((row) => row.includes(d)));
    if (sqlite) {
      await server!.close();
      server = undefined;
      assert.ok(onDisk(d), 'the plain private key is in the SQLite file');
    }
  });

  it('with a key: the stored key is sealed at start, its d is nowhere on disk, and tokens issued before still verify', async () => {
    await restart({ BERTH_SECRETS_KEY: key });
    assert.deepEqual(await privateParts(), [d]);
    const rows = await storedRows();
    assert.equal(rows.length, 1);
    assert.match(rows[0]!, /^berth:v1:[0-9a-f]{8}:/);
    assert.ok(!rows[0]!.includes(d));
    assert.equal(await v2(oldToken), 200);
    assert.equal(await v2(await token(server!, [], adminAuth())), 200);
    await server!.close();
    server = undefined;
    if (sqlite) assert.ok(!onDisk(d), 'the plain private key is gone from the SQLite file, its WAL and free space');
  });

  it('a new key made while a secrets key is configured is sealed from the first write', async () => {
    await restart({ BERTH_SECRETS_KEY: key });
    const { stores } = server!;
    const fresh = await newSigningKeyRecord();
    await stores.auth.addSigningKey(fresh);
    const freshD = (JSON.parse(fresh.privateJwk) as { d: string }).d;
    assert.ok(!(await storedRows()).some((row) => row.includes(freshD) || !row.startsWith('berth:v1:')));
    await server!.close();
    server = undefined;
    if (sqlite) assert.ok(!onDisk(freshD) && !onDisk(d));
  });

  it('berth auth rotate-key with the key seals the key it makes, and the server opens it', async () => {
    await restart({ BERTH_SECRETS_KEY: key });
    const { driver, url } = server!.config.metadata;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'auth', 'rotate-key'], {
      cwd: ROOT,
      env: {
        ...process.env,
        BERTH_DATA_DIR: dataDir,
        BERTH_AUTH_MODE: 'token',
        BERTH_METADATA_DRIVER: driver,
        ...(url ? { BERTH_METADATA_URL: url } : {}),
        BERTH_SECRETS_KEY: key,
      },
    });
    const kid = /new signing key (\S+)/.exec(stdout)?.[1];
    assert.ok(kid, stdout);
    const rows = await storedRows();
    assert.equal(rows.length, 3);
    assert.ok(rows.every((row) => row.startsWith('berth:v1:')));
    // The server opens it with its key (it signs with it once its key ring reloads, within 30 s).
    const active = (await server!.stores.auth.listSigningKeys()).find((k) => k.retiredAt === null);
    assert.equal(active?.kid, kid);
    assert.match(JSON.parse(active.privateJwk).d as string, /^[\w-]{43}$/);
  });

  it('changing the secrets key: with the old one in previouskeys every signing key is sealed again with the new one; then the new one alone opens them', async () => {
    const newKey = randomBytes(32).toString('hex');
    const oldIds = new Set((await storedRows()).map((row) => row.split(':')[2]));
    assert.equal(oldIds.size, 1);
    await restart({ BERTH_SECRETS_KEY: newKey, BERTH_SECRETS_PREVIOUSKEYS: key });
    const ids = new Set((await storedRows()).map((row) => row.split(':')[2]));
    assert.equal(ids.size, 1);
    assert.notDeepEqual(ids, oldIds);
    key = newKey;
    await restart({ BERTH_SECRETS_KEY: key });
    assert.equal(await v2(oldToken), 200);
    assert.equal((await privateParts()).length, 3);
  });

  it('a wrong key stops the start with a message naming both key ids, and changes nothing', async () => {
    await assert.rejects(
      restart({ BERTH_SECRETS_KEY: randomBytes(32).toString('hex') }),
      /signing key \S+ is sealed with secrets key [0-9a-f]{8}, but the configured secrets key is [0-9a-f]{8}/,
    );
  });

  it('no key at all stops the start too: Berth never makes a new signing key in place of sealed ones', async () => {
    await assert.rejects(
      restart(),
      /cannot load the token signing keys: signing key \S+ is sealed with secrets key [0-9a-f]{8}, but no secrets key is configured.*does not make a new key/,
    );
    await restart({ BERTH_SECRETS_KEY: key });
    assert.equal((await storedRows()).length, 3);
    assert.equal(await v2(oldToken), 200);
  });
});

describe('sealing at start on replicas starting together', () => {
  const reg = useServer(authConfig('token'));

  it('each plain-text key is sealed exactly once (compare and set), and every replica opens the result', async () => {
    const { metadata, auth } = reg.server.stores;
    for (let i = 0; i < 3; i++) await auth.addSigningKey(await newSigningKeyRecord());
    const before = await auth.listSigningKeys();
    assert.equal(before.length, 4);
    const sealer = new AesGcmSealer(randomBytes(32));
    const replicas = Array.from({ length: 3 }, () => new SealedAuthStore(metadata.db, metadata.dialect, sealer));
    const counts = await Promise.all(replicas.map((replica) => replica.sealSigningKeys()));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      4,
    );
    for (const replica of replicas) assert.deepEqual(await replica.listSigningKeys(), before);
    assert.deepEqual(await Promise.all(replicas.map((replica) => replica.sealSigningKeys())), [0, 0, 0]);
  });
});
