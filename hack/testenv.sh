#!/usr/bin/env bash
# Builds the binaries of the test control plane (kube-apiserver, kubectl, etcd,
# helm) from the Go module proxy into a cache outside the repository, keyed by
# version. A second run with the cache in place does nothing. It also builds
# promtool (hack/promtool.sh, cached apart), which the chart's alert tests run.
#
#   hack/testenv.sh          build what is missing, print the bin directory
#   hack/testenv.sh --path   print the bin directory only (exit 1 if incomplete)
#
# Why a wrapper module: k8s.io/kubernetes's go.mod requires its staging modules
# (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them with local
# ./staging paths, so `go install k8s.io/kubernetes/cmd/...@v` is refused. A tiny
# module that requires k8s.io/kubernetes and replaces each staging module with
# its published v0.X.Y tag builds the same code. etcd's server module has the
# same problem (relative replaces) and gets the same treatment.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testenv.env
source "$here/testenv.env"

cache_root=${KUBETX_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetx/testenv}
bin_dir="$cache_root/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION/bin"
tools=(kube-apiserver kubectl etcd helm)

# helm assumes Kubernetes 1.20 when it renders offline (`helm template` without
# --kube-version, `helm lint`) unless its build sets the default; it is built
# for the control plane's version. The binary's build key is recorded next to
# it, so a cache built before (or for another version) rebuilds helm alone.
k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
helm_key="$HELM_VERSION kube-default=v1.$k8s_minor"

complete() {
  for t in "${tools[@]}"; do [ -x "$bin_dir/$t" ] || return 1; done
  [ "$(cat "$bin_dir/helm.key" 2>/dev/null)" = "$helm_key" ] || return 1
  # promtool (the chart's alert tests) has a cache of its own; see hack/promtool.sh.
  bash "$here/promtool.sh" --path >/dev/null 2>&1
}

if [ "${1:-}" = "--path" ]; then
  complete && { echo "$bin_dir"; exit 0; }
  echo "testenv: binaries missing (or helm built without the default Kubernetes version) in $bin_dir; run hack/testenv.sh" >&2
  exit 1
fi

if complete; then
  echo "testenv: cached in $bin_dir" >&2
  echo "$bin_dir"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "testenv: Go is required (>= 1.26 for Kubernetes $K8S_VERSION)." >&2
  echo "  Debian: apt-get update && apt-get install -y golang-1.26 (or install from go.dev) and put go on PATH" >&2
  exit 1
fi
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "$go_minor" -lt 26 ]; then
  echo "testenv: Go $(go env GOVERSION) is too old; Kubernetes $K8S_VERSION needs go1.26+" >&2
  exit 1
fi

mkdir -p "$bin_dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/kubetx-testenv.XXXXXX")
out="$work/out"   # built binaries; apart from the wrapper modules' directories
mkdir -p "$out"
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs a build, recording wall time and peak RSS (the issue asks for both).
timed() {
  local name=$1; shift
  log "building $name ..."
  /usr/bin/time -f "%e s, peak RSS %M KiB" -o "$work/$name.time" "$@"
  log "built $name: $(cat "$work/$name.time")"
}

build_kubernetes() {
  local mod="$work/mod-kubernetes" minor
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local staging_version="v0.${K8S_VERSION#v1.}"
  mkdir -p "$mod"
  log "resolving k8s.io/kubernetes@$K8S_VERSION"
  local gomod
  gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module kubetx.local/testenv/kubernetes"
    echo
    echo "go $(sed -n 's/^go //p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "tool ("
    echo "  k8s.io/kubernetes/cmd/kube-apiserver"
    echo "  k8s.io/kubernetes/cmd/kubectl"
    echo ")"
    echo
    # Every `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.N.P`.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } > "$mod/go.mod"
  log "wrapper module replaces $(grep -c '^replace' "$mod/go.mod") staging modules with $staging_version"
  (cd "$mod" && timed "go-mod-tidy(kubernetes)" go mod tidy)
  local ldflags="-s -w \
    -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
    -X k8s.io/client-go/pkg/version.gitMajor=1 \
    -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in kube-apiserver kubectl; do
    [ -x "$bin_dir/$cmd" ] && continue
    (cd "$mod" && timed "$cmd" go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd")
    mv "$out/$cmd" "$bin_dir/$cmd"
  done
}

build_etcd() {
  [ -x "$bin_dir/etcd" ] && return 0
  local mod="$work/mod-etcd"
  mkdir -p "$mod"
  cat > "$mod/go.mod" <<GOMOD
module kubetx.local/testenv/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

tool go.etcd.io/etcd/server/v3
GOMOD
  (cd "$mod" && timed "go-mod-tidy(etcd)" go mod tidy)
  (cd "$mod" && timed etcd go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  mv "$out/etcd" "$bin_dir/etcd"
}

build_helm() {
  [ -x "$bin_dir/helm" ] && [ "$(cat "$bin_dir/helm.key" 2>/dev/null)" = "$helm_key" ] && return 0
  local gobin="$work/helm-bin"
  # The same variables helm's own Makefile sets (there from its client-go version).
  GOBIN="$gobin" timed helm go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$gobin/helm" "$bin_dir/helm"
  echo "$helm_key" > "$bin_dir/helm.key"
}

start=$(date +%s)
if [ ! -x "$bin_dir/kube-apiserver" ] || [ ! -x "$bin_dir/kubectl" ]; then build_kubernetes; fi
build_etcd
build_helm
bash "$here/promtool.sh" >/dev/null
log "testenv ready in $(( $(date +%s) - start )) s: $bin_dir"
for f in "$work"/*.time; do [ -e "$f" ] && log "  $(basename "$f" .time): $(cat "$f")"; done
"$bin_dir/kube-apiserver" --version >&2
"$bin_dir/etcd" --version | head -1 >&2
echo "$bin_dir"
