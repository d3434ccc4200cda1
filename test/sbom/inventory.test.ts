import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inventoryOf, layerOf, type Compression } from './support.js';

/** This machine's own dpkg database: what `dpkg-query -W` lists (installed packages) with their source and its version. */
function dpkgQuery(): Map<string, { version: string; source: string; sourceVersion: string }> {
  const out = execFileSync(
    'dpkg-query',
    ['-W', '-f', '${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n'],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const map = new Map<string, { version: string; source: string; sourceVersion: string }>();
  for (const line of out.trim().split('\n')) {
    const [status, name, version, source, sourceVersion] = line.split('\t');
    if (status!.trim() === 'ii') map.set(name!, { version: version!, source: source!, sourceVersion: sourceVersion! });
  }
  return map;
}

const debianFiles = () => [
  { path: 'etc/os-release', data: readFileSync('/etc/os-release') },
  { path: 'var/lib/dpkg/status', data: readFileSync('/var/lib/dpkg/status') },
];

describe('SBOM inventory: package databases read from image layers', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'berth-sbom-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const compression of ['gzip', 'zstd', 'none'] as Compression[]) {
    it(`a Debian layer (${compression}) built from this machine's dpkg database lists every package dpkg-query -W lists, with its version and source`, async () => {
      const inv = await inventoryOf([await layerOf(debianFiles(), compression)]);
      const expected = dpkgQuery();
      const debs = inv.packages.filter((p) => p.type === 'deb');
      assert.equal(debs.length, expected.size);
      for (const p of debs) {
        const e = expected.get(p.name);
        assert.ok(e, `${p.name} is not installed here`);
        assert.deepEqual([p.version, p.source?.name, p.source?.version], [e.version, e.source, e.sourceVersion], p.name);
      }
      const coreutils = debs.find((p) => p.name === 'coreutils')!;
      assert.equal(coreutils.version, expected.get('coreutils')!.version);
      assert.equal(coreutils.ecosystem, `Debian:${/VERSION_ID="?(\d+)/.exec(readFileSync('/etc/os-release', 'utf8'))![1]}`);
      assert.match(coreutils.purl, /^pkg:deb\/debian\/coreutils@[^?]+\?arch=amd64&distro=debian-\d+/);
      assert.equal(coreutils.path, 'var/lib/dpkg/status');
      assert.deepEqual(inv.notes, []);
    });
  }

  it('distroless status.d files (no Status field) are read, md5sums files are not', async () => {
    const inv = await inventoryOf([
      await layerOf([
        { path: 'etc/os-release', data: 'ID=debian\nVERSION_ID="12"\n' },
        {
          path: 'var/lib/dpkg/status.d/libssl3',
          data: 'Package: libssl3\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nSource: openssl\n',
        },
        { path: 'var/lib/dpkg/status.d/base-files', data: 'Package: base-files\nVersion: 12.4+deb12u8\nArchitecture: amd64\n' },
        { path: 'var/lib/dpkg/status.d/libssl3.md5sums', data: 'abc  usr/lib/x\n' },
      ]),
    ]);
    assert.deepEqual(
      inv.packages.map((p) => [p.name, p.version, p.source?.name, p.ecosystem]),
      [
        ['base-files', '12.4+deb12u8', 'base-files', 'Debian:12'],
        ['libssl3', '3.0.15-1~deb12u1', 'openssl', 'Debian:12'],
      ],
    );
  });

  const APK = [
    'C:Q1abc=',
    'P:musl',
    'V:1.2.4_git20230717-r4',
    'A:x86_64',
    'L:MIT',
    'o:musl',
    'F:lib',
    'R:ld-musl-x86_64.so.1',
    '',
    'C:Q1def=',
    'P:libcrypto3',
    'V:3.1.4-r5',
    'A:x86_64',
    'L:Apache-2.0',
    'o:openssl',
    'D:so:libc.musl-x86_64.so.1',
    '',
  ].join('\n');
  const alpineRelease = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n';

  it('apk: name, version, origin, licence, arch; ecosystem Alpine:v3.19', async () => {
    const inv = await inventoryOf([
      await layerOf([
        { path: 'etc/os-release', data: alpineRelease },
        { path: 'lib/apk/db/installed', data: APK },
      ]),
    ]);
    assert.deepEqual(
      inv.packages.map((p) => [p.name, p.version, p.source?.name, p.license, p.arch, p.ecosystem, p.purl]),
      [
        [
          'libcrypto3',
          '3.1.4-r5',
          'openssl',
          'Apache-2.0',
          'x86_64',
          'Alpine:v3.19',
          'pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl',
        ],
        [
          'musl',
          '1.2.4_git20230717-r4',
          'musl',
          'MIT',
          'x86_64',
          'Alpine:v3.19',
          'pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1',
        ],
      ],
    );
  });

  it('rpm: a real sqlite rpmdb (rpmbuild + rpm --justdb on this machine): epoch:version-release, licence, source rpm, arch', async () => {
    const top = join(tmp, 'rpm');
    mkdirSync(join(top, 'SPECS'), { recursive: true });
    writeFileSync(
      join(top, 'SPECS', 'hello.spec'),
      'Name: berth-hello\nVersion: 1.2.3\nRelease: 4.el9\nEpoch: 2\nSummary: t\nLicense: MIT and BSD\nBuildArch: noarch\n%description\nt\n%files\n',
    );
    execFileSync('rpmbuild', ['--quiet', '--define', `_topdir ${top}`, '-bb', join(top, 'SPECS', 'hello.spec')], { stdio: 'pipe' });
    const db = join(top, 'db');
    mkdirSync(db);
    execFileSync('rpm', ['--dbpath', db, '--initdb'], { stdio: 'pipe' });
    execFileSync(
      'rpm',
      ['--dbpath', db, '-i', '--justdb', '--nodeps', '--nosignature', join(top, 'RPMS', 'noarch', 'berth-hello-1.2.3-4.el9.noarch.rpm')],
      { stdio: 'pipe' },
    );
    const inv = await inventoryOf([
      await layerOf([
        { path: 'etc/os-release', data: 'ID="rocky"\nVERSION_ID="9.3"\n' },
        { path: 'var/lib/rpm/rpmdb.sqlite', data: readFileSync(join(db, 'rpmdb.sqlite')) },
      ]),
    ]);
    assert.deepEqual(
      inv.packages.map((p) => [p.name, p.version, p.license, p.arch, p.source?.name, p.ecosystem, p.purl]),
      [
        [
          'berth-hello',
          '2:1.2.3-4.el9',
          'MIT and BSD',
          'noarch',
          'berth-hello',
          'Rocky Linux:9',
          'pkg:rpm/rocky/berth-hello@1.2.3-4.el9?arch=noarch&distro=rocky-9.3&epoch=2',
        ],
      ],
    );
  });

  it('whiteouts across layers: a package database deleted or hidden by an opaque directory in an upper layer disappears; one re-added above stays', async () => {
    const lower = await layerOf([
      { path: 'etc/os-release', data: alpineRelease },
      { path: 'lib/apk/db/installed', data: APK },
      { path: 'var/lib/dpkg/status', data: 'Package: a\nStatus: install ok installed\nVersion: 1\n' },
      { path: 'app/node_modules/left-pad/package.json', data: '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}' },
      { path: 'app/node_modules/lodash/package.json', data: '{"name":"lodash","version":"4.17.21","license":"MIT"}' },
    ]);
    const before = await inventoryOf([lower]);
    assert.deepEqual(before.packages.map((p) => p.name).sort(), ['a', 'left-pad', 'libcrypto3', 'lodash', 'musl']);
    const upper = await layerOf([
      { path: 'var/lib/dpkg/.wh.status', data: '' },
      { path: 'lib/apk/db/.wh..wh..opq', data: '' },
      { path: 'app/node_modules/.wh.left-pad', data: '' },
    ]);
    const after1 = await inventoryOf([lower, upper]);
    assert.deepEqual(
      after1.packages.map((p) => p.name),
      ['lodash'],
    );
    // The opaque directory hides the layers below only: a database written in the same layer counts.
    const readded = await layerOf([
      { path: 'lib/apk/db/.wh..wh..opq', data: '' },
      { path: 'lib/apk/db/installed', data: 'P:busybox\nV:1.36.1-r15\no:busybox\n' },
    ]);
    const after2 = await inventoryOf([lower, upper, readded]);
    assert.deepEqual(
      after2.packages.map((p) => [p.name, p.layer]),
      [
        ['busybox', `sha256:${'2'.padStart(64, '0')}`],
        ['lodash', `sha256:${'0'.padStart(64, '0')}`],
      ],
    );
    // A whole directory whited out takes what is under it.
    const gone = await inventoryOf([lower, await layerOf([{ path: '.wh.app', data: '' }])]);
    assert.deepEqual(gone.packages.map((p) => p.name).sort(), ['a', 'libcrypto3', 'musl']);
  });

  it('npm lockfile v3 and installed package.json, Python dist-info METADATA, Cargo.lock', async () => {
    const lock = {
      name: 'app',
      lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/@types/node': { version: '20.1.0', license: 'MIT' },
        'node_modules/express': { version: '4.18.2', license: 'MIT' },
        'node_modules/mylink': { link: true, resolved: '../x' },
      },
    };
    const inv = await inventoryOf([
      await layerOf([
        { path: 'srv/app/package-lock.json', data: JSON.stringify(lock) },
        { path: 'usr/lib/node_modules/npm/node_modules/semver/package.json', data: '{"name":"semver","version":"7.5.4","license":"ISC"}' },
        {
          path: 'usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA',
          data: 'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nLicense: not a header\n',
        },
        {
          path: 'usr/local/lib/python3.12/site-packages/Flask_Cors-4.0.0.dist-info/METADATA',
          data: 'Metadata-Version: 2.4\nName: Flask_Cors\nVersion: 4.0.0\nLicense-Expression: MIT\n',
        },
        {
          path: 'src/tool/Cargo.lock',
          data: 'version = 3\n\n[[package]]\nname = "tool"\nversion = "0.1.0"\n\n[[package]]\nname = "serde"\nversion = "1.0.193"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "abc"\ndependencies = [\n "serde_derive",\n]\n',
        },
      ]),
    ]);
    assert.deepEqual(
      inv.packages.map((p) => [p.type, p.name, p.version, p.license ?? null, p.ecosystem, p.purl]),
      [
        ['cargo', 'serde', '1.0.193', null, 'crates.io', 'pkg:cargo/serde@1.0.193'],
        ['npm', '@types/node', '20.1.0', 'MIT', 'npm', 'pkg:npm/%40types/node@20.1.0'],
        ['npm', 'express', '4.18.2', 'MIT', 'npm', 'pkg:npm/express@4.18.2'],
        ['npm', 'semver', '7.5.4', 'ISC', 'npm', 'pkg:npm/semver@7.5.4'],
        ['pypi', 'Flask_Cors', '4.0.0', 'MIT', 'PyPI', 'pkg:pypi/flask-cors@4.0.0'],
        ['pypi', 'requests', '2.31.0', 'Apache 2.0', 'PyPI', 'pkg:pypi/requests@2.31.0'],
      ],
    );
  });

  /** A Go binary's module info as `go version -m` would print it, read here by a plain search (independent of the sink). */
  function goInfo(file: string): { go: string; deps: [string, string][] } {
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from('\xff Go buildinf:', 'latin1'));
    const text = bytes.subarray(at, at + 1024 * 1024).toString('latin1');
    const go = /go(\d+\.\d+(?:\.\d+)?)/.exec(text)![1]!;
    const deps = [...text.matchAll(/\n(?:mod|dep)\t([^\t\n]+)\t(v[^\t\n]+)/g)].map((m) => [m[1]!, m[2]!] as [string, string]);
    return { go, deps };
  }

  it('Go: a real Go binary on this machine (umoci, from install-system-deps) — its Go version as stdlib, read from a layer without holding the binary', async () => {
    const file = '/usr/bin/umoci';
    assert.ok(existsSync(file), 'umoci is installed by scripts/install-system-deps.sh');
    const expected = goInfo(file);
    const inv = await inventoryOf([await layerOf([{ path: 'usr/bin/umoci', data: readFileSync(file), mode: 0o755 }])]);
    assert.deepEqual(
      inv.packages.map((p) => [p.name, p.version, p.ecosystem, p.path]),
      [...expected.deps.map(([n, v]) => [n, v, 'Go', 'usr/bin/umoci']), ['stdlib', expected.go, 'Go', 'usr/bin/umoci']].sort(),
    );
  });

  const WITH_DEPS = [
    '/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator',
    '/usr/lib/google-cloud-sdk/platform/google_appengine/go-app-stager',
  ].find(existsSync);
  it(
    `Go: module dependencies of a real module-mode binary (${WITH_DEPS ?? 'none on this machine'})`,
    {
      skip: WITH_DEPS
        ? false
        : 'no module-mode Go binary with dependencies on this machine (go is not installed: golang-go is 1.19 and too heavy for install-system-deps)',
    },
    async () => {
      const expected = goInfo(WITH_DEPS!);
      assert.ok(expected.deps.length > 0);
      const inv = await inventoryOf([await layerOf([{ path: 'bin/tool', data: readFileSync(WITH_DEPS!), mode: 0o755 }], 'none')]);
      const got = inv.packages.map((p) => [p.name, p.version]);
      for (const dep of expected.deps)
        assert.ok(
          got.some(([n, v]) => n === dep[0] && v === dep[1]),
          `${dep.join('@')} listed`,
        );
      assert.ok(got.some(([n, v]) => n === 'stdlib' && v === expected.go));
    },
  );

  it('a 200 MiB layer (a 200 MiB executable scanned for Go build info, then a dpkg status) is read with RSS growth well under its size', async () => {
    const big = Buffer.alloc(200 * 1024 * 1024);
    big.write('\x7fELF', 0, 'latin1');
    const layer = await layerOf([
      { path: 'usr/bin/huge', data: big, mode: 0o755 },
      { path: 'var/lib/dpkg/status', data: 'Package: tail\nStatus: install ok installed\nVersion: 9\n' },
    ]);
    global.gc?.();
    const start = process.memoryUsage().rss;
    let peak = start;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const inv = await inventoryOf([layer]);
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.deepEqual(
      inv.packages.map((p) => p.name),
      ['tail'],
    );
    const growthMiB = (peak - start) / 1024 / 1024;
    console.log(`200 MiB layer (${(layer.length / 1024).toFixed(0)} KiB gzip): RSS growth ${growthMiB.toFixed(1)} MiB`);
    assert.ok(growthMiB < 64, `RSS grew ${growthMiB.toFixed(1)} MiB`);
  });
});
