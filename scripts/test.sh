#!/usr/bin/env bash
# npm test: every test on Node's own runner through tsx (see scripts/run-tests.ts).
# ACCRUE_TEST_FILTER=path-fragment narrows the run while developing.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx scripts/run-tests.ts
