#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests and benchmarks: initdb into a temporary
# folder, listening on 127.0.0.1 only, trust authentication for the role smtpguard, one
# database smtpguard. Debian's postgresql package (scripts/install-deps.sh).
#
#   tests/integration/pg.sh start|stop|env     (as root; the server runs as user postgres)
# Environment: PG_DIR (default /tmp/smtpguard-pg), PG_PORT (default 15432).
set -euo pipefail
PG_DIR="${PG_DIR:-/tmp/smtpguard-pg}"
PG_PORT="${PG_PORT:-15432}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$BIN" ] || { echo "pg.sh: PostgreSQL is not installed (scripts/install-deps.sh)" >&2; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }

case "${1:-}" in
  start)
    "$0" stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    chown postgres:postgres "$PG_DIR"
    as_postgres "$BIN/initdb" -D "$PG_DIR/data" -U smtpguard -A trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
    as_postgres "$BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=on" start >/dev/null \
      || { cat "$PG_DIR/server.log" >&2; exit 1; }
    as_postgres "$BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U smtpguard smtpguard
    ;;
  stop)
    [ -d "$PG_DIR/data" ] && as_postgres "$BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  env)
    echo "PG_URL=postgres://smtpguard@127.0.0.1:$PG_PORT/smtpguard"
    echo "PG_DIR=$PG_DIR"
    echo "PG_BIN=$BIN"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
