#!/usr/bin/env bash
# Copies the CRDs from crds/ into the Helm chart's crds/ directory.
#
# Helm installs charts/kubetx/crds/* verbatim (no templating) and does not
# follow symlinks reliably (a packaged chart drops them), so the chart keeps a
# real copy. test/integration/chart-rbac.test.ts fails when the copy differs
# from crds/; run this script after every CRD change.
#
#   hack/sync-chart-crds.sh          copy
#   hack/sync-chart-crds.sh --check  exit 1 (naming the files) if the copy is stale
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=crds
dst=charts/kubetx/crds

if [ "${1:-}" = "--check" ]; then
  stale=0
  for f in "$src"/*.yaml; do
    if ! cmp -s "$f" "$dst/$(basename "$f")"; then echo "stale: $dst/$(basename "$f") differs from $f" >&2; stale=1; fi
  done
  for f in "$dst"/*.yaml; do
    [ -e "$src/$(basename "$f")" ] || { echo "extra: $f has no counterpart in $src/" >&2; stale=1; }
  done
  [ "$stale" = 0 ] || { echo "run hack/sync-chart-crds.sh" >&2; exit 1; }
  exit 0
fi

mkdir -p "$dst"
rm -f "$dst"/*.yaml
cp "$src"/*.yaml "$dst"/
echo "copied $(ls "$src"/*.yaml | wc -l) CRD file(s) from $src/ to $dst/"
