#!/usr/bin/env bash
# npm test: the house rules first (types, format, lint, layers: `npm run check`), then every test on Node's own runner
# through tsx (see scripts/run-tests.ts). ACCRUE_TEST_FILTER=path-fragment narrows the run while developing and skips
# the house rules.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ACCRUE_TEST_FILTER:-}" ]; then npm run --silent check; fi
exec node --import tsx scripts/run-tests.ts
