#!/usr/bin/env bash
# First start: initdb with POSTGRES_USER/POSTGRES_PASSWORD, create POSTGRES_DB, run the init scripts, as
# the public postgres image does; then the server, listening on every address with password logins.
set -euo pipefail
[ "${1:-postgres}" = postgres ] || exec "$@"
if [ "${1:-}" = postgres ]; then shift; fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (from the env file)}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C --auth-local=trust \
    --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 -h /tmp -U "$user" -q)
  if [ "$db" != postgres ]; then "${psql[@]}" -d postgres -c "CREATE DATABASE \"$db\""; fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "init: $f"; "${psql[@]}" -d "$db" -f "$f" ;;
      *.sh) echo "init: $f"; PGHOST=/tmp . "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp "$@"
