#!/usr/bin/env bash
# The Python SDK's and the Python example's tests, as CI runs them: PostgreSQL
# binaries present (the tests start a throwaway server from them and FAIL when
# they are missing), the venv (pinned in sdk/python/requirements-dev.txt, made
# once in a cache dir outside the repository by hack/python-gen.sh --venv), this
# checkout's SDK on PYTHONPATH, then pytest. Prints how long it took and ends with
# one line `python: N passed, N failed, N skipped`. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
log() { printf '[test-python %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bash hack/postgres.sh
venv=$(bash hack/python-gen.sh --venv)
py=$venv/bin/python
# This checkout's SDK first on the path (not installed into the venv, which every checkout on the machine shares).
export PYTHONPATH="$PWD/sdk/python/src${PYTHONPATH:+:$PYTHONPATH}"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
# -p no:cacheprovider: no .pytest_cache in the work tree.
# A backstop: a test that deadlocks its own threads must fail the suite, not hang CI.
timeout -k 10 900 "$py" -m pytest -c sdk/python/pyproject.toml --rootdir . -p no:cacheprovider -q -rfE sdk/python/tests examples/bank-python/tests "$@" 2>&1 | tee "$out" || rc=$?
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error)' "$out" | tail -1 || true)
count() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed); failed=$(count failed); skipped=$(count skipped); errors=$(count error)
failed=$((failed + errors))
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
log "done in $(( $(date +%s) - started ))s (exit $rc)"
echo "python: $passed passed, $failed failed, $skipped skipped"
exit $rc
