#!/usr/bin/env bash
# Run a command through PgBouncer in transaction pooling mode, in front of the PostgreSQL
# that DATABASE_URL names (scripts/with-postgres.sh starts one). Installs Debian's pgbouncer
# if it is missing (as root), starts it on a free loopback port with its files in a temporary
# directory, points DATABASE_URL at it with DATABASE_TRANSACTION_POOLING=true (and
# DATABASE_LISTEN_URL at the PostgreSQL itself), runs the
# command, and stops it afterwards.
set -euo pipefail

if [ -z "${DATABASE_URL:-}" ]; then
  echo "with-pgbouncer: DATABASE_URL must name the PostgreSQL to pool" >&2
  exit 1
fi
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "with-pgbouncer: installing PgBouncer from Debian's packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  else
    echo "with-pgbouncer: pgbouncer is not installed; run as root once" >&2
    exit 1
  fi
fi
pgbouncer_bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

# postgres://user@host:port/name, as scripts/with-postgres.sh writes it.
rest=${DATABASE_URL#*://}
user=${rest%%@*}
user=${user%%:*}
hostport=${rest#*@}
hostport=${hostport%%/*}
host=${hostport%%:*}
pg_port=${hostport##*:}
name=${rest##*/}
name=${name%%\?*}

port=${OPSCONSOLE_PGBOUNCER_PORT:-64329}
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  port=$((port + 1))
done

dir=$(mktemp -d /tmp/opsconsole-pgbouncer.XXXXXX)
printf '"%s" ""\n' "$user" >"$dir/userlist.txt"
# Every database of that server (the test run creates its own); pools big enough for the
# suite's concurrency tests, whose threads each hold a transaction at once.
cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 80
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF

run_as=()
if [ "$(id -u)" = "0" ]; then
  # PgBouncer refuses to run as root.
  chown -R postgres "$dir"
  run_as=(runuser -u postgres --)
fi
"${run_as[@]}" "$pgbouncer_bin" -d "$dir/pgbouncer.ini"

stop_pgbouncer() {
  if [ -f "$dir/pgbouncer.pid" ]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  fi
  sleep 0.5
  rm -rf "$dir"
}
trap stop_pgbouncer EXIT

for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

# A LISTEN lives in a session, which transaction pooling does not keep: the listening
# delivery process connects to PostgreSQL itself (opsconsole/workers/listeners.py).
export DATABASE_LISTEN_URL="$DATABASE_URL"
export DATABASE_URL="postgres://$user@127.0.0.1:$port/$name"
export DATABASE_TRANSACTION_POOLING=true
"$@"
