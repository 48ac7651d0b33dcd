#!/usr/bin/env bash
# ensure-postgres.sh: make sure a PostgreSQL server answers, and print its URL.
#
# Usage:
#   scripts/ensure-postgres.sh [--db NAME]   ensure a server; print one URL line
#   scripts/ensure-postgres.sh --stop        stop the private cluster, if running
#
# stdout gets exactly one line, the URL to use; every message goes to stderr,
# so callers can write  DATABASE_URL="$(scripts/ensure-postgres.sh --db steward)".
#
# Order of attempts:
#   1. DATABASE_URL is set: only check that it answers (nothing is started or
#      created, --db is ignored) and print it unchanged.
#   2. A server answers on 127.0.0.1:$STEWARD_PG_PROBE_PORT (default 5432): use it.
#   3. The machine's own cluster ($(ls /etc/postgresql)/main) listens on that
#      port but is down: start it with pg_ctlcluster (root or postgres user only).
#   4. Otherwise start a private cluster from the installed PostgreSQL binaries:
#      data in $STEWARD_PG_DIR (default ./var/pg), TCP 127.0.0.1:$STEWARD_PG_PORT
#      (default 54329), unix socket inside that dir, trust auth, superuser
#      "postgres". It is created once (initdb) and left running for next time.
#      As root, it is owned by and run as the postgres user.
#   5. None of these worked: exit 1 with a message saying why.
# With --db NAME (steps 2-4) the database NAME is created if missing and the
# URL names it; without it the URL names the "postgres" database.
#
# Environment (all optional):
#   DATABASE_URL            see step 1
#   STEWARD_PG_PROBE_PORT   port probed on 127.0.0.1 in steps 2-3 (default 5432).
#                           Setting it to an unused port (e.g. 1) simulates a
#                           machine with no PostgreSQL running, so step 4 can be
#                           tried without stopping the machine's cluster.
#   STEWARD_PG_DIR          private cluster directory (default <repo>/var/pg)
#   STEWARD_PG_PORT         private cluster port (default 54329)
#   STEWARD_PG_BIN          directory holding initdb/pg_ctl (default: newest
#                           /usr/lib/postgresql/*/bin, else pg_config --bindir)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
probe_port="${STEWARD_PG_PROBE_PORT:-5432}"
priv_dir="${STEWARD_PG_DIR:-$repo_root/var/pg}"
priv_port="${STEWARD_PG_PORT:-54329}"
pg_user=postgres

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

db=""
stop=0
while [ $# -gt 0 ]; do
	case "$1" in
	--db) [ $# -ge 2 ] || die "--db needs a name"; db="$2"; shift 2 ;;
	--db=*) db="${1#--db=}"; shift ;;
	--stop) stop=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
	*) die "unknown argument: $1 (try --help)" ;;
	esac
done
if [ -n "$db" ] && ! [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]]; then
	die "invalid database name: $db"
fi

# pg_bin_dir prints the directory with the server binaries (initdb, pg_ctl).
pg_bin_dir() {
	if [ -n "${STEWARD_PG_BIN:-}" ]; then
		printf '%s\n' "$STEWARD_PG_BIN"
		return
	fi
	local best
	# Numerically newest version (a plain glob sorts 10 before 9).
	best="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' -type f 2>/dev/null |
		sort -V | tail -n 1)"
	if [ -n "$best" ]; then
		dirname "$best"
		return
	fi
	if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
		return
	fi
	if command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
	fi
}

pg_bin="$(pg_bin_dir || true)"

# tool NAME prints the path of a PostgreSQL client tool (PATH first).
tool() {
	if command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
	elif [ -n "$pg_bin" ] && [ -x "$pg_bin/$1" ]; then
		printf '%s\n' "$pg_bin/$1"
	else
		return 1
	fi
}

# answers HOST PORT: true if a PostgreSQL server accepts connections there.
answers() {
	local isready
	if isready="$(tool pg_isready)"; then
		"$isready" -q -h "$1" -p "$2" -t 3
	else
		# No client tools: settle for a TCP connect.
		timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
	fi
}

# url_works URL: true if a real query succeeds over URL.
url_works() {
	local psql
	if psql="$(tool psql)"; then
		PGCONNECT_TIMEOUT=5 "$psql" "$1" -XAtqc 'select 1' >/dev/null
	else
		"$(tool pg_isready)" -q -d "$1" -t 5
	fi
}

