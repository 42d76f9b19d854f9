#!/usr/bin/env bash
# Run a command against PostgreSQL. With DATABASE_URL set, use it as given. Otherwise install
# PostgreSQL from Debian's packages if it is missing (as root), start a private cluster on
# loopback with its data under var/, run the command, and stop the cluster afterwards.
set -euo pipefail

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

root_dir=$(cd "$(dirname "$0")/.." && pwd)
port=${OPSCONSOLE_PGPORT:-54329}
# Another cluster (another checkout's test run) may hold the port: take the next free one.
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  port=$((port + 1))
done
is_root=0
[ "$(id -u)" = "0" ] && is_root=1

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ]; then
  if [ "$is_root" = 1 ]; then
    echo "with-postgres: installing PostgreSQL from Debian's packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
  else
    echo "with-postgres: PostgreSQL is not installed; run as root once, or set DATABASE_URL" >&2
    exit 1
  fi
fi
bin=$(pg_bin)

as_pg() {
  if [ "$is_root" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# One cluster per port: two runs side by side (OPSCONSOLE_PGPORT) never stop each other's.
state_dir="$root_dir/var/postgres${OPSCONSOLE_PGPORT:+-$port}"
temporary_state=""
mkdir -p "$state_dir"
if [ "$is_root" = 1 ]; then
  chown postgres:postgres "$state_dir"
  # The postgres user must be able to reach var/; a clone under a private home may not be.
  if ! runuser -u postgres -- test -w "$state_dir"; then
    state_dir=$(mktemp -d /tmp/opsconsole-postgres.XXXXXX)
    temporary_state=$state_dir
    chown postgres:postgres "$state_dir"
    echo "with-postgres: $root_dir/var is not reachable by postgres; using $state_dir" >&2
  fi
fi
data="$state_dir/data"
socket_dir="$state_dir"

if [ ! -f "$data/PG_VERSION" ]; then
  as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
fi
if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
# Durability settings are off: this cluster holds only throwaway test data.
as_pg "$bin/pg_ctl" -D "$data" -l "$state_dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $socket_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null

# A cluster made under /tmp for want of a reachable var/ is gone with its run: a 10M-row
# benchmark leaves tens of gigabytes there otherwise.
stop_cluster() {
  as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  if [ -n "$temporary_state" ]; then rm -rf "$temporary_state"; fi
}
trap stop_cluster EXIT

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/opsconsole"
if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='opsconsole'" | grep -q 1; then
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres opsconsole
fi
"$@"
