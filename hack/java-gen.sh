#!/usr/bin/env bash
# Generates the Java protobuf and gRPC code of the Java SDK from proto/ into
# sdk/java/src/main/generated (committed), with protoc and protoc-gen-grpc-java
# taken from Maven Central as Maven artifacts (mvn dependency:copy; nothing is
# downloaded from anywhere else) into a cache directory outside the repository.
# The versions are the ones sdk/java/pom.xml pins (protoc.version, grpc.version).
#
#   bash hack/java-gen.sh           regenerate sdk/java/src/main/generated
#   bash hack/java-gen.sh --check   regenerate into a temp dir and fail when the committed code is stale
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[java-gen %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

pom=sdk/java/pom.xml
prop() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$pom" | head -1; }
protoc_version=$(prop protoc.version)
grpc_version=$(prop grpc.codegen.version)
if [ -z "$protoc_version" ] || [ -z "$grpc_version" ]; then
  log "cannot read protoc.version / grpc.codegen.version from $pom"; exit 1
fi
if ! command -v mvn >/dev/null 2>&1; then
  log "mvn not found on PATH: install Maven 3.8+ (Debian: apt-get install -y maven)"; exit 1
fi

classifier=linux-x86_64
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  Linux-aarch64) classifier=linux-aarch_64 ;;
  Darwin-x86_64) classifier=osx-x86_64 ;;
  Darwin-arm64) classifier=osx-aarch_64 ;;
  *) log "no protoc artifact for $(uname -s)-$(uname -m)"; exit 1 ;;
esac

cache=${KUBETX_JAVA_PROTOC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetx/java-protoc}/protoc-$protoc_version-grpc-$grpc_version-$classifier
protoc="$cache/protoc-$protoc_version-$classifier.exe"
plugin="$cache/protoc-gen-grpc-java-$grpc_version-$classifier.exe"
if [ ! -x "$protoc" ] || [ ! -x "$plugin" ]; then
  mkdir -p "$cache"
  log "fetching protoc $protoc_version and protoc-gen-grpc-java $grpc_version ($classifier) from Maven Central into $cache"
  for artifact in "com.google.protobuf:protoc:$protoc_version:exe:$classifier" "io.grpc:protoc-gen-grpc-java:$grpc_version:exe:$classifier"; do
    mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy -Dartifact="$artifact" -DoutputDirectory="$cache" -Dmdep.overWriteReleases=true >&2
  done
  chmod +x "$protoc" "$plugin"
fi

protos=(proto/kubetx/v1/participant.proto proto/kubetx/conformance/v1/hook.proto)
generate() {
  local out=$1
  rm -rf "$out"
  mkdir -p "$out"
  # @generated=omit: no javax.annotation.Generated, so no annotations jar is needed.
  "$protoc" -I proto --plugin=protoc-gen-grpc-java="$plugin" \
    --java_out="$out" --grpc-java_out=@generated=omit:"$out" "${protos[@]}"
}

target=sdk/java/src/main/generated
if [ "$mode" = write ]; then
  generate "$target"
  log "generated $target (protoc $protoc_version, protoc-gen-grpc-java $grpc_version)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
generate "$tmp/generated"
if ! diff -ru "$target" "$tmp/generated" >"$tmp/diff"; then
  echo "generated code in $target is stale; run: bash hack/java-gen.sh" >&2
  head -50 "$tmp/diff" >&2
  exit 1
fi
log "generated code up to date ($target)"
