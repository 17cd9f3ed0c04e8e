#!/usr/bin/env bash
# Fails when the committed generated code differs from what buf makes from
# proto/ now (someone edited a .proto and forgot `bash hack/proto.sh`):
# TypeScript in src/gen and sdk/typescript/src/gen (ts-proto; plus the SDK's
# copy of src/api/types.ts) and Go in sdk/go/gen (protoc-gen-go,
# protoc-gen-go-grpc; built at pinned versions by hack/go-plugins.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
plugins=$(bash hack/go-plugins.sh)
export PATH="$plugins:$PATH"
npx --no-install buf lint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --output prefixes every plugin's out: the fresh copies land in $tmp/src/gen, $tmp/sdk/typescript/src/gen and $tmp/sdk/go/gen.
npx --no-install buf generate --output "$tmp"
stale=0
for dir in src/gen sdk/typescript/src/gen sdk/go/gen; do
  if ! diff -ru "$dir" "$tmp/$dir" >"$tmp/diff"; then
    echo "generated code in $dir is stale; run: bash hack/proto.sh" >&2
    head -50 "$tmp/diff" >&2
    stale=1
  fi
done
if ! cmp -s src/api/types.ts sdk/typescript/src/api-types.ts; then
  echo "sdk/typescript/src/api-types.ts differs from src/api/types.ts; run: bash hack/proto.sh" >&2
  diff -u sdk/typescript/src/api-types.ts src/api/types.ts | head -50 >&2
  stale=1
fi
bash hack/java-gen.sh --check || stale=1
bash hack/python-gen.sh --check || stale=1
[ "$stale" = 0 ] || exit 1
echo "proto: lint ok, generated code up to date (src/gen, sdk/typescript/src/gen, sdk/go/gen, sdk/java/src/main/generated, sdk/python/src/kubetx_participant/_gen)" >&2
