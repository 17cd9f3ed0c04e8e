#!/usr/bin/env bash
# Regenerates the code made from proto/: TypeScript (ts-proto → src/gen) and
# Go (protoc-gen-go + protoc-gen-go-grpc → sdk/go/gen), after `buf lint`.
# The Go plugins are built at pinned versions by hack/go-plugins.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
plugins=$(bash hack/go-plugins.sh)
export PATH="$plugins:$PATH"
npx --no-install buf lint
npx --no-install buf generate
echo "proto: generated src/gen and sdk/go/gen" >&2
