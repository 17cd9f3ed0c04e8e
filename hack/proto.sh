#!/usr/bin/env bash
# Regenerates the code made from proto/: TypeScript (ts-proto → src/gen for the
# operator and sdk/typescript/src/gen for the participant SDK),
# Go (protoc-gen-go + protoc-gen-go-grpc → sdk/go/gen), after `buf lint`, and
# Java (hack/java-gen.sh → sdk/java/src/main/generated) and Python
# (hack/python-gen.sh → sdk/python/src/kubetx_participant/_gen).
# The Go plugins are built at pinned versions by hack/go-plugins.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
plugins=$(bash hack/go-plugins.sh)
export PATH="$plugins:$PATH"
npx --no-install buf lint
npx --no-install buf generate
# The SDK package's copy of the CRD's TypeScript types (prepareMessage's spec); src/api/types.ts is the original.
cp src/api/types.ts sdk/typescript/src/api-types.ts
# Java: protoc and protoc-gen-grpc-java as Maven artifacts (not buf plugins: they come from Maven Central).
bash hack/java-gen.sh
# Python: grpcio-tools from PyPI, in a cached venv.
bash hack/python-gen.sh
echo "proto: generated src/gen, sdk/typescript/src/gen (+ src/api/types.ts copied to sdk/typescript/src/api-types.ts), sdk/go/gen, sdk/java/src/main/generated and sdk/python/src/kubetx_participant/_gen" >&2
