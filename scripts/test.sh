#!/usr/bin/env bash
# The whole test suite: install what npm cannot, type-check, lint, then run every test.
# Usage: npm test [-- test/http/blobs.test.ts …]   (default: every test/**/*.test.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -d node_modules ] || npm ci
npx tsc -p tsconfig.json --noEmit
npx eslint --max-warnings=0 .
shopt -s globstar nullglob
if [ "$#" -gt 0 ]; then files=("$@"); else files=(test/**/*.test.ts); fi
[ "${#files[@]}" -gt 0 ] || { echo "no test files found" >&2; exit 1; }
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
