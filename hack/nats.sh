#!/usr/bin/env bash
# Builds nats-server (NATS with JetStream, the broker of the reliable-message
# tests, test/support/nats.ts) from the Go module proxy into a cache outside the
# repository, keyed by version (as hack/testenv.sh does for the control plane).
#
#   hack/nats.sh          build it if missing, print the binary's path
#   hack/nats.sh --path   print the path only (exit 1 if it is not built)
#
# github.com/nats-io/nats-server/v2's go.mod has no replace directives, so
# `go install …@version` works; the version is pinned in hack/testenv.env.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testenv.env
source "$here/testenv.env"

cache_root=${KUBETX_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetx/testenv}
bin_dir="$cache_root/nats-server-$NATS_SERVER_VERSION/bin"
nats_server="$bin_dir/nats-server"

if [ "${1:-}" = "--path" ]; then
  [ -x "$nats_server" ] && { echo "$nats_server"; exit 0; }
  echo "nats: $nats_server is missing; run hack/nats.sh" >&2
  exit 1
fi

if [ -x "$nats_server" ]; then
  echo "nats: cached in $bin_dir" >&2
  echo "$nats_server"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "nats: Go is required (see hack/testenv.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kubetx-nats.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
printf '[nats %s] building github.com/nats-io/nats-server/v2@%s ...\n' "$(date +%H:%M:%S)" "$NATS_SERVER_VERSION" >&2
GOBIN="$work/bin" /usr/bin/time -f "%e s, peak RSS %M KiB" -o "$work/time" go install -trimpath -ldflags "-s -w" \
  "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
mkdir -p "$bin_dir"
mv "$work/bin/nats-server" "$nats_server"
printf '[nats %s] built in %s\n' "$(date +%H:%M:%S)" "$(cat "$work/time")" >&2
"$nats_server" --version >&2
echo "$nats_server"
