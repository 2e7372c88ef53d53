#!/usr/bin/env bash
# The whole test suite, set-up included: typecheck, the dependency rule, every test (unit, conformance, interop,
# integration), then each benchmark once with a tiny time budget so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run typecheck
# The dependency rule (docs/architecture.md): layers, cycles, declared dependencies.
npm run check:layers
# Tests, examples and benchmarks import the package as users do (scripts/rewrite-imports.mjs).
npm run check:imports
# The adversary suite (test/hostile) opens past the TCP server's cap of 10,000 connections.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 20000 ]; then ulimit -n 20000; else ulimit -n "$hard"; fi
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
[ "$status" -eq 0 ] || exit "$status"
npm run bench:quick