url_for() { printf 'postgres://%s@127.0.0.1:%s/%s?sslmode=disable' "$pg_user" "$1" "$2"; }

# create_db PORT NAME: create database NAME on 127.0.0.1:PORT if missing.
create_db() {
	local port="$1" name="$2" psql exists
	psql="$(tool psql)" || die "psql not found; install postgresql-client"
	exists="$(PGCONNECT_TIMEOUT=5 "$psql" "$(url_for "$port" postgres)" -XAtq \
		-c "select 1 from pg_database where datname = '$name'")" ||
		die "cannot query databases on 127.0.0.1:$port"
	if [ "$exists" != 1 ]; then
		log "creating database $name on 127.0.0.1:$port"
		PGCONNECT_TIMEOUT=5 "$psql" "$(url_for "$port" postgres)" -XAtq -v ON_ERROR_STOP=1 \
			-c "create database \"$name\"" >/dev/null ||
			die "cannot create database $name on 127.0.0.1:$port"
	fi
}

# use_server PORT: create --db if asked, check the URL, print it, exit 0.
use_server() {
	local port="$1" name="${db:-postgres}" url
	[ -n "$db" ] && create_db "$port" "$db"
	url="$(url_for "$port" "$name")"
	url_works "$url" || die "PostgreSQL on 127.0.0.1:$port answers but $url does not work (auth? user $pg_user?)"
	printf '%s\n' "$url"
	exit 0
}

# wait_for PORT SECONDS: poll until the server on PORT answers.
wait_for() {
	local i
	for ((i = 0; i < $2 * 2; i++)); do
		answers 127.0.0.1 "$1" && return 0
		sleep 0.5
	done
	return 1
}

# try_system_cluster: start the machine's main cluster if it is the one that
# should listen on the probed port.
try_system_cluster() {
	local ver cport
	command -v pg_ctlcluster >/dev/null 2>&1 || return 1
	[ -d /etc/postgresql ] || return 1
	ver="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)"
	if [ -z "$ver" ] || [ ! -d "/etc/postgresql/$ver/main" ]; then
		return 1
	fi
	cport="$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' \
		"/etc/postgresql/$ver/main/postgresql.conf" 2>/dev/null | tail -n 1)"
	cport="${cport:-5432}"
	if [ "$cport" != "$probe_port" ]; then
		log "system cluster $ver/main listens on $cport, not the probed port $probe_port: not starting it"
		return 1
	fi
	if [ "$(id -u)" -ne 0 ] && [ "$(id -un)" != postgres ]; then
		log "system cluster $ver/main is down and only root or postgres may start it"
		return 1
	fi
	log "starting system cluster: pg_ctlcluster --skip-systemctl-redirect $ver main start"
	pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || return 1
	wait_for "$probe_port" 30
}

# as_owner CMD...: run CMD as the private cluster's owner.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$pg_user" -- "$@"
	else
		"$@"
	fi
}

# private_dir_usable DIR: true if the cluster owner can create and write DIR.
private_dir_usable() {
	local d="$1"
	mkdir -p "$d" 2>/dev/null || return 1
	if [ "$(id -u)" -eq 0 ]; then
		chown "$pg_user:" "$d" 2>/dev/null || return 1
		runuser -u "$pg_user" -- test -w "$d" -a -x "$d"
	else
		test -w "$d"
	fi
}

