import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deploy, type Backend, type Deployment } from '../contracts/deployment.js';
import { metadataEnvOf, runBerth } from '../helpers/cli.js';
import { tempDir } from '../helpers/server.js';

const FIXTURE = new URL('./fixtures/osv', import.meta.url).pathname;
const backend = (process.env.BERTH_TEST_METADATA ?? 'sqlite') as Backend;

describe(`npx berth vulndb import / status / match (${backend})`, () => {
  let deployment: Deployment;
  const dir = tempDir('berth-vulndb-cli-');
  before(async () => {
    deployment = await deploy(backend);
  });
  after(async () => {
    await deployment?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `berth <args>` on the deployment's data directory and metadata database: exit code and output. */
  const berth = (args: string[]) => runBerth(args, metadataEnvOf(deployment.config.data.dir, deployment.config.metadata));

  it('import prints the counts; status shows the advisories per ecosystem and a fresh age; --check exits 1 once stale; match prints the findings', async () => {
    const imported = await berth(['vulndb', 'import', FIXTURE]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.stdout, `imported ${FIXTURE}: 14 files: 14 new, 0 updated, 0 unchanged, 0 invalid\n`);

    const status = await berth(['vulndb', 'status', '--check']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^advisories: 14 \(1 withdrawn\)\n/);
    assert.match(status.stdout, /\n {2}Debian:12: 2\n/);
    assert.match(status.stdout, /\n {2}npm: 4\n/);
    assert.match(
      status.stdout,
      /\nlast import: \S+ from .*fixtures\/osv \(14 files: 14 new, 0 updated, 0 unchanged, 0 invalid\)\nage: \d+s\n$/,
    );

    const stale = await berth(['vulndb', 'status', '--max-age', '1ms', '--check', '--json']);
    assert.equal(stale.code, 1);
    const json = JSON.parse(stale.stdout) as { stale: boolean; advisories: number; lastImport: { inserted: number } };
    assert.deepEqual([json.stale, json.advisories, json.lastImport.inserted], [true, 14, 14]);

    const packages = path.join(dir, 'packages.json');
    writeFileSync(
      packages,
      JSON.stringify([
        { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u1' },
        { ecosystem: 'npm', name: 'lodash', version: '4.17.21' },
        { ecosystem: 'Alpine:v3.19', name: 'busybox', version: '1.36.1-r15' },
      ]),
    );
    const matched = await berth(['vulndb', 'match', packages]);
    assert.equal(matched.code, 0, matched.stderr);
    assert.equal(
      matched.stdout,
      [
        'Critical   DSA-9001-1 (CVE-2099-0001)  openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2',
        'High       ALPINE-CVE-2099-0010 (CVE-2099-0010)  busybox 1.36.1-r15 → 1.36.1-r16',
        '2 vulnerabilities: 1 critical, 1 high, 0 medium, 0 low, 0 negligible, 0 unknown',
        '',
      ].join('\n'),
    );
  });

  it('refusals: a missing path and a malformed package list exit 2 naming the problem', async () => {
    const missing = await berth(['vulndb', 'import', path.join(dir, 'nowhere')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nowhere: no such file or directory/);
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ ecosystem: 'npm', name: 'x' }]));
    const refused = await berth(['vulndb', 'match', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /bad\.json: not a package list: 0\.version: /);
  });
});
