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
step "GitHub Actions workflows: actionlint (.github/workflows)"; bash hack/actionlint.sh || exit 1
step "typecheck (tsc --noEmit, strict)"
npx --no-install tsc -p tsconfig.json --noEmit || exit 1
step "build (tsc → dist/, the dashboard bundle → dist/dashboard)"
npm run --silent build || exit 1
# The other languages' SDKs and examples, each ending with "<lang>: N passed, N failed, N skipped".
sdk_failed=0
sdk_counts=()
sdk_suite() {
  local lang=$1 title=$2
  step "$title"
  bash "hack/test-$lang.sh" | tee ".tmp/$lang-test.log" >&2
  [ "${PIPESTATUS[0]}" = 0 ] || sdk_failed=1
  sdk_counts+=("$(tail -1 ".tmp/$lang-test.log")")
}
sdk_suite go "Go SDK (sdk/go, examples/bank-go: gofmt, go vet, go test against real PostgreSQL, MariaDB and SQLite)"
sdk_suite java "Java SDK (sdk/java, examples/bank-java: mvn verify, JUnit 5 against real PostgreSQL and MariaDB)"
sdk_suite python "Python SDK (sdk/python, examples/bank-python: pytest against real PostgreSQL and SQLite)"
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
[ "$sdk_failed" = 0 ] || rc=1
if [ -f .tmp/vitest.json ]; then
  # One line for everything: vitest's counts plus each SDK suite's; a suite without its line counts as one failure.
  SDK_COUNTS="$(printf '%s\n' "${sdk_counts[@]}")" node -e '
    const r = require("./.tmp/vitest.json");
    const sum = [r.numPassedTests, r.numFailedTests, r.numPendingTests + (r.numTodoTests ?? 0)];
    for (const line of process.env.SDK_COUNTS.split("\n").filter(Boolean)) {
      const m = line.match(/(\d+) passed, (\d+) failed, (\d+) skipped/);
      const n = m ? m.slice(1).map(Number) : [0, 1, 0];
      for (let i = 0; i < 3; i++) sum[i] += n[i];
      console.error(line);
    }
    console.log(`${sum[0]} passed, ${sum[1]} failed, ${sum[2]} skipped`);
    if (r.numTotalTests === 0) process.exit(1);
  ' || rc=1
fi
leftover=$(ours | tr '\n' ' ')
if [ -n "${leftover// /}" ]; then
  echo "test harness left control-plane processes running: $leftover" >&2
  rc=1
fi
exit $rc
