#!/usr/bin/env bash
# Builds Prometheus's promtool from the Go module proxy into a cache outside the
# repository, keyed by version (as hack/testenv.sh does for the control plane).
# test/integration/chart-monitoring.test.ts runs `promtool check rules` and
# `promtool test rules` on the chart's PrometheusRule with samples scraped from
# the real operator: the alert expressions are evaluated by Prometheus's own
# engine, not by a re-implementation.
#
#   hack/promtool.sh          build it if missing, print the binary's path
#   hack/promtool.sh --path   print the path only (exit 1 if it is not built)
#
# github.com/prometheus/prometheus tags its Go module v0.3XX.Y for Prometheus
# v3.XX.Y; its go.mod has no replace directives, so `go install …@version` works.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testenv.env
source "$here/testenv.env"

cache_root=${KUBETX_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetx/testenv}
bin_dir="$cache_root/promtool-$PROMETHEUS_VERSION/bin"
promtool="$bin_dir/promtool"

if [ "${1:-}" = "--path" ]; then
  [ -x "$promtool" ] && { echo "$promtool"; exit 0; }
  echo "promtool: $promtool is missing; run hack/promtool.sh" >&2
  exit 1
fi

if [ -x "$promtool" ]; then
  echo "promtool: cached in $bin_dir" >&2
  echo "$promtool"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "promtool: Go is required (see hack/testenv.sh)" >&2; exit 1; }

# v0.316.0 -> 3.16.0, for `promtool --version`.
minor_patch=${PROMETHEUS_VERSION#v0.3}
release="3.$((10#${minor_patch%%.*})).${minor_patch#*.}"

work=$(mktemp -d "${TMPDIR:-/tmp}/kubetx-promtool.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
printf '[promtool %s] building github.com/prometheus/prometheus/cmd/promtool@%s (Prometheus %s) ...\n' "$(date +%H:%M:%S)" "$PROMETHEUS_VERSION" "$release" >&2
# remove_all_sd: no cloud service-discovery plugins (promtool checks and tests rules here;
# the build is smaller and faster without them).
GOBIN="$work/bin" /usr/bin/time -f "%e s, peak RSS %M KiB" -o "$work/time" go install -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
mkdir -p "$bin_dir"
mv "$work/bin/promtool" "$promtool"
printf '[promtool %s] built in %s\n' "$(date +%H:%M:%S)" "$(cat "$work/time")" >&2
"$promtool" --version | head -1 >&2
echo "$promtool"
