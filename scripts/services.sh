#!/usr/bin/env bash
# Make sure PostgreSQL (and MariaDB, for the MySQL engine) are installed and running on
# 127.0.0.1. Idempotent: does nothing when they already answer.
set -euo pipefail

log() { echo "[services] $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

ensure_postgres() {
  if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  if ! pg_ready; then
    log "starting PostgreSQL"
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -n1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  fi
  pg_ready || { log "PostgreSQL did not become ready"; exit 1; }
  # Tests connect as postgres over TCP without a password (trust on loopback, as on CI).
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    log "enabling trust auth for loopback connections"
    local hba
    hba=$(as_root -u postgres psql -Atc 'show hba_file' 2>/dev/null || su postgres -c "psql -Atc 'show hba_file'")
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root -u postgres psql -Atc 'select pg_reload_conf()' >/dev/null 2>&1 || su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
    sleep 1
  fi
}

mariadb_ready() { mariadb -uroot -h127.0.0.1 -e 'select 1' >/dev/null 2>&1; }

ensure_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    log "installing MariaDB"
    apt_install mariadb-server mariadb-client
  fi
  if ! mariadb_ready; then
    log "starting MariaDB"
    as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 30); do mariadb_ready && break; sleep 1; done
  fi
  mariadb_ready || log "MariaDB is not reachable (only the MySQL engine tests need it)"
}

# Command-line tools the tests drive: curl (HTTP probes), openssl (a throwaway TLS certificate),
# python3 (the crash harness's SQLite checks and the MCP SDK clients).
ensure_tools() {
  local missing=()
  for t in curl openssl python3; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

ensure_tools
ensure_postgres
if [ "${SYNAPSOR_SKIP_MARIADB:-0}" != 1 ]; then ensure_mariadb; fi
