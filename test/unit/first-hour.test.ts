import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

// Not from test/helpers/server.ts: that imports the whole server, which these checks must not need.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tempDir = () => mkdtempSync(path.join(os.tmpdir(), 'berth-first-hour-'));

/**
 * The first hour of a new user (issue 12): a restart does not recompile, the CLI starts without
 * loading the server, `npm ci` prints no EBADENGINE on the Node it runs on, and every command in
 * the docs is spelt the way that works in a fresh checkout (`npx berth …`).
 */

describe('build once: scripts/build.mjs --if-stale (npm start, npm ci)', () => {
  /** A throw-away checkout: the real build script, a fake tsc that counts its runs and writes dist/src/cli.js. */
  function fakeCheckout(): {
    root: string;
    build: (...args: string[]) => { status: number | null; stderr: string };
    runs: () => number;
    touch: (file: string) => void;
  } {
    const root = tempDir();
    for (const dir of ['scripts', 'src', 'node_modules/typescript/bin']) mkdirSync(path.join(root, dir), { recursive: true });
    copyFileSync(path.join(ROOT, 'scripts/build.mjs'), path.join(root, 'scripts/build.mjs'));
    writeFileSync(path.join(root, 'src/cli.ts'), 'export {};\n');
    for (const file of ['tsconfig.json', 'tsconfig.build.json']) writeFileSync(path.join(root, file), '{}\n');
    writeFileSync(
      path.join(root, 'node_modules/typescript/bin/tsc'),
      `const fs = require('node:fs'); const path = require('node:path'); const root = ${JSON.stringify(root)};
fs.mkdirSync(path.join(root, 'dist/src'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist/src/cli.js'), '');
fs.appendFileSync(path.join(root, 'tsc-runs'), 'x');\n`,
    );
    writeFileSync(path.join(root, 'node_modules/typescript/package.json'), '{"type":"commonjs"}\n');
    return {
      root,
      build: (...args) => {
        const r = spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs'), ...args], { cwd: root, encoding: 'utf8' });
        return { status: r.status, stderr: r.stderr };
      },
      runs: () => {
        try {
          return readFileSync(path.join(root, 'tsc-runs'), 'utf8').length;
        } catch {
          return 0;
        }
      },
      // The file changes after the last build: the build is dated a minute back (mtime granularity must not decide the test).
      touch: (file) => {
        const now = Date.now() / 1000;
        utimesSync(path.join(root, 'dist/.build-stamp'), now - 60, now - 60);
        utimesSync(path.join(root, file), now, now);
      },
    };
  }

  it('compiles when there is no build, then not again until a file under src/ or a tsconfig is newer; the bin is executable', () => {
    const c = fakeCheckout();
    try {
      assert.equal(c.build('--if-stale').status, 0);
      assert.equal(c.runs(), 1, 'no build yet: compiled');
      assert.equal(statSync(path.join(c.root, 'dist/src/cli.js')).mode & 0o777, 0o755, 'npx berth / npm link need an executable bin');

      const again = c.build('--if-stale');
      assert.equal(again.status, 0);
      assert.equal(c.runs(), 1, `nothing changed: no recompilation (${again.stderr})`);

      c.touch('src/cli.ts');
      c.build('--if-stale');
      assert.equal(c.runs(), 2, 'a changed source recompiles');
      c.build('--if-stale');
      assert.equal(c.runs(), 2);
      c.touch('tsconfig.build.json');
      c.build('--if-stale');
      assert.equal(c.runs(), 3, 'a changed tsconfig recompiles');
    } finally {
      rmSync(c.root, { recursive: true, force: true });
    }
  });

  it('without TypeScript (npm ci --omit=dev) the install warns and succeeds; npm start runs an existing build', () => {
    const c = fakeCheckout();
    try {
      rmSync(path.join(c.root, 'node_modules/typescript'), { recursive: true });
      const install = c.build('--if-stale', '--at-install');
      assert.equal(install.status, 0, 'npm ci --omit=dev must not fail');
      assert.match(install.stderr, /TypeScript is not installed/);
      assert.equal(c.build('--if-stale').status, 1, 'no compiler and no build: npm start cannot run');
      mkdirSync(path.join(c.root, 'dist/src'), { recursive: true });
      writeFileSync(path.join(c.root, 'dist/src/cli.js'), '');
      const start = c.build('--if-stale');
      assert.equal(start.status, 0);
      assert.match(start.stderr, /running the existing dist\//);
    } finally {
      rmSync(c.root, { recursive: true, force: true });
    }
  });

  it('npm start and npm ci (prepare) build only when stale, and npm start runs the compiled CLI', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    assert.match(pkg.scripts.start!, /^node scripts\/build\.mjs --if-stale && node .*dist\/src\/cli\.js serve$/);
    assert.equal(pkg.scripts.prepare, 'node scripts/build.mjs --if-stale --at-install');
    assert.equal(pkg.bin.berth, 'dist/src/cli.js');
  });
});

