#!/usr/bin/env bash
# Runs every test file under test/ on Node's own runner through tsx.
# ACCRUE_TEST_FILTER=path-fragment narrows the run while developing.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find test -name '*.test.ts' | sort | grep -- "${ACCRUE_TEST_FILTER:-}" || true)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 "${files[@]}"
