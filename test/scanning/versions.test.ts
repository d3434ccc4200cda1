import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { compareApkVersions, isValidApkVersion } from '../../src/scanning/versions/apk.js';
import { compareDebianVersions, parseDebianVersion } from '../../src/scanning/versions/dpkg.js';
import { PEP440, SEMVER, schemeForEcosystem } from '../../src/scanning/versions/index.js';
import { tempDir } from '../helpers/server.js';

const run = promisify(execFile);
const dir = tempDir('berth-versions-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A small seeded generator (mulberry32): a failure reproduces with BERTH_VERSION_SEED. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.BERTH_VERSION_SEED ?? Date.now() % 1_000_000);
/** Versions in the ordered chain and random pairs checked against dpkg (each one dpkg process). */
const CHAIN = Number(process.env.BERTH_DPKG_CHAIN ?? 1000);
const PAIRS = Number(process.env.BERTH_DPKG_PAIRS ?? 1000);

/**
 * A valid Debian version biased towards the cases that matter: epochs, `~`, `+`, letters of
 * both cases, leading zeros, empty and non-empty revisions, hyphens inside the upstream part.
 */
function debianVersion(rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const digits = () => pick(['0', '1', '2', '9', '10', '01', '007', '20240101', String(Math.floor(rnd() * 100))]);
  const piece = (alphabet: readonly string[]) => {
    let s = '';
    const n = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < n; i++) s += rnd() < 0.45 ? digits() : pick(alphabet);
    return s;
  };
  const upstreamChars = ['.', '.', '~', '+', 'a', 'b', 'z', 'A', 'Z', 'rc', '~rc', '+dfsg', '~~', '.0', '-'] as const;
  const revisionChars = ['.', '~', '+', 'a', 'b', 'Z', 'deb12u', '+b', '~bpo'] as const;
  const epoch = rnd() < 0.2 ? `${pick(['0', '1', '2', '00', '10'])}:` : '';
  const upstream = digits() + (rnd() < 0.8 ? piece(upstreamChars) : '');
  const hasRevision = upstream.includes('-') || rnd() < 0.6;
  const revision = hasRevision ? `-${rnd() < 0.3 ? digits() : piece(revisionChars)}` : '';
  return `${epoch}${upstream}${revision}`.replace(/-(?=[^-]*$)$/, '');
}

/** A near neighbour of `v` (most bugs hide between versions that differ by one character). */
function neighbour(v: string, rnd: () => number): string {
  const edits = [
    (s: string) => `${s}~`,
    (s: string) => `${s}+1`,
    (s: string) => `${s}a`,
    (s: string) => `${s}0`,
    (s: string) => s.replace(/[0-9](?=[^0-9]*$)/, (d) => String((Number(d) + 1) % 10)),
    (s: string) => s.replace(/^(\d+:)?/, rnd() < 0.5 ? '1:' : ''),
    (s: string) => s.replace(/~/, ''),
    (s: string) => s.replace(/\.(\d)/, '.0$1'),
    (s: string) => (s.includes('-') ? s : `${s}-0`),
  ];
  const out = edits[Math.floor(rnd() * edits.length)]!(v);
  return parseDebianVersion(out) && /^(\d+:)?\d/.test(out) ? out : v;
}

/**
 * Runs `dpkg --compare-versions a op b` for every line `a op b` (4 at a time: each is a dpkg
 * process, ~10-60 ms on a loaded machine): one boolean per line.
 */
async function dpkgAgrees(lines: string[]): Promise<boolean[]> {
  const file = path.join(dir, `pairs-${lines.length}-${Math.random()}.txt`);
  writeFileSync(file, lines.map((l, i) => `${i} ${l}`).join('\n') + '\n');
  const script =
    'xargs -P 4 -L 1 sh -c \'if dpkg --compare-versions "$1" "$2" "$3" 2>/dev/null; then echo "$0 1"; else echo "$0 0"; fi\' < "$1"';
  const { stdout } = await run('bash', ['-c', script, 'bash', file], { maxBuffer: 64 * 1024 * 1024 });
  const verdicts: boolean[] = new Array<boolean>(lines.length);
  for (const line of stdout.trim().split('\n')) {
    const [index, ok] = line.split(' ');
    verdicts[Number(index)] = ok === '1';
  }
  return verdicts;
}

