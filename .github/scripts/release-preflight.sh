#!/usr/bin/env bash
# Release pre-flight, run by release.yml before anything is published (and
# runnable by hand: bash .github/scripts/release-preflight.sh v0.2.0).
#
# Checks that the tag is vX.Y.Z[-pre] and that every manifest whose version
# cannot be overridden at publish time already says X.Y.Z:
#   package.json (npm: kubetx)               version, repository.url (npm --provenance needs it)
#   sdk/typescript/package.json, if present  the same (npm: @kubetx/participant)
#   sdk/python/pyproject.toml                [project].version (PyPI: kubetx-participant)
#   sdk/java/pom.xml                         project version (io.kubetx:kubetx-participant)
# charts/kubetx/Chart.yaml is packaged with --version/--app-version from the
# tag, so a different version there is only a warning.
#
# Writes version, prerelease, npm_dist_tag and ts_sdk to $GITHUB_OUTPUT when
# that is set. Exits 1 listing every mismatch, so a release never goes out half
# published.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tag=${1:-${GITHUB_REF_NAME:-}}
repo=${GITHUB_REPOSITORY:-kubetx/kubetx}
errors=0
error() { echo "::error::$*"; errors=$((errors + 1)); }
warn() { echo "::warning::$*"; }

if ! [[ $tag =~ ^v([0-9]+\.[0-9]+\.[0-9]+)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "::error::tag '$tag' is not vX.Y.Z or vX.Y.Z-pre"; exit 1
fi
version=${tag#v}
prerelease=false
[[ $version == *-* ]] && prerelease=true

# npm packages: version and repository.url (provenance is verified against this repository).
npm_check() { # $1: package.json
  local pj=$1 got url
  got=$(node -p "require('./$pj').version")
  [ "$got" = "$version" ] || error "$pj: version is $got, the tag says $version"
  url=$(node -p "const r = require('./$pj').repository; (typeof r === 'string' ? r : r?.url) ?? ''")
  if [ -z "$url" ]; then
    error "$pj: no repository.url; npm publish --provenance refuses a package whose repository is not https://github.com/$repo (add \"repository\": {\"type\": \"git\", \"url\": \"git+https://github.com/$repo.git\"$([ "$pj" = package.json ] || printf ', "directory": "%s"' "$(dirname "$pj")")})"
  elif [[ $url != *"github.com/$repo"* ]]; then
    error "$pj: repository.url is $url, npm provenance needs https://github.com/$repo"
  fi
}
npm_check package.json
ts_sdk=false
if [ -f sdk/typescript/package.json ]; then
  ts_sdk=true
  npm_check sdk/typescript/package.json
else
  warn "sdk/typescript/package.json not found: the participant SDK (@kubetx/participant) is not published by this release"
fi

# PEP 440 spells a pre-release differently (1.2.0-rc.1 is 1.2.0rc1): compare them as versions.
py=$(python3 -c 'import tomllib; print(tomllib.load(open("sdk/python/pyproject.toml", "rb"))["project"]["version"])')
if ! python3 - "$py" "$version" <<'PY'
import sys
try:
    from packaging.version import Version
except ImportError:
    from pip._vendor.packaging.version import Version
sys.exit(Version(sys.argv[1]) != Version(sys.argv[2]))
PY
then
  error "sdk/python/pyproject.toml: version is $py, the tag says $version"
fi

java=$(python3 -c '
import xml.etree.ElementTree as ET
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
print(ET.parse("sdk/java/pom.xml").getroot().find("m:version", ns).text.strip())')
[ "$java" = "$version" ] || error "sdk/java/pom.xml: version is $java, the tag says $version"

for key in version appVersion; do
  got=$(sed -nE "s/^$key:[[:space:]]*\"?([^\"[:space:]]+)\"?.*/\1/p" charts/kubetx/Chart.yaml)
  [ "$got" = "$version" ] || warn "charts/kubetx/Chart.yaml: $key is $got; the chart is packaged with $key $version (the tag)"
done

if [ "$errors" -gt 0 ]; then
  echo "release pre-flight: $errors problem(s); nothing was published" >&2
  exit 1
fi

npm_dist_tag=latest
$prerelease && npm_dist_tag=next
echo "release pre-flight: $tag ok (version $version, prerelease $prerelease, npm dist-tag $npm_dist_tag, TypeScript SDK $ts_sdk)" >&2
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "version=$version"
    echo "prerelease=$prerelease"
    echo "npm_dist_tag=$npm_dist_tag"
    echo "ts_sdk=$ts_sdk"
  } >>"$GITHUB_OUTPUT"
fi
