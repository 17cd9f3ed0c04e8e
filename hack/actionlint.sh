#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint:
# syntax, expressions, `needs`/`outputs`/`secrets` references, runner labels,
# action inputs, the `permissions` keys, and (when shellcheck is on PATH) the
# shell of every `run:` step. Called by hack/test.sh.
#
# actionlint is built from the Go module proxy at a pinned version into a cache
# directory outside the repository (like hack/go-plugins.sh), once per version.
# ShellCheck is optional: actionlint uses it when it is on PATH (Debian:
# apt-get install -y shellcheck) and skips that check otherwise.
#
#   bash hack/actionlint.sh            build if needed, lint .github/workflows
#   bash hack/actionlint.sh --path     build if needed, print the binary's path
#   bash hack/actionlint.sh FILE...    lint only these workflow files
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ACTIONLINT=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

log() { printf '[actionlint %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go not found on PATH: install Go 1.24 or newer"; exit 1
fi

cache=${KUBETX_ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetx/actionlint}
bin="$cache/actionlint-${ACTIONLINT##*@}/bin"

if [ ! -x "$bin/actionlint" ]; then
  mkdir -p "$bin"
  log "building $ACTIONLINT into $bin"
  started=$(date +%s)
  # Outside any module, so the repo's go.mod files play no part; GOFLAGS from the
  # environment (e.g. -mod=vendor) would break `go install pkg@version`.
  # Into a temporary GOBIN then renamed, so an interrupted build leaves no half binary.
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && CGO_ENABLED=0 GOFLAGS='' GOBIN="$tmp" go install "$ACTIONLINT")
  mv -f "$tmp/actionlint" "$bin/actionlint"
  log "built in $(( $(date +%s) - started ))s"
fi

if [ "${1:-}" = "--path" ]; then
  echo "$bin/actionlint"
  exit 0
fi

if [ $# -eq 0 ]; then
  shopt -s nullglob
  set -- .github/workflows/*.yml .github/workflows/*.yaml
  shopt -u nullglob
  if [ $# -eq 0 ]; then
    log "no workflow files in .github/workflows"; exit 1
  fi
fi

if command -v shellcheck >/dev/null 2>&1; then
  sc="shellcheck $(shellcheck --version | sed -n 's/^version: //p') checks the run: steps"
else
  sc="shellcheck not on PATH: run: steps are not shell-checked (optional; Debian: apt-get install -y shellcheck)"
fi
log "$("$bin/actionlint" -version | head -1) on $# file(s); $sc"
# -no-color: the logs are read as plain text. Exit 1 on any finding.
"$bin/actionlint" -no-color "$@"
log "ok: $*"