const OP = (r: number) => (r < 0 ? 'lt' : r > 0 ? 'gt' : 'eq');

describe('Debian versions (dpkg order)', () => {
  it('known cases: ~ before the end, letters before other characters, epochs, revisions', () => {
    const ordered = [
      '1.0~~',
      '1.0~~a',
      '1.0~',
      '1.0~rc1',
      '1.0',
      '1.0-0.1',
      '1.0-1',
      '1.0a',
      '1.0+b1',
      '1.0.1',
      '1.00.2',
      '1.1',
      '1.10',
      '2',
      '1:0.1',
    ];
    for (let i = 0; i + 1 < ordered.length; i++) {
      assert.equal(compareDebianVersions(ordered[i]!, ordered[i + 1]!), -1, `${ordered[i]} < ${ordered[i + 1]}`);
      assert.equal(compareDebianVersions(ordered[i + 1]!, ordered[i]!), 1);
    }
    for (const [a, b] of [
      ['1.0', '1.0-0'],
      ['0:1.0', '1.0'],
      ['1.01', '1.1'],
      ['1.0-1', '1.0-01'],
    ] as const)
      assert.equal(compareDebianVersions(a, b), 0, `${a} = ${b}`);
    assert.deepEqual(parseDebianVersion('2:1.2-3-4'), { epoch: 2, upstream: '1.2-3', revision: '4' });
    for (const bad of ['', ' ', 'a:1.0', ':1.0', '1.0-', '1 0']) assert.equal(parseDebianVersion(bad), null, `"${bad}" is refused`);
  });

  it(`property: ${CHAIN} generated versions sorted by compareDebianVersions form the order dpkg --compare-versions confirms pair by pair, and ${PAIRS} random pairs agree`, async (t) => {
    const rnd = random(SEED);
    t.diagnostic(`seed ${SEED} (BERTH_VERSION_SEED reproduces a run)`);
    const versions: string[] = [];
    while (versions.length < CHAIN) {
      const v = versions.length > 0 && rnd() < 0.4 ? neighbour(versions[Math.floor(rnd() * versions.length)]!, rnd) : debianVersion(rnd);
      assert.ok(parseDebianVersion(v), `generated ${v} parses`);
      versions.push(v);
    }
    const chain = [...versions].sort(compareDebianVersions);
    const lines: string[] = [];
    for (let i = 0; i + 1 < chain.length; i++)
      lines.push(`${chain[i]} ${OP(compareDebianVersions(chain[i]!, chain[i + 1]!))} ${chain[i + 1]}`);
    for (let i = 0; i < PAIRS; i++) {
      const a = versions[Math.floor(rnd() * versions.length)]!;
      const b = rnd() < 0.5 ? neighbour(a, rnd) : versions[Math.floor(rnd() * versions.length)]!;
      lines.push(`${a} ${OP(compareDebianVersions(a, b))} ${b}`);
    }
    const started = Date.now();
    const verdicts = await dpkgAgrees(lines);
    assert.equal(verdicts.filter((v) => v !== undefined).length, lines.length, 'dpkg answered every line');
    const disagreements = lines.filter((_, i) => !verdicts[i]);
    const equal = lines.filter((l) => l.includes(' eq ')).length;
    t.diagnostic(
      `${lines.length} comparisons checked against dpkg (${equal} equal pairs) in ${Date.now() - started} ms; disagreements: ${disagreements.length}`,
    );
    assert.deepEqual(disagreements.slice(0, 20), [], 'every comparison matches dpkg --compare-versions');
  });
});

