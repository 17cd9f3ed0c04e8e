#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are
# present for the tests of the SDK's PostgreSQL stores (test/support/postgres.ts
# starts a throwaway server from them; it never uses a system cluster).
#
# Looks in $PG_BIN, /usr/lib/postgresql/<version>/bin and PATH. When missing and
# running as root on Debian/Ubuntu, installs the `postgresql` package without
# creating or starting the distribution's "main" cluster. Safe to run again.
set -euo pipefail

log() { printf '[postgres %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

lib_dir=${PG_LIB_DIR:-/usr/lib/postgresql}

find_bin() {
  local d
  for d in ${PG_BIN:+"$PG_BIN"} $(ls -d "$lib_dir"/*/bin "$@" 2>/dev/null | sort -rV); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  return 1
}

if bin=$(find_bin); then
  log "PostgreSQL server binaries: $bin ($("$bin/postgres" --version))"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "PostgreSQL server binaries not found (looked in \$PG_BIN, $lib_dir/*/bin, PATH)."
  log "Install them: Debian/Ubuntu: sudo apt-get install -y postgresql; or set PG_BIN to the directory holding initdb and pg_ctl."
  exit 1
fi

# The Debian package would create a "main" cluster and start it on port 5432;
# the tests start their own servers, so keep the package from doing that.
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/kubetx-no-main-cluster.conf

log "installing postgresql from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade --no-install-recommends postgresql >/dev/null

if ! bin=$(find_bin /usr/lib/postgresql/*/bin); then
  log "postgresql installed but initdb/pg_ctl still not found"; exit 1
fi
if ! id postgres >/dev/null 2>&1; then
  log "warning: no 'postgres' user; tests run as root need it (initdb refuses root)"
fi
log "PostgreSQL server binaries: $bin ($("$bin/postgres" --version))"
