#!/usr/bin/env bash
# postgres-for-tests.sh [DATADIR] starts a throwaway PostgreSQL server for
# the journal/postgres tests and prints its DSN on stdout, so that
#
#	export LOOM_POSTGRES_DSN=$(scripts/postgres-for-tests.sh)
#
# runs them. DATADIR defaults to /tmp/loom-postgres-test. It is idempotent: a
# server already running on DATADIR is reused (its DSN printed again). The
# server trusts local connections as user postgres, listens on 127.0.0.1 on a
# free port from 54329 up, and keeps its socket and log in DATADIR. As root
# it runs as the postgres OS user. Stop it with
#
#	pg_ctl -D DATADIR stop    (as root: su postgres -c 'pg_ctl -D DATADIR stop')
set -euo pipefail

datadir=${1:-/tmp/loom-postgres-test}
bindir=${PG_BINDIR:-}
if [[ -z $bindir ]]; then
	if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
		bindir=$(pg_config --bindir)
	else
		bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	fi
fi
[[ -x $bindir/initdb ]] || { echo "postgres-for-tests: no initdb found (set PG_BINDIR)" >&2; exit 1; }

# as runs a command as the server's OS user: postgres when we are root.
as() {
	if [[ $(id -u) == 0 ]]; then
		su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	else
		"$@"
	fi
}

mkdir -p "$datadir"
datadir=$(cd "$datadir" && pwd)
[[ $(id -u) == 0 ]] && chown postgres "$datadir"
portfile=$datadir/loom-test-port

dsn() { echo "postgres://postgres@127.0.0.1:$1/postgres?sslmode=disable"; }

if [[ -f $portfile ]] && as "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
	port=$(cat "$portfile")
else
	if [[ ! -f $datadir/PG_VERSION ]]; then
		as "$bindir/initdb" -D "$datadir" -A trust -U postgres >&2
	fi
	port=54329
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port" >"$portfile"
	as "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w \
		-o "-p $port -k $datadir -c listen_addresses=127.0.0.1" start >&2
fi

for _ in $(seq 1 60); do
	if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
		dsn "$port"
		exit 0
	fi
	sleep 0.5
done
echo "postgres-for-tests: server on port $port not ready; see $datadir/server.log" >&2
exit 1
