import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { VulnDbStore } from '../../src/scanning/ports.js';
import { readOsvSource } from '../../src/scanning/sources.js';
import { VulnDb } from '../../src/scanning/vulndb.js';
import { deploy, type Backend, type Deployment } from '../contracts/deployment.js';
import { tempDir } from '../helpers/server.js';

const run = promisify(execFile);
const FIXTURE = new URL('./fixtures/osv', import.meta.url).pathname;
const BAD = new URL('./fixtures/osv-bad', import.meta.url).pathname;
const FIXTURE_RECORDS = 14;
const backend = (process.env.BERTH_TEST_METADATA ?? 'sqlite') as Backend;

/** A zip of `dir`'s files as OSV publishes them (flat `<id>.json` entries), made with Info-ZIP's zip. */
async function zipOf(dir: string, zipFile: string): Promise<string> {
  await run('zip', ['-q', '-j', '-r', zipFile, dir]);
  return zipFile;
}

function record(id: string, modified: string, name = 'pkg'): string {
  return JSON.stringify({
    id,
    modified,
    aliases: [`CVE-2099-${id.replace(/\D/g, '').padStart(4, '0')}`],
    details: 'x'.repeat(2000),
    affected: [{ package: { ecosystem: 'npm', name }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.0' }] }] }],
  });
}

describe(`berth vulndb import: directories, zips, re-imports, bad records, interrupted runs (${backend})`, () => {
  let deployment: Deployment;
  let store: VulnDbStore;
  const dir = tempDir('berth-vulndb-import-');
  before(async () => {
    deployment = await deploy(backend);
    store = deployment.stores.vulndb;
  });
  after(async () => {
    await deployment?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a directory tree: every record stored; the same import again changes nothing; the run and the age are recorded', async () => {
    const db = new VulnDb(store);
    const first = await db.import(FIXTURE, readOsvSource(FIXTURE), { batchSize: 4 });
    assert.deepEqual(
      [first.outcome, first.files, first.inserted, first.updated, first.unchanged, first.invalid],
      ['complete', FIXTURE_RECORDS, FIXTURE_RECORDS, 0, 0, 0],
    );
    const again = await db.import(FIXTURE, readOsvSource(FIXTURE));
    assert.deepEqual([again.inserted, again.updated, again.unchanged], [0, 0, FIXTURE_RECORDS]);
    const status = await db.status(60_000);
    assert.equal(status.advisories, FIXTURE_RECORDS);
    assert.equal(status.withdrawn, 1);
    assert.equal(status.lastImport?.id, again.id);
    assert.equal(status.stale, false);
    assert.ok(status.ageMs !== null && status.ageMs < 60_000);
    assert.equal(
      (await new VulnDb(store, () => Date.now() + 86_400_000).status(3_600_000)).stale,
      true,
      'a day later, with a maximum age of an hour',
    );
  });

  it('a zip of a newer copy: only the changed records are written (by id and modified)', async () => {
    const copy = path.join(dir, 'newer');
    cpSync(FIXTURE, copy, { recursive: true });
    const file = path.join(copy, 'npm', 'GHSA-aaaa-bbbb-0002.json');
    const changed = JSON.parse(readFileSync(file, 'utf8')) as { modified: string; affected: Array<{ package: { name: string } }> };
    changed.modified = '2026-07-01T00:00:00Z';
    changed.affected[0]!.package.name = 'right-pad';
    writeFileSync(file, JSON.stringify(changed));
    writeFileSync(path.join(copy, 'npm', 'GHSA-new-0001.json'), record('GHSA-new-0001', '2026-07-01T00:00:00Z'));
    const zip = await zipOf(copy, path.join(dir, 'all.zip'));
    const result = await new VulnDb(store).import(zip, readOsvSource(zip));
    assert.deepEqual(
      [result.files, result.inserted, result.updated, result.unchanged, result.invalid],
      [FIXTURE_RECORDS + 1, 1, 1, FIXTURE_RECORDS - 1, 0],
    );
    assert.deepEqual(
      (await store.affecting(['npm'], ['right-pad'])).map((r) => r.id),
      ['GHSA-aaaa-bbbb-0002'],
    );
    assert.deepEqual(await store.affecting(['npm'], ['left-pad']), []);
  });

  it('bad records are skipped with a count and a reason each; the good ones are stored; files that are not JSON are not read', async () => {
    const result = await new VulnDb(store).import(BAD, readOsvSource(BAD));
    assert.equal(result.outcome, 'complete');
    assert.equal(result.files, 6, 'README.txt is not a record file');
    assert.equal(result.inserted, 1);
    assert.equal(result.invalid, 5);
    const reasons = result.errors.map((e) => e.slice(e.lastIndexOf('/') + 1));
    assert.deepEqual(reasons, [
      'bad-id.json: not an OSV record: id: an id without blanks; modified: an RFC 3339 time',
      'git-no-repo.json: not an OSV record: affected.0.ranges.0: a GIT range names its repo',
      'no-modified.json: not an OSV record: modified: Invalid input: expected string, received undefined',
      'not-json.json: not JSON (Unexpected end of JSON input)',
      'two-keys.json: not an OSV record: affected.0.ranges.0.events.0: an event holds exactly one of introduced, fixed, last_affected, limit',
    ]);
    assert.equal(await store.advisory('BAD-1'), null);
    assert.ok(await store.advisory('GOOD-1'));
  });

  it('an import that stops half-way keeps its stored batches, is recorded as failed, and the same import resumes it', async () => {
    const big = path.join(dir, 'big');
    mkdirSync(big);
    for (let i = 0; i < 50; i++)
      writeFileSync(path.join(big, `R-${String(i).padStart(3, '0')}.json`), record(`R-${i}`, '2026-08-01T00:00:00Z', `pkg-${i}`));
    let batches = 0;
    const failing: VulnDbStore = Object.create(store) as VulnDbStore;
    failing.storeBatch = async (records) => {
      if (++batches === 3) throw new Error('connection lost');
      return store.storeBatch(records);
    };
    await assert.rejects(new VulnDb(failing).import(big, readOsvSource(big), { batchSize: 10 }), /connection lost/);
    const failed = (await store.imports(1))[0]!;
    assert.deepEqual([failed.outcome, failed.inserted, failed.files], ['failed', 20, 30]);
    assert.match(failed.errors.at(-1)!, /stopped: connection lost/);
    assert.ok(failed.finishedAt !== null);
    const resumed = await new VulnDb(store).import(big, readOsvSource(big), { batchSize: 10 });
    assert.deepEqual([resumed.outcome, resumed.inserted, resumed.unchanged], ['complete', 30, 20]);
    const status = await new VulnDb(store).status(60_000);
    assert.equal(status.lastImport?.id, resumed.id);
  });

  it('a zip entry larger than the record limit or a broken archive is refused clearly', async () => {
    const broken = path.join(dir, 'broken.zip');
    writeFileSync(broken, 'PK\u0003\u0004 not really a zip');
    await assert.rejects(
      new VulnDb(store).import(broken, readOsvSource(broken)),
      /broken\.zip: not a readable zip archive \(End of central directory record signature not found/,
    );
    const limited = path.join(dir, 'limited');
    mkdirSync(limited);
    writeFileSync(path.join(limited, 'SMALL-1.json'), JSON.stringify({ id: 'SMALL-1', modified: '2026-01-01T00:00:00Z' }));
    writeFileSync(path.join(limited, 'LARGE-1.json'), record('LARGE-1', '2026-01-01T00:00:00Z'));
    for (const source of [limited, await zipOf(limited, path.join(dir, 'limited.zip'))]) {
      const result = await new VulnDb(store).import(source, readOsvSource(source, 1000));
      assert.deepEqual([result.files, result.invalid, result.errors.length], [2, 1, 1], source);
      assert.match(result.errors[0]!, /LARGE-1\.json: larger than 1000 bytes$/);
    }
    await assert.rejects(async () => {
      for await (const _ of readOsvSource(path.join(dir, 'missing.txt'))) void _;
    }, /ENOENT/);
    const other = path.join(dir, 'records.txt');
    writeFileSync(other, '{}');
    await assert.rejects(async () => {
      for await (const _ of readOsvSource(other)) void _;
    }, /give a directory, a \.zip archive or a \.json file/);
  });
});