describe('the CLI starts fast', () => {
  it('berth --help loads commander and the CLI files only (no server, stores, zod or YAML parser)', () => {
    // A resolve hook (registered after tsx, so it sees every resolved module) prints each one.
    const hook = `data:text/javascript,${encodeURIComponent(`
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent("export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.startsWith('file:')) process.stderr.write('LOADED ' + r.url + '\\\\n'); return r; }"));
    `)}`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', hook, path.join(ROOT, 'src/cli.ts'), '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: berth/);
    const loaded = [...r.stderr.matchAll(/^LOADED file:\/\/(.*)$/gm)].map((m) => path.relative(ROOT, m[1]!));
    assert.ok(loaded.includes('src/cli.ts'), `the hook saw the CLI load: ${r.stderr}`);
    const packages = new Set(loaded.filter((f) => f.includes('node_modules/')).map((f) => f.split('node_modules/').pop()!.split('/')[0]));
    assert.deepEqual([...packages], ['commander'], 'only commander is imported up front; each command imports what it runs');
    const heavy = loaded.filter((f) => /^src\/(server|compose|stores|config\/load|metadata|http)\b/.test(f));
    assert.deepEqual(heavy, [], 'the server and the stores load only for the commands that need them');
  });
});

describe('npm ci prints no EBADENGINE', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[] }>;
  };
  /** The packages npm would warn about on Node `version`. */
  const refusing = (version: string) =>
    Object.entries(lock.packages)
      .map(([name, p]) => [name || 'berth', Array.isArray(p.engines) ? undefined : p.engines?.node] as const)
      .filter(([, range]) => range !== undefined && !semver.satisfies(version, range))
      .map(([name, range]) => `${name} wants node ${range}`);

  it('every package in package-lock.json admits the Node version running the tests', () => {
    assert.deepEqual(
      refusing(process.versions.node),
      [],
      `npm ci on Node ${process.versions.node} would print EBADENGINE (pin a release that admits it, with package.json "overrides")`,
    );
  });

  it("every package admits the lowest release of each Node line package.json's engines supports", () => {
    // "^20.19.0 || ^22.13.0 || ^24.0.0" → 20.19.0, 22.13.0, 24.0.0: what a user may install with.
    const lowest = new semver.Range(pkg.engines.node).set.map(
      (comparators) => semver.minVersion(comparators.map((c) => c.value).join(' '))!.version,
    );
    assert.ok(lowest.length > 0);
    for (const version of lowest)
      assert.deepEqual(
        refusing(version),
        [],
        `package.json's engines (${pkg.engines.node}) admit Node ${version}, but npm ci would print EBADENGINE there`,
      );
  });
});

describe('one spelling of the berth command in the docs', () => {
  it('no shell block in README.md or docs/*.md runs a bare `berth` (not on PATH in a fresh clone): npx berth …', () => {
    const files = [
      'README.md',
      ...readdirSync(path.join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const bare: string[] = [];
    for (const file of files) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const block of text.matchAll(/```(sh|bash|shell|console)?\n([\s\S]*?)```/g)) {
        for (const line of block[2]!.split('\n')) {
          // A command position: line start (after $ or VAR=value assignments), after ; && || | ( or $(.
          if (/(^\s*(\$\s+)?([A-Z_][A-Z0-9_]*=\S*\s+)*|[;&|(]\s*|\$\(\s*)berth\s/.test(line)) bare.push(`${file}: ${line.trim()}`);
        }
      }
    }
    assert.deepEqual(bare, []);
  });
});
