#!/usr/bin/env bash
# Copies the CRDs from crds/ into the Helm chart's files/crds/ directory, which
# templates/crds.yaml renders (with the chart's labels and
# helm.sh/resource-policy: keep) so that `helm upgrade` upgrades them. Not
# Helm's special crds/ directory: Helm installs that once and never upgrades it.
#
# A real copy, not a symlink: a packaged chart drops symlinks.
# test/integration/chart-rbac.test.ts fails when the copy differs from crds/
# (and when the rendered CRD is not the same object); run this script after
# every CRD change.
#
#   hack/sync-chart-crds.sh          copy
#   hack/sync-chart-crds.sh --check  exit 1 (naming the files) if the copy is stale
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=crds
dst=charts/kubetx/files/crds

if [ -d charts/kubetx/crds ]; then
  echo "charts/kubetx/crds/ exists: Helm would install those CRDs itself (and never upgrade them)," >&2
  echo "clashing with templates/crds.yaml; the chart's copy lives in $dst/" >&2
  exit 1
fi

if [ "${1:-}" = "--check" ]; then
  stale=0
  for f in "$src"/*.yaml; do
    if ! cmp -s "$f" "$dst/$(basename "$f")"; then echo "stale: $dst/$(basename "$f") differs from $f" >&2; stale=1; fi
  done
  for f in "$dst"/*.yaml; do
    [ -e "$f" ] || continue
    [ -e "$src/$(basename "$f")" ] || { echo "extra: $f has no counterpart in $src/" >&2; stale=1; }
  done
  [ "$stale" = 0 ] || { echo "run hack/sync-chart-crds.sh" >&2; exit 1; }
  exit 0
fi

mkdir -p "$dst"
rm -f "$dst"/*.yaml
cp "$src"/*.yaml "$dst"/
echo "copied $(ls "$src"/*.yaml | wc -l) CRD file(s) from $src/ to $dst/"
