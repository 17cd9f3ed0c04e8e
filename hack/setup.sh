#!/usr/bin/env bash
# Installs everything kubetx's build, demo and tests need on a fresh Debian
# machine: system packages, npm dependencies (including the native
# better-sqlite3 build), and the test control plane (hack/testenv.sh).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The Java SDK (sdk/java) builds with Maven on a JDK 17+; its tests start database servers under setpriv.
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The Python SDK (sdk/python) is tested in a venv of its own.
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need_apt[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    log "missing: ${need_apt[*]} — install them (Debian: sudo apt-get install -y ${need_apt[*]})"; exit 1
  fi
fi

log "PostgreSQL and MariaDB server binaries (SDK store tests run against real servers)"
bash hack/postgres.sh
bash hack/mariadb.sh >/dev/null
log "redis-server (the broker tests' Redis fallback queues)"
bash hack/redis.sh >/dev/null

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  log "Node.js >= 20 is required (found $(node --version 2>/dev/null || echo none)); Debian: apt-get install -y nodejs npm"; exit 1
fi

# better-sqlite3 compiles from source when no prebuilt binary can be fetched;
# node-gyp then needs the Node headers, which Debian's nodejs ships in /usr/include/node.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

stamp=node_modules/.kubetx-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  log "npm ci (first time: a few minutes, better-sqlite3 is compiled)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
else
  log "npm dependencies up to date"
fi

if ! command -v go >/dev/null 2>&1; then
  log "Go >= 1.26 is required (the test control plane, the Go SDK and its code generators are built with it)"; exit 1
fi
log "Go code generators (protoc-gen-go, protoc-gen-go-grpc) from the Go module proxy"
bash hack/go-plugins.sh >/dev/null

log "test control plane (kube-apiserver, etcd, kubectl, helm)"
bash hack/testenv.sh >/dev/null
log "nats-server (the broker tests' JetStream broker) from the Go module proxy"
bash hack/nats.sh >/dev/null
log "ready"