start_private() {
	local initdb pg_ctl data sockdir conf
	[ -n "$pg_bin" ] || die "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin, pg_config, PATH); install them, e.g. apt-get install -y postgresql, or set DATABASE_URL"
	initdb="$pg_bin/initdb"
	pg_ctl="$pg_bin/pg_ctl"
	if [ ! -x "$initdb" ] || [ ! -x "$pg_ctl" ]; then
		die "initdb/pg_ctl not found in $pg_bin"
	fi
	if [ "$(id -u)" -eq 0 ] && ! id "$pg_user" >/dev/null 2>&1; then
		die "running as root and there is no '$pg_user' user to own a private cluster (initdb refuses root)"
	fi

	if ! private_dir_usable "$priv_dir"; then
		# E.g. a clone under /root, which the postgres user cannot enter.
		local alt
		alt="${TMPDIR:-/tmp}/steward-pg-$(printf '%s' "$repo_root" | cksum | cut -d' ' -f1)"
		log "$priv_dir is not usable by user $(if [ "$(id -u)" -eq 0 ]; then echo "$pg_user"; else id -un; fi); using $alt instead"
		priv_dir="$alt"
		private_dir_usable "$priv_dir" || die "cannot prepare a private cluster directory ($priv_dir)"
	fi
	data="$priv_dir/data"

	if [ ! -s "$data/PG_VERSION" ]; then
		log "initdb: private cluster in $data (superuser $pg_user, trust auth)"
		as_owner "$initdb" -D "$data" -U "$pg_user" --auth=trust -E UTF8 --locale=C \
			>"$priv_dir/initdb.log" 2>&1 ||
			{ cat "$priv_dir/initdb.log" >&2; die "initdb failed"; }
		# Settings live in steward.conf, rewritten at every start (port, paths).
		printf "\n# added by scripts/ensure-postgres.sh\ninclude_if_exists = 'steward.conf'\n" |
			as_owner tee -a "$data/postgresql.conf" >/dev/null
	fi

	sockdir="$priv_dir/run"
	as_owner mkdir -p "$sockdir"
	# A unix socket path is limited to 107 bytes; past that, TCP only.
	if [ $((${#sockdir} + 20)) -gt 107 ]; then
		log "socket dir path too long for a unix socket; TCP only"
		sockdir=""
	fi
	conf="listen_addresses = '127.0.0.1'
port = $priv_port
unix_socket_directories = '$sockdir'
max_connections = 200
# A throwaway development/test cluster: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off"
	printf '%s\n' "$conf" | as_owner tee "$data/steward.conf" >/dev/null

	log "starting private cluster on 127.0.0.1:$priv_port (log: $priv_dir/postgres.log)"
	as_owner "$pg_ctl" -D "$data" -l "$priv_dir/postgres.log" -w -t 60 start >&2 ||
		{ tail -n 30 "$priv_dir/postgres.log" >&2 || true; die "private cluster failed to start"; }
	wait_for "$priv_port" 30 || die "private cluster started but does not answer on 127.0.0.1:$priv_port"
}

stop_private() {
	local data="$priv_dir/data" pg_ctl
	if [ ! -s "$data/PG_VERSION" ]; then
		local alt
		alt="${TMPDIR:-/tmp}/steward-pg-$(printf '%s' "$repo_root" | cksum | cut -d' ' -f1)"
		data="$alt/data"
	fi
	[ -s "$data/PG_VERSION" ] || { log "no private cluster"; return 0; }
	[ -n "$pg_bin" ] || die "pg_ctl not found"
	pg_ctl="$pg_bin/pg_ctl"
	if as_owner "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
		log "stopping private cluster in $data"
		as_owner "$pg_ctl" -D "$data" -m fast -w -t 60 stop >&2
	else
		log "private cluster in $data is not running"
	fi
}

if [ "$stop" = 1 ]; then
	stop_private
	exit 0
fi

# 1. An explicit DATABASE_URL: check only.
if [ -n "${DATABASE_URL:-}" ]; then
	tool psql >/dev/null || tool pg_isready >/dev/null ||
		die "DATABASE_URL is set but neither psql nor pg_isready is installed to check it"
	if url_works "$DATABASE_URL"; then
		log "DATABASE_URL answers"
		printf '%s\n' "$DATABASE_URL"
		exit 0
	fi
	die "DATABASE_URL is set but does not answer (unset it to let this script find or start a server)"
fi

# 2. Something already answers on the probed port.
if answers 127.0.0.1 "$probe_port"; then
	log "PostgreSQL answers on 127.0.0.1:$probe_port"
	use_server "$probe_port"
fi

# 3. The machine's own cluster, if it is merely stopped.
if try_system_cluster; then
	log "system cluster answers on 127.0.0.1:$probe_port"
	use_server "$probe_port"
fi

# 4. A private cluster (may already be running from an earlier call).
if answers 127.0.0.1 "$priv_port"; then
	log "private cluster answers on 127.0.0.1:$priv_port"
	use_server "$priv_port"
fi
start_private
use_server "$priv_port"
