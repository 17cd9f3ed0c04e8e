#!/usr/bin/env bash
# Makes sure redis-server is present for the broker tests (the sharded Redis
# queues that reliable messages fail over to; test/support/redis.ts starts a
# throwaway server from it with its own --port and --dir; it never uses a
# system server).
#
# Looks in $REDIS_BIN, /usr/bin, /usr/local/bin and PATH. When missing and
# running as root on Debian/Ubuntu, installs `redis-server` WITHOUT starting or
# enabling the distribution's service (a policy-rc.d that denies every start
# is in place during the install, as in hack/mariadb.sh). Prints the binary's
# path on stdout. Safe to run again.
set -euo pipefail

log() { printf '[redis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

find_server() {
  local d
  for d in ${REDIS_BIN:+"$REDIS_BIN"} /usr/bin /usr/local/bin $(printf '%s' "${PATH:-}" | tr ':' ' '); do
    if [ -x "$d/redis-server" ]; then echo "$d/redis-server"; return 0; fi
  done
  return 1
}

report() {
  log "redis-server: $1 ($("$1" --version 2>/dev/null | head -1))"
  echo "$1"
}

if server=$(find_server); then
  report "$server"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "redis-server not found (looked in \$REDIS_BIN, /usr/bin, /usr/local/bin, PATH)."
  log "Install it: Debian/Ubuntu: sudo apt-get install -y redis-server (then stop/disable its service if you do not want it), or set REDIS_BIN."
  exit 1
fi

# The Debian package starts (and enables) redis-server.service from its
# maintainer scripts via invoke-rc.d, which asks /usr/sbin/policy-rc.d first:
# exit 101 means "action forbidden". Keep a policy that was already there.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# kubetx hack/redis.sh: do not start services during the install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

log "installing redis-server from Debian (its service is not started)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade --no-install-recommends redis-server >/dev/null
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if ! server=$(find_server); then
  log "redis-server installed but still not found"; exit 1
fi
report "$server"
