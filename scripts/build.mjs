#!/usr/bin/env node
// Compiles src/ into dist/ with tsc (tsconfig.build.json), and remembers when it did.
//   node scripts/build.mjs             always compile
//   node scripts/build.mjs --if-stale  compile only when a file under src/ (or a tsconfig) is newer
//                                      than the last build: `npm start` and `npm ci` (prepare) use it,
//                                      so a restart skips tsc (about a second instead of 20+).
//   --at-install                       (prepare) without TypeScript (npm ci --omit=dev), warn
//                                      instead of failing the install.
// Plain JavaScript on purpose: it runs before anything is compiled, without a loader.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const ifStale = process.argv.includes('--if-stale');
const atInstall = process.argv.includes('--at-install');
const say = (line) => process.stderr.write(`berth build: ${line}\n`);

/** Newest modification time under `dir` (files only), 0 when it does not exist. */
function newestMtime(dir) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** A build is stale when there is none yet or any input changed after it. */
function stale() {
  if (!existsSync(stamp) || !existsSync(path.join(root, 'dist', 'src', 'cli.js'))) return 'no build yet';
  const built = statSync(stamp).mtimeMs;
  const inputs = [newestMtime(path.join(root, 'src')), ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(path.join(root, f)).mtimeMs)];
  return Math.max(...inputs) > built ? 'sources changed since the last build' : null;
}

// `npm ci` in a directory holding only package.json and the lock (e.g. a container image's
// dependency layer): nothing to compile yet.
if (!existsSync(path.join(root, 'src')) || !existsSync(path.join(root, 'tsconfig.build.json'))) process.exit(0);

const reason = ifStale ? stale() : 'requested';
if (reason === null) process.exit(0);
if (!existsSync(tsc)) {
  // npm ci --omit=dev: no compiler. A build from before still runs; none at all cannot.
  if (existsSync(path.join(root, 'dist', 'src', 'cli.js'))) {
    say(`${reason}, but TypeScript is not installed (npm ci --omit=dev?): running the existing dist/`);
    process.exit(0);
  }
  say('TypeScript is not installed: run `npm ci` (with dev dependencies) to build dist/');
  process.exit(atInstall ? 0 : 1);
}
say(`${reason}: compiling src/ into dist/ (tsc)…`);
const started = Date.now();
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  say(`tsc failed (exit ${result.status ?? result.signal})`);
  process.exit(result.status ?? 1);
}
// The bin (package.json "bin": `npx berth`, `npm link`) must be executable; tsc writes 0644.
chmodSync(path.join(root, 'dist', 'src', 'cli.js'), 0o755);
mkdirSync(path.dirname(stamp), { recursive: true });
writeFileSync(stamp, `${new Date().toISOString()}\n`);
say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
