#!/usr/bin/env bash
# Builds the Go protobuf plugins buf.gen.yaml names as `local:` plugins
# (protoc-gen-go, protoc-gen-go-grpc) at pinned versions, into a cache
# directory outside the repository, and prints that directory's bin/ on stdout.
# Skips the build when both binaries are already there. Needs Go and the Go
# module proxy (GOPROXY); nothing else is downloaded.
set -euo pipefail

PROTOC_GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC=google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

log() { printf '[go-plugins %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go not found on PATH: install Go 1.24 or newer"; exit 1
fi

# One directory per pair of versions, so bumping a version never reuses a stale binary.
versions="protoc-gen-go-${PROTOC_GEN_GO##*@}_protoc-gen-go-grpc-${PROTOC_GEN_GO_GRPC##*@}"
cache=${KUBETX_GO_PLUGINS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetx/go-plugins}
bin="$cache/$versions/bin"

if [ -x "$bin/protoc-gen-go" ] && [ -x "$bin/protoc-gen-go-grpc" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
log "building $PROTOC_GEN_GO and $PROTOC_GEN_GO_GRPC into $bin"
# Outside any module, so the repo's go.mod files play no part; GOFLAGS from the
# environment (e.g. -mod=vendor) would break `go install pkg@version`.
(cd "$bin" && GOFLAGS= GOBIN="$bin" go install "$PROTOC_GEN_GO" && GOFLAGS= GOBIN="$bin" go install "$PROTOC_GEN_GO_GRPC")
echo "$bin"
