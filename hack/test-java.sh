#!/usr/bin/env bash
# The Java SDK's checks, as CI runs them: server binaries present (PostgreSQL and
# MariaDB; the tests start throwaway servers from them and FAIL when they are
# missing), the generated code up to date, `mvn verify` of sdk/java (compile +
# JUnit 5 against the real servers) and its install into the local Maven
# repository, then the runnable jar of examples/bank-java. Maven downloads from
# Maven Central on first use; after that it runs offline when it can.
# Prints how long it took and ends with one line `java: N passed, N failed, N skipped`.
#
#   bash hack/test-java.sh              everything
#   bash hack/test-java.sh --build-only the SDK (no tests) and the example jar, as test/support/java-build.ts does
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

log() { printf '[test-java %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

build_only=false
case "${1:-}" in
  "") ;;
  --build-only) build_only=true ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "$tool not found on PATH: install a JDK 17+ and Maven 3.8+ (Debian: apt-get install -y openjdk-17-jdk-headless maven)"; exit 1
  fi
done

# Offline when the local repository already has what the build needs (every run after the first).
mvn_flags=(-B -q -Dstyle.color=never)
offline() {
  mvn "${mvn_flags[@]}" -o "$@" >/dev/null 2>&1
}

if $build_only; then
  log "sdk/java: install (no tests)"
  offline -f sdk/java install -DskipTests || mvn "${mvn_flags[@]}" -f sdk/java install -DskipTests
  log "examples/bank-java: package"
  offline -f examples/bank-java package || mvn "${mvn_flags[@]}" -f examples/bank-java package
  log "built examples/bank-java/target/bank-java.jar in $(( $(date +%s) - started ))s"
  exit 0
fi

bash hack/postgres.sh
bash hack/mariadb.sh >/dev/null
bash hack/java-gen.sh --check

# Stale reports would be counted: start clean.
rm -rf sdk/java/target/surefire-reports
log "sdk/java: mvn verify install"
rc=0
out="${TMPDIR:-/tmp}/kubetx-test-java.$$.log"
trap 'rm -f "$out"' EXIT
# mvn -q prints its errors on stdout: keep both, show them only on a failure.
if ! mvn "${mvn_flags[@]}" -o -f sdk/java install >"$out" 2>&1; then
  if grep -q -e 'in offline mode' -e 'has not been downloaded' "$out"; then
    log "first run: resolving from Maven Central"
    rm -rf sdk/java/target/surefire-reports
    mvn "${mvn_flags[@]}" -f sdk/java install || rc=$?
  else
    sed 's/\x1b\[[0-9;]*m//g' "$out" >&2
    rc=1
  fi
fi

if [ "$rc" = 0 ]; then
  log "examples/bank-java: package"
  offline -f examples/bank-java package || mvn "${mvn_flags[@]}" -f examples/bank-java package || rc=$?
fi

# Counts from the surefire reports.
read -r tests failures errors skipped < <(
  cat sdk/java/target/surefire-reports/TEST-*.xml 2>/dev/null | python3 -c '
import re, sys
t = f = e = s = 0
for m in re.finditer(r"<testsuite\b[^>]*>", sys.stdin.read()):
    a = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(0)))
    t += int(a.get("tests", 0)); f += int(a.get("failures", 0)); e += int(a.get("errors", 0)); s += int(a.get("skipped", 0))
print(t, f, e, s)'
)
failed=$(( failures + errors ))
passed=$(( tests - failed - skipped ))
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
log "done in $(( $(date +%s) - started ))s"
echo "java: $passed passed, $failed failed, $skipped skipped"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
