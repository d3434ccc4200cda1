import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { matchPackages, type Finding, type InstalledPackage } from '../../src/scanning/match.js';
import { readOsvSource } from '../../src/scanning/sources.js';
import { VulnDb } from '../../src/scanning/vulndb.js';
import { deploy, type Backend, type Deployment } from '../contracts/deployment.js';

/**
 * The hand-made OSV fixture (test/scanning/fixtures/osv) imported into a real metadata
 * database, then package lists on both sides of every boundary it sets: each case names the
 * exact findings expected (advisory id, fixed version, severity), or none.
 */
const FIXTURE = new URL('./fixtures/osv', import.meta.url).pathname;
const backend = (process.env.BERTH_TEST_METADATA ?? 'sqlite') as Backend;

type Expected = [id: string, fixed: string | null, severity: Finding['severity']];

/** [package, the findings it must yield] — one line per side of a boundary. */
const CASES: Array<[InstalledPackage, Expected[]]> = [
  // Debian: source package and release; ~ sorts before the end; epochs.
  [{ ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u1' }, [['DSA-9001-1', '3.0.11-1~deb12u2', 'Critical']]],
  [{ ecosystem: 'Debian:12', name: 'openssl', version: '3.0.9-1' }, [['DSA-9001-1', '3.0.11-1~deb12u2', 'Critical']]],
  [{ ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u2' }, []],
  [{ ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1' }, []],
  [{ ecosystem: 'Debian:11', name: 'openssl', version: '1.1.1w-0+deb11u1' }, [['DSA-9002-1', '1.1.1w-0+deb11u2', 'Critical']]],
  [{ ecosystem: 'Debian:11', name: 'openssl', version: '1.1.1w-0+deb11u2' }, []],
  [{ ecosystem: 'Debian:12', name: 'zlib', version: '1.2.99.dfsg-9' }, [['DEBIAN-CVE-2099-0003', '1:1.2.13.dfsg-1', 'Medium']]],
  [{ ecosystem: 'Debian:11', name: 'zlib', version: '1:1.2.12.dfsg-2' }, [['DEBIAN-CVE-2099-0003', '1:1.2.13.dfsg-1', 'Medium']]],
  [{ ecosystem: 'Debian:12', name: 'zlib', version: '1:1.2.13.dfsg-1' }, []],
  [{ ecosystem: 'Debian:12', name: 'glibc', version: '2.36-9+deb12u4' }, [['DEBIAN-CVE-2099-0004', null, 'Negligible']]],
  [{ ecosystem: 'Debian:12', name: 'libssl3', version: '3.0.9-1' }, []], // a binary package name: Debian data names source packages
  // Alpine: release in the ecosystem, -r revisions, release candidates below the release.
  [{ ecosystem: 'Alpine:v3.19', name: 'busybox', version: '1.36.1-r15' }, [['ALPINE-CVE-2099-0010', '1.36.1-r16', 'High']]],
  [{ ecosystem: 'Alpine:v3.19', name: 'busybox', version: '1.36.1-r2' }, [['ALPINE-CVE-2099-0010', '1.36.1-r16', 'High']]],
  [{ ecosystem: 'Alpine:v3.19', name: 'busybox', version: '1.36.1-r16' }, []],
  [{ ecosystem: 'Alpine:v3.18', name: 'busybox', version: '1.36.1-r7' }, []],
  [{ ecosystem: 'Alpine:v3.18', name: 'busybox', version: '1.36.1-r6' }, [['ALPINE-CVE-2099-0010', '1.36.1-r7', 'High']]],
  [{ ecosystem: 'Alpine:v3.20', name: 'busybox', version: '1.36.1-r2' }, []],
  [{ ecosystem: 'Alpine:v3.19', name: 'curl', version: '8.5.0_rc1-r0' }, [['ALPINE-CVE-2099-0011', '8.5.0-r0', 'Low']]],
  [{ ecosystem: 'Alpine:v3.19', name: 'curl', version: '8.4.0-r0' }, [['ALPINE-CVE-2099-0011', '8.5.0-r0', 'Low']]],
  [{ ecosystem: 'Alpine:v3.19', name: 'curl', version: '8.5.0-r0' }, []],
  [{ ecosystem: 'Alpine:v3.19', name: 'curl', version: '8.3.0-r2' }, []],
  // npm: SEMVER ranges, pre-releases, last_affected, several ranges, limit, withdrawn advisories.
  [{ ecosystem: 'npm', name: 'lodash', version: '4.17.20' }, [['GHSA-aaaa-bbbb-0001', '4.17.21', 'High']]],
  [{ ecosystem: 'npm', name: 'lodash', version: '4.17.21-beta.1' }, [['GHSA-aaaa-bbbb-0001', '4.17.21', 'High']]],
  [{ ecosystem: 'npm', name: 'lodash', version: '4.17.21' }, []],
  [{ ecosystem: 'npm', name: 'left-pad', version: '1.3.0' }, [['GHSA-aaaa-bbbb-0002', null, 'Medium']]],
  [{ ecosystem: 'npm', name: 'left-pad', version: '1.0.0' }, [['GHSA-aaaa-bbbb-0002', null, 'Medium']]],
  [{ ecosystem: 'npm', name: 'left-pad', version: '1.3.1' }, []],
  [{ ecosystem: 'npm', name: 'left-pad', version: '0.9.9' }, []],
  [{ ecosystem: 'npm', name: 'multi', version: '1.1.9' }, [['GHSA-aaaa-bbbb-0003', '1.2.0', 'Critical']]],
  [{ ecosystem: 'npm', name: 'multi', version: '1.2.0' }, []],
  [{ ecosystem: 'npm', name: 'multi', version: '1.9.0' }, []],
  [{ ecosystem: 'npm', name: 'multi', version: '2.1.4' }, [['GHSA-aaaa-bbbb-0003', '2.1.5', 'Critical']]],
  [{ ecosystem: 'npm', name: 'multi', version: '2.1.5' }, []],
  [{ ecosystem: 'npm', name: 'multi', version: '5.9.9' }, [['GHSA-aaaa-bbbb-0003', null, 'Critical']]],
  [{ ecosystem: 'npm', name: 'multi', version: '6.0.0' }, []],
  [{ ecosystem: 'npm', name: 'multi', version: '4.9.9' }, []],
  // Go: v prefix, pseudo-versions.
  [{ ecosystem: 'Go', name: 'golang.org/x/net', version: 'v0.16.0' }, [['GO-2099-0030', '0.17.0', 'High']]],
  [{ ecosystem: 'Go', name: 'golang.org/x/net', version: 'v0.0.0-20230101000000-abcdef123456' }, [['GO-2099-0030', '0.17.0', 'High']]],
  [{ ecosystem: 'Go', name: 'golang.org/x/net', version: 'v0.17.0' }, []],
  [{ ecosystem: 'Go', name: 'golang.org/x/net', version: 'v0.17.1-0.20240101000000-abcdef123456' }, []],
  // PyPI: PEP 440 (4.2 == 4.2.0, rc below the release), names normalised, explicit versions.
  [{ ecosystem: 'PyPI', name: 'django', version: '4.2.0' }, [['PYSEC-2099-40', '4.2.7', 'Medium']]],
  [{ ecosystem: 'PyPI', name: 'Django', version: '4.2.7rc1' }, [['PYSEC-2099-40', '4.2.7', 'Medium']]],
  [{ ecosystem: 'PyPI', name: 'django', version: '4.2.7' }, []],
  [{ ecosystem: 'PyPI', name: 'django', version: '4.1.13' }, []],
  [{ ecosystem: 'PyPI', name: 'requests_toolbelt', version: '0.9.1' }, [['PYSEC-2099-41', null, 'High']]],
  [{ ecosystem: 'PyPI', name: 'Requests.Toolbelt', version: '0.9.1.0' }, [['PYSEC-2099-41', null, 'High']]],
  [{ ecosystem: 'PyPI', name: 'requests-toolbelt', version: '0.9.2' }, []],
  // crates.io: two fixed branches; no severity at all.
  [{ ecosystem: 'crates.io', name: 'smallvec', version: '1.6.0' }, [['RUSTSEC-2099-0050', '1.6.1', 'Unknown']]],
  [{ ecosystem: 'crates.io', name: 'smallvec', version: '0.6.13' }, [['RUSTSEC-2099-0050', '0.6.14', 'Unknown']]],
  [{ ecosystem: 'crates.io', name: 'smallvec', version: '0.6.14' }, []],
  [{ ecosystem: 'crates.io', name: 'smallvec', version: '1.6.1' }, []],
  [{ ecosystem: 'crates.io', name: 'smallvec', version: '0.6.2' }, []],
];

describe(`vulnerability matching against the OSV fixture (${backend})`, () => {
  let deployment: Deployment;
  before(async () => {
    deployment = await deploy(backend);
    const run = await new VulnDb(deployment.stores.vulndb).import(FIXTURE, readOsvSource(FIXTURE));
    assert.equal(run.invalid, 0, run.errors.join('\n'));
  });
  after(async () => deployment?.destroy());

  for (const [pkg, expected] of CASES) {
    const label = expected.length === 0 ? 'nothing' : expected.map(([id, fixed]) => `${id} (fixed ${fixed ?? 'nowhere'})`).join(', ');
    it(`${pkg.ecosystem} ${pkg.name} ${pkg.version} → ${label}`, async () => {
      const { findings } = await matchPackages(deployment.stores.vulndb, [pkg]);
      assert.deepEqual(
        findings.map((f) => [f.id, f.fixed, f.severity]),
        expected,
      );
      for (const f of findings) assert.deepEqual([f.package, f.installed, f.ecosystem], [pkg.name, pkg.version, pkg.ecosystem]);
    });
  }

  it('one list: every finding once, most severe first, with aliases (CVE first), links, CVSS score and counts', async () => {
    const packages = CASES.map(([pkg]) => pkg);
    const result = await matchPackages(deployment.stores.vulndb, packages);
    const expectedTotal = CASES.reduce((n, [, e]) => n + e.length, 0);
    assert.equal(result.findings.length, expectedTotal);
    assert.equal(result.summary.total, expectedTotal);
    const severities = result.findings.map((f) => f.severity);
    assert.deepEqual(
      severities,
      [...severities].sort(
        (a, b) =>
          ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'].indexOf(a) -
          ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'].indexOf(b),
      ),
    );
    const count = (s: Finding['severity']) => CASES.reduce((n, [, e]) => n + e.filter(([, , sev]) => sev === s).length, 0);
    for (const s of ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'] as const) assert.equal(result.summary[s], count(s), s);

    const go = result.findings.find((f) => f.id === 'GO-2099-0030')!;
    assert.deepEqual(go.aliases, ['CVE-2099-0030', 'GHSA-cccc-dddd-0030']);
    assert.deepEqual(go.cvss, { type: 'CVSS_V3', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', score: 7.5 });
    assert.equal(go.severitySource, 'cvss');
    const lodash = result.findings.find((f) => f.id === 'GHSA-aaaa-bbbb-0001')!;
    assert.deepEqual(lodash.links, ['https://github.com/advisories/GHSA-aaaa-bbbb-0001', 'https://www.npmjs.com/package/lodash']);
    assert.equal(lodash.severitySource, 'database');
    assert.equal(lodash.summary, 'lodash: prototype pollution (fixture)');
    const multi = result.findings.find((f) => f.id === 'GHSA-aaaa-bbbb-0003')!;
    assert.equal(multi.cvss?.type, 'CVSS_V4');
    assert.equal(multi.cvss?.score, 9.3);
    const py = result.findings.find((f) => f.id === 'PYSEC-2099-41')!;
    assert.deepEqual([py.cvss?.type, py.cvss?.score], ['CVSS_V2', 7.5]);
  });

  it('a version its ecosystem cannot order is reported as unorderable and matches no range', async () => {
    const pkg = { ecosystem: 'npm', name: 'lodash', version: 'not-a-version' };
    const result = await matchPackages(deployment.stores.vulndb, [pkg]);
    assert.deepEqual(result.findings, []);
    assert.deepEqual(result.unorderable, [pkg]);
  });

  it('the stored record drops OSV details and keeps the rest', async () => {
    const doc = JSON.parse((await deployment.stores.vulndb.advisory('DSA-9001-1'))!) as Record<string, unknown>;
    assert.equal(doc.details, undefined);
    assert.equal(doc.summary, 'openssl: fixture remote code execution');
    assert.equal(doc.schema_version, '1.6.0');
  });
});