describe('Alpine versions (apk-tools order)', () => {
  const vectors = readFileSync(new URL('./fixtures/apk-version.data', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');

  it("every comparison (<, >, =) and validity line of apk-tools' own test vectors holds", (t) => {
    let comparisons = 0;
    let validity = 0;
    const failures: string[] = [];
    for (const line of vectors) {
      const parts = line.split(/\s+/);
      if (parts.length === 3) {
        const [a, rawOp, b] = parts as [string, string, string];
        const negated = rawOp.startsWith('!');
        const op = negated ? rawOp.slice(1) : rawOp;
        if (!['<', '>', '=', '<=', '>='].includes(op)) continue; // ~ <~ >~ are apk's fuzzy dependency operators, not an order
        const r = compareApkVersions(a, b);
        const holds = (op.includes('<') && r < 0) || (op.includes('>') && r > 0) || (op.includes('=') && r === 0);
        if (holds === negated) failures.push(line);
        comparisons++;
        // The order is antisymmetric: b compared to a gives the opposite.
        if (compareApkVersions(b, a) !== -r) failures.push(`${line} (reversed)`);
      } else if (parts.length === 1) {
        const negated = parts[0]!.startsWith('!');
        const version = negated ? parts[0]!.slice(1) : parts[0]!;
        if (isValidApkVersion(version) === negated) failures.push(line);
        validity++;
      }
    }
    t.diagnostic(`${comparisons} comparisons and ${validity} validity checks from apk-tools' test/unit/version.data`);
    assert.ok(comparisons > 700);
    assert.deepEqual(failures, []);
  });

  it('suffixes, letters, revisions and leading zeros', () => {
    const ordered = [
      '1.0_alpha',
      '1.0_alpha2',
      '1.0_beta',
      '1.0_pre1',
      '1.0_rc1',
      '1.0',
      '1.0-r1',
      '1.0_p1',
      '1.0a',
      '1.0.1',
      '1.02',
      '1.1',
    ];
    for (let i = 0; i + 1 < ordered.length; i++)
      assert.equal(compareApkVersions(ordered[i]!, ordered[i + 1]!), -1, `${ordered[i]} < ${ordered[i + 1]}`);
    assert.equal(compareApkVersions('3.0.15-r0', '3.0.15-r0'), 0);
    assert.equal(compareApkVersions('1.36.1-r15', '1.36.1-r2'), 1);
  });
});

describe('semver (npm, Go, crates.io) and PEP 440 (PyPI)', () => {
  it('npm and crates.io: pre-releases below the release, build metadata ignored', () => {
    const npm = schemeForEcosystem('npm')!;
    assert.ok(npm.compare('1.2.3-rc.1', '1.2.3') < 0);
    assert.ok(npm.compare('1.2.3-rc.2', '1.2.3-rc.10') < 0);
    assert.equal(npm.compare('1.2.3+build.5', '1.2.3'), 0);
    assert.equal(npm.valid('1.2'), false);
    assert.equal(schemeForEcosystem('crates.io'), SEMVER);
  });

  it('Go: v prefixes, pseudo-versions before the release they precede, +incompatible', () => {
    const go = schemeForEcosystem('Go')!;
    assert.ok(go.valid('v0.0.0-20210101000000-abcdef123456'));
    assert.ok(go.compare('v1.2.3', '1.2.4') < 0);
    assert.ok(go.compare('v0.0.0-20210101000000-abcdef123456', 'v0.0.0-20220101000000-abcdef123456') < 0);
    assert.ok(go.compare('v1.2.4-0.20210101000000-abcdef123456', 'v1.2.4') < 0);
    assert.ok(go.compare('v1.2.4-0.20210101000000-abcdef123456', 'v1.2.3') > 0);
    assert.equal(go.compare('v2.0.0+incompatible', '2.0.0'), 0);
  });

  it('PyPI: dev < pre < release < post, epochs, release padding', () => {
    const py = schemeForEcosystem('PyPI')!;
    assert.equal(py, PEP440);
    const ordered = ['1.0.dev1', '1.0a1', '1.0b2', '1.0rc1', '1.0', '1.0.post1', '1.0.1', '1!0.1'];
    for (let i = 0; i + 1 < ordered.length; i++)
      assert.ok(py.compare(ordered[i]!, ordered[i + 1]!) < 0, `${ordered[i]} < ${ordered[i + 1]}`);
    assert.equal(py.compare('1.0', '1.0.0'), 0);
    assert.equal(py.valid('not a version'), false);
  });

  it("ecosystems with a release suffix use their base ecosystem's order; unknown ones have none", () => {
    assert.equal(schemeForEcosystem('Debian:12')?.name, 'dpkg');
    assert.equal(schemeForEcosystem('Alpine:v3.19')?.name, 'apk');
    assert.equal(schemeForEcosystem('Maven'), null);
  });
});
