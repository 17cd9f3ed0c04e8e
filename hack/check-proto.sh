#!/usr/bin/env bash
# Fails when the committed generated code differs from what buf + ts-proto make
# from proto/ now (someone edited the .proto and forgot `npm run proto`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
npx --no-install buf lint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx --no-install buf generate --output "$tmp"
if ! diff -ru src/gen "$tmp/src/gen" >"$tmp/diff"; then
  echo "generated code in src/gen is stale; run: npm run proto" >&2
  head -50 "$tmp/diff" >&2
  exit 1
fi
echo "proto: lint ok, generated code up to date" >&2
