#!/usr/bin/env bash
# The whole test suite, as CI runs it: generated code fresh, types check,
# unit + property tests, integration tests against a real kube-apiserver.
# Ends with a plain "N passed, N failed, N skipped" line.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .tmp

step() { printf '\n== %s\n' "$*" >&2; }

step "proto: lint and staleness check"
bash hack/check-proto.sh || exit 1
step "typecheck (tsc --noEmit, strict)"
npx --no-install tsc -p tsconfig.json --noEmit || exit 1
step "build (tsc → dist/)"
npx --no-install tsc -p tsconfig.build.json || exit 1
step "Go SDK (sdk/go: gofmt, go vet, go test against real PostgreSQL, MariaDB and SQLite)"
bash hack/test-go.sh | tee .tmp/go-test.log >&2
go_rc=${PIPESTATUS[0]}
go_counts=$(tail -1 .tmp/go-test.log)
step "tests (vitest: unit, then integration against the real control plane)"
# Our control-plane processes inherit this marker; another checkout's tests running beside
# this one (before or after us) have their own, so their processes are not counted as ours.
export KUBETX_TEST_RUN="$$-$RANDOM-$(date +%s)"
ours() {
  for p in $(pgrep -x kube-apiserver; pgrep -x etcd); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "KUBETX_TEST_RUN=$KUBETX_TEST_RUN" && echo "$p"
  done
}
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json "$@"
rc=$?
[ "$go_rc" = 0 ] || rc=1
if [ -f .tmp/vitest.json ]; then
  # One line for both suites: vitest's counts plus the Go suite's ("go: N passed, N failed, N skipped").
  GO_COUNTS="$go_counts" node -e '
    const r = require("./.tmp/vitest.json");
    const go = (process.env.GO_COUNTS.match(/(\d+) passed, (\d+) failed, (\d+) skipped/) ?? [0, 0, 1, 0]).slice(1).map(Number);
    console.log(`${r.numPassedTests + go[0]} passed, ${r.numFailedTests + go[1]} failed, ${r.numPendingTests + (r.numTodoTests ?? 0) + go[2]} skipped`);
    if (r.numTotalTests === 0) process.exit(1);
  ' || rc=1
fi
leftover=$(ours | tr '\n' ' ')
if [ -n "${leftover// /}" ]; then
  echo "test harness left control-plane processes running: $leftover" >&2
  rc=1
fi
exit $rc
