#!/usr/bin/env node
// Compiles src/ into dist/ with tsc (tsconfig.build.json) and builds the web UI (ui/) into
// dist/ui/ with Vite, and remembers when it did each.
//   node scripts/build.mjs             always compile both
//   node scripts/build.mjs --if-stale  compile only what is stale: the server when a file under src/
//                                      (or a tsconfig) is newer than its last build, the UI when a
//                                      file under ui/ is newer than dist/ui: `npm start` and `npm ci`
//                                      (prepare) use it, so a restart skips both (a second instead of 20+).
//   --at-install                       (prepare) without TypeScript or Vite (npm ci --omit=dev), warn
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
const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
const uiStamp = path.join(root, 'dist', '.ui-build-stamp');
const uiIndex = path.join(root, 'dist', 'ui', 'index.html');
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
  const inputs = [
    newestMtime(path.join(root, 'src')),
    ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(path.join(root, f)).mtimeMs),
  ];
  return Math.max(...inputs) > built ? 'sources changed since the last build' : null;
}

/** The UI is stale when dist/ui has no index.html or a file under ui/ changed after its build. */
function uiStale() {
  if (!existsSync(uiStamp) || !existsSync(uiIndex)) return 'no UI build yet';
  return newestMtime(path.join(root, 'ui')) > statSync(uiStamp).mtimeMs ? 'UI sources changed since the last build' : null;
}

/** Builds ui/ into dist/ui (index.html + hashed assets/) with Vite. */
function buildUi(reason) {
  if (!existsSync(path.join(root, 'ui', 'index.html'))) return;
  if (!existsSync(vite)) {
    if (existsSync(uiIndex)) return say(`${reason}, but Vite is not installed (npm ci --omit=dev?): serving the existing dist/ui/`);
    say('Vite is not installed: the web UI is not built (run `npm ci` with dev dependencies, then `npm run build`)');
    if (!atInstall) process.exit(1);
    return;
  }
  say(`${reason}: building the web UI into dist/ui/ (vite)…`);
  const started = Date.now();
  const result = spawnSync(process.execPath, [vite, 'build', '--config', path.join(root, 'ui', 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    say(`vite build failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
  mkdirSync(path.dirname(uiStamp), { recursive: true });
  writeFileSync(uiStamp, `${new Date().toISOString()}\n`);
  say(`web UI done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

// `npm ci` in a directory holding only package.json and the lock (e.g. a container image's
// dependency layer): nothing to compile yet.
if (!existsSync(path.join(root, 'src')) || !existsSync(path.join(root, 'tsconfig.build.json'))) process.exit(0);

const uiReason = ifStale ? uiStale() : 'requested';
if (uiReason !== null) buildUi(uiReason);
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
