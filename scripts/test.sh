#!/usr/bin/env bash
# The whole test suite: install what npm cannot, type-check, lint, then run every test
# (and the HTTP + interop suites again on PostgreSQL and MySQL metadata, and against 2-worker servers).
# Usage: npm test [-- test/http/blobs.test.ts …]   (default: every test/**/*.test.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/start-mariadb.sh
[ -d node_modules ] || npm ci
npx tsc -p tsconfig.json --noEmit
npx tsc -p ui/tsconfig.json --noEmit
npx eslint --max-warnings=0 .
# One format (.prettierrc): `npm run format` fixes what this refuses.
npm run --silent format:check
# The web UI's component tests (vitest + jsdom, ~30 s) before the long node:test passes.
npm run --silent test:ui
shopt -s globstar nullglob
if [ "$#" -gt 0 ]; then files=("$@"); else files=(test/**/*.test.ts); fi
[ "${#files[@]}" -gt 0 ] || { echo "no test files found" >&2; exit 1; }

# Pass 1: every suite on the default back ends (SQLite metadata).
# Pass 2: the HTTP, interop, auth, gc, policy, scanning, registries, replication, web UI and cluster suites again with PostgreSQL metadata
# (BERTH_TEST_METADATA=postgres: test/helpers/server.ts gives each test server a fresh database
# on 127.0.0.1:5432).
# Pass 3: the HTTP, interop, policy and web UI suites with MySQL/MariaDB metadata (BERTH_TEST_METADATA=mysql:
# a fresh database per test server on 127.0.0.1:3306). The metadata contract runs on all three in pass 1.
# Every pass that runs must pass; their summaries are repeated at the end.
# Pass 4: the HTTP and interop suites once more against `berth serve --workers 2` (BERTH_TEST_WORKERS=2:
# test/helpers/server.ts starts every test server as a 2-worker child process with the same
# configuration, SQLite metadata), so every protocol test also runs with requests spread over
# two processes. Not in that pass, because they read one process's memory, not the server's:
#   test/http/pull-counts.test.ts  flushes the in-process PullCounter (composition.pulls) and
#                                  counts what it wrote; the cluster's workers count their own pulls
#   test/http/memory.test.ts       measures the RSS of the child's pid, which is the primary's with
#                                  workers (per-worker memory is the bench's: npm run bench -- --cluster-scaling)
pg_files=()
mysql_files=()
cluster_files=()
# The browser end-to-end test (test/ui/e2e.test.ts: chromium, 10,000 repositories) runs once, in
# pass 1: what it drives of the server is covered on every database by the other test/ui suites.
for f in "${files[@]}"; do case "$f" in test/ui/e2e.test.ts) ;; test/http/*|test/interop/*|test/auth/*|test/gc/*|test/policies/*|test/scanning/*|test/registries/*|test/replication/*|test/ui/*|test/cluster/*) pg_files+=("$f") ;; esac; done
for f in "${files[@]}"; do case "$f" in test/ui/e2e.test.ts) ;; test/http/*|test/interop/*|test/policies/*|test/ui/*) mysql_files+=("$f") ;; esac; done
for f in "${files[@]}"; do case "$f" in test/http/pull-counts.test.ts|test/http/memory.test.ts) ;; test/http/*|test/interop/*) cluster_files+=("$f") ;; esac; done
# --test-timeout bounds each test FILE (the runner applies it per file): a hung file fails
# with "test timed out" after 10 minutes and the run goes on, instead of CI's 90-minute limit
# ending the run with no summary.
runner=(node --import tsx --test --test-reporter=spec --test-concurrency=2 --test-timeout=600000)
logs=$(mktemp -d /tmp/berth-test-logs.XXXXXX)
trap 'rm -rf "$logs"' EXIT
status=0
"${runner[@]}" "${files[@]}" 2>&1 | tee "$logs/sqlite" || status=1
if [ "${#pg_files[@]}" -gt 0 ]; then
  echo "== again with PostgreSQL metadata: ${#pg_files[@]} test files"
  BERTH_TEST_METADATA=postgres "${runner[@]}" "${pg_files[@]}" 2>&1 | tee "$logs/postgres" || status=1
fi
if [ "${#mysql_files[@]}" -gt 0 ]; then
  echo "== again with MySQL/MariaDB metadata: ${#mysql_files[@]} test files"
  BERTH_TEST_METADATA=mysql "${runner[@]}" "${mysql_files[@]}" 2>&1 | tee "$logs/mysql" || status=1
fi
if [ "${#cluster_files[@]}" -gt 0 ]; then
  echo "== again against berth serve --workers 2: ${#cluster_files[@]} test files"
  BERTH_TEST_WORKERS=2 "${runner[@]}" "${cluster_files[@]}" 2>&1 | tee "$logs/cluster" || status=1
fi
echo "== summary"
passed=0; failed=0
for pass in sqlite postgres mysql cluster; do
  [ -f "$logs/$pass" ] || continue
  echo "metadata=$pass: $(grep -E '^ℹ (tests|pass|fail|cancelled|skipped) ' "$logs/$pass" | sed 's/^ℹ //' | paste -sd, - | sed 's/,/, /g')"
  passed=$((passed + $(grep -E '^ℹ pass ' "$logs/$pass" | awk '{s+=$3} END {print s+0}')))
  failed=$((failed + $(grep -E '^ℹ (fail|cancelled) ' "$logs/$pass" | awk '{s+=$3} END {print s+0}')))
done
[ "$failed" -eq 0 ] || status=1
# The failures' details again at the very end (CI keeps only the tail of a long log).
for pass in sqlite postgres mysql cluster; do
  [ -f "$logs/$pass" ] && grep -q '^✖ failing tests:' "$logs/$pass" || continue
  echo "== failing tests, metadata=$pass"
  sed -n '/^✖ failing tests:/,$p' "$logs/$pass" | grep -vE '^ℹ ' | head -n 120
done
# One plain closing line over both passes (cancelled tests count as failed).
echo "${passed} passed, ${failed} failed"
exit "$status"
