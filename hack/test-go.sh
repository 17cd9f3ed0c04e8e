#!/usr/bin/env bash
# The Go SDK's (and examples/bank-go's) checks, as CI runs them: server binaries present (MariaDB and
# PostgreSQL, nats-server and redis-server for the broker tests; the tests start
# throwaway servers from them and FAIL when they are missing), gofmt clean,
# go vet, then every test against the real servers.
# Prints how long it took. Extra arguments go to `go test` (e.g. -run Race -v).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

log() { printf '[test-go %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go not found on PATH: install Go 1.26 or newer"; exit 1
fi
bash hack/mariadb.sh >/dev/null
bash hack/postgres.sh
# sdk/go/broker's tests (internal/testbroker) start these two.
NATS_SERVER_BIN=$(bash hack/nats.sh)
REDIS_BIN=$(dirname "$(bash hack/redis.sh)")
export NATS_SERVER_BIN REDIS_BIN

# The SDK and the Go example (its own module, built against ../../sdk/go by a replace).
unformatted=$(gofmt -l sdk/go examples/bank-go)
if [ -n "$unformatted" ]; then
  log "not gofmt-formatted (run: gofmt -w sdk/go examples/bank-go):"
  printf '  %s\n' $unformatted >&2
  exit 1
fi
log "go vet ./... (sdk/go, examples/bank-go)"
(cd sdk/go && go vet ./...)
(cd examples/bank-go && go vet ./...)
log "go test -count=1 ./... (sdk/go, examples/bank-go)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
{ (cd sdk/go && go test -count=1 -v "$@" ./...) && (cd examples/bank-go && go test -count=1 -v "$@" ./...); } >"$out" 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
  grep -E '^(ok|\?|FAIL)[[:space:]]' "$out" || true
else
  # The whole verbose log would be long: the failures and the end.
  grep -E -B2 -A20 -e '--- FAIL' -e '^panic:' "$out" | head -300 || true
  echo "..." ; tail -40 "$out"
fi
passed=$(grep -cE '^[[:space:]]*--- PASS' "$out" || true)
failed=$(grep -cE '^[[:space:]]*--- FAIL' "$out" || true)
skipped=$(grep -cE '^[[:space:]]*--- SKIP' "$out" || true)
# Tests and subtests; a build failure or panic counts as a failure as well.
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
log "done in $(( $(date +%s) - started ))s (exit $rc)"
echo "go: $passed passed, $failed failed, $skipped skipped"
exit $rc
