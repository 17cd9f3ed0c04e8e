#!/usr/bin/env bash
# Makes sure the MariaDB server binaries (mariadbd or mysqld, and
# mariadb-install-db or mysql_install_db) are present for the Go SDK's MySQL
# dialect tests (sdk/go/internal/testdb starts a throwaway server from them with
# its own --datadir, --socket and --port; it never uses a system server).
#
# Looks in $MARIADB_BIN, /usr/sbin, /usr/bin and PATH. When missing and running
# as root on Debian/Ubuntu, installs `mariadb-server` WITHOUT starting or
# enabling the distribution's service (a policy-rc.d that denies every start
# is in place during the install). Prints the directory holding the server
# binary on stdout. Safe to run again.
set -euo pipefail

log() { printf '[mariadb %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

find_server() {
  local d
  for d in ${MARIADB_BIN:+"$MARIADB_BIN"} /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin $(printf '%s' "${PATH:-}" | tr ':' ' '); do
    if [ -x "$d/mariadbd" ] || [ -x "$d/mysqld" ]; then echo "$d"; return 0; fi
  done
  return 1
}

find_install_db() {
  command -v mariadb-install-db 2>/dev/null || command -v mysql_install_db 2>/dev/null \
    || { [ -n "${MARIADB_BIN:-}" ] && ls "$MARIADB_BIN"/mariadb-install-db "$MARIADB_BIN"/mysql_install_db 2>/dev/null | head -1; }
}

report() {
  local bin=$1 server
  server="$bin/mariadbd"; [ -x "$server" ] || server="$bin/mysqld"
  log "MariaDB server binary: $server ($("$server" --version 2>/dev/null | head -1))"
  if ! find_install_db >/dev/null; then log "warning: mariadb-install-db not found"; fi
  echo "$bin"
}

if bin=$(find_server) && find_install_db >/dev/null; then
  report "$bin"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "MariaDB server binaries not found (looked in \$MARIADB_BIN, /usr/sbin, /usr/bin, PATH)."
  log "Install them: Debian/Ubuntu: sudo apt-get install -y mariadb-server (then stop/disable its service if you do not want it), or set MARIADB_BIN."
  exit 1
fi

# The Debian package starts (and enables) mariadb.service from its maintainer
# scripts via invoke-rc.d, which asks /usr/sbin/policy-rc.d first: exit 101
# means "action forbidden". Keep a policy that was already there.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# kubetx hack/mariadb.sh: do not start services during the install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

log "installing mariadb-server from Debian (its service is not started)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade --no-install-recommends mariadb-server >/dev/null
# Without systemd nothing is enabled to start at boot anyway; with it, make sure.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now mariadb >/dev/null 2>&1 || true
fi

if ! bin=$(find_server); then
  log "mariadb-server installed but mariadbd/mysqld still not found"; exit 1
fi
report "$bin"
