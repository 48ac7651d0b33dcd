#!/usr/bin/env bash
# bench.sh: consent-check throughput of Steward against two reference points.
#
#   steward     bin/steward serve (auth, database, in-process policy)
#   bare        bench/bare: fiber returning a constant body (HTTP ceiling)
#   opa-design  bench/opadesign: fiber + parameter checks + a POST to an
#               `opa run --server` sidecar per request (the design not taken)
#
# All four servers (steward, bare, opa, opadesign) listen on 127.0.0.1 ports
# picked at random. Each target gets a short warm-up, then in each of
# BENCH_ROUNDS rounds (the targets' order alternating)
#   wrk -t1 -c32 -d${BENCH_SECONDS}s --latency -H 'Authorization: Bearer KEY' URL
# The table (target; the median round's req/s, p99 and server CPU time per
# request) and the ratios steward/bare (by req/s and by CPU per request) and
# steward/opa-design, each the median of the rounds' ratios with the lowest
# and highest, are printed and written to var/bench/consent-check.txt.
#
# Installs wrk (apt) and opa (go install, pinned) if missing. Uses a fresh
# database steward_bench on the server scripts/ensure-postgres.sh finds (or on
# the server of $DATABASE_URL), dropped again on exit, and throwaway secrets.
#
# Environment (optional):
#   BENCH_SECONDS       measured seconds per target and round (default 5)
#   BENCH_ROUNDS        rounds, alternating the targets' order (default 5)
#   BENCH_WARM_SECONDS  warm-up seconds per target (default 3)
#   BENCH_LOG_LEVEL     STEWARD_LOG_LEVEL for steward serve (default info: access log on, as in production)
#   BENCH_KEEP=1        keep the temp dir with the server logs
#   BENCH_DSAR=0        skip the privacy-request benchmark at the end
#   BENCH_PPROF=1       build steward with -tags stewardpprof and write a CPU
#                       profile of its measured run to var/bench/steward-cpu.pprof
#                       (go tool pprof -top bin/steward var/bench/steward-cpu.pprof)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

OPA_VERSION=v1.22.2
BENCH_SECONDS="${BENCH_SECONDS:-5}"
BENCH_ROUNDS="${BENCH_ROUNDS:-5}"
BENCH_WARM_SECONDS="${BENCH_WARM_SECONDS:-3}"
BENCH_LOG_LEVEL="${BENCH_LOG_LEVEL:-info}"
BENCH_DB=steward_bench
SUBJECT="visitor:bench0000abcd"
QUERY="subject=$SUBJECT&purpose=analytics&jurisdiction=US-CA"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in BENCH_SECONDS BENCH_WARM_SECONDS BENCH_ROUNDS; do
	[[ "${!v}" =~ ^[1-9][0-9]{0,3}$ ]] || die "$v must be a whole number of seconds (1-9999)"
done

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found"
PATH="$PATH:$(go env GOPATH)/bin"
export PATH

# ---------------------------------------------------------------- cleanup
work="$(mktemp -d "${TMPDIR:-/tmp}/steward-bench.XXXXXX")"
pids=()
admin_url=""
db_created=0
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$db_created" = 1 ]; then
		PGOPTIONS="-c client_min_messages=warning" psql "$admin_url" -XAtq -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 ||
			log "could not drop database $BENCH_DB"
	fi
	if [ "$rc" -ne 0 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "logs kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk (apt)"
	if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo -n); fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2 ||
		{ "${sudo[@]}" apt-get update -qq >&2 && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2; }
fi
command -v wrk >/dev/null 2>&1 || die "wrk is not installed"

opa_bin=""
for cand in "$(command -v opa || true)" "$(go env GOPATH)/bin/opa"; do
	if [ -n "$cand" ] && [ -x "$cand" ] && "$cand" version 2>/dev/null | grep -qx "Version: ${OPA_VERSION#v}"; then
		opa_bin="$cand"
		break
	fi
done
if [ -z "$opa_bin" ]; then
	log "installing opa $OPA_VERSION (go install; takes a few minutes)"
	GOFLAGS='' GOBIN="$(go env GOPATH)/bin" go install "github.com/open-policy-agent/opa@$OPA_VERSION"
	opa_bin="$(go env GOPATH)/bin/opa"
fi
command -v psql >/dev/null 2>&1 || die "psql not found"
command -v curl >/dev/null 2>&1 || die "curl not found"

# ---------------------------------------------------------------- build
log "building bin/steward, bin/bench-bare, bin/bench-opadesign"
pprof_tags=()
[ "${BENCH_PPROF:-0}" = 1 ] && pprof_tags=(-tags stewardpprof)
go build "${pprof_tags[@]}" -o bin/steward ./cmd/steward
go build -o bin/bench-bare ./bench/bare
go build -o bin/bench-opadesign ./bench/opadesign

# ---------------------------------------------------------------- database
# with_db URL NAME: URL with its database path replaced by NAME.
with_db() {
	local url="$1" name="$2" query="" rest authority
	case "$url" in
	postgres://* | postgresql://*) ;;
	*) die "DATABASE_URL must be a postgres:// URL for the bench" ;;
	esac
	if [[ "$url" == *\?* ]]; then
		query="?${url#*\?}"
		url="${url%%\?*}"
	fi
	rest="${url#*://}"
	authority="${rest%%/*}"
	printf '%s://%s/%s%s\n' "${url%%://*}" "$authority" "$name" "$query"
}
if [ -n "${DATABASE_URL:-}" ]; then
	scripts/ensure-postgres.sh >/dev/null
	admin_url="$(with_db "$DATABASE_URL" postgres)"
else
	admin_url="$(scripts/ensure-postgres.sh)"
fi
bench_url="$(with_db "$admin_url" "$BENCH_DB")"
log "fresh database $BENCH_DB on ${admin_url%%\?*}"
db_created=1
PGOPTIONS="-c client_min_messages=warning" psql "$admin_url" -XAtq -v ON_ERROR_STOP=1 \
	-c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" \
	-c "CREATE DATABASE $BENCH_DB" >/dev/null

rand32() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
steward_env=(
	"DATABASE_URL=$bench_url"
	"STEWARD_IDENTITY_KEYS=bench:$(rand32)"
	"STEWARD_RECEIPT_SIGNING_KEY=$(rand32)"
	"STEWARD_AUDIT_SIGNING_KEY=$(rand32)"
	"STEWARD_LOG_LEVEL=$BENCH_LOG_LEVEL"
	# The rate limiter runs as in production, with a key limit wrk cannot
	# reach: the default (120,000 a minute for a frontend key) would turn a
	# long run into 429s and measure the refusal instead of the check.
	"STEWARD_RATE_LIMIT_KEYS=frontend:1000000000,*:1200"
)
steward() { env "${steward_env[@]}" bin/steward "$@"; }

log "migrating"
steward migrate up >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate up failed"; }
key="$(steward keys create --name bench-frontend --role frontend --quiet 2>"$work/keys.log" | tr -d '\r\n')" ||
	{ cat "$work/keys.log" >&2; die "keys create failed"; }
[ -n "$key" ] || die "keys create printed no key"
mkdir -p "$work/policy"
steward policy data >"$work/policy/data.json" 2>"$work/policy-data.log" ||
	{ cat "$work/policy-data.log" >&2; die "steward policy data failed"; }
rego=()
for f in policies/*.rego; do
	[[ "$f" == *_test.rego ]] || rego+=("$f")
done
[ "${#rego[@]}" -gt 0 ] || die "no policies/*.rego"

# ---------------------------------------------------------------- servers
# port_free PORT: true if nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
pick_port() {
	local i p
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 20000))
		if [[ "$taken" != *" $p "* ]] && port_free "$p"; then
			taken+="$p "
			printf '%s\n' "$p"
			return 0
		fi
	done
	die "no free port found"
}
p_steward="$(pick_port)"
p_bare="$(pick_port)"
p_opa="$(pick_port)"
p_opadesign="$(pick_port)"
pprof_env=()
if [ "${BENCH_PPROF:-0}" = 1 ]; then
	p_pprof="$(pick_port)"
	pprof_env=("STEWARD_PPROF_ADDR=127.0.0.1:$p_pprof")
fi

log "starting steward on :$p_steward, bare on :$p_bare, opa on :$p_opa, opadesign on :$p_opadesign"
env "${steward_env[@]}" "${pprof_env[@]}" STEWARD_ADDR="127.0.0.1:$p_steward" bin/steward serve \
	>"$work/steward.out" 2>"$work/steward.log" &
pids+=($!)
bin/bench-bare -addr "127.0.0.1:$p_bare" >"$work/bare.log" 2>&1 &
pids+=($!)
"$opa_bin" run --server --skip-version-check --log-level error \
	--addr "127.0.0.1:$p_opa" "${rego[@]}" "$work/policy/data.json" >"$work/opa.log" 2>&1 &
pids+=($!)
bin/bench-opadesign -addr "127.0.0.1:$p_opadesign" -opa "http://127.0.0.1:$p_opa" >"$work/opadesign.log" 2>&1 &
pids+=($!)

# wait_healthy NAME PID URL LOG: poll URL for up to 60 s while PID lives.
wait_healthy() {
	local name="$1" pid="$2" url="$3" logf="$4" i
	for ((i = 0; i < 120; i++)); do
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			log "$name is up"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$logf" >&2 || true
			die "$name exited before becoming healthy"
		fi
		sleep 0.5
	done
	tail -n 20 "$logf" >&2 || true
	die "$name not healthy after 60 s ($url)"
}
wait_healthy steward "${pids[0]}" "http://127.0.0.1:$p_steward/healthz" "$work/steward.log"
wait_healthy bare "${pids[1]}" "http://127.0.0.1:$p_bare/healthz" "$work/bare.log"
wait_healthy opa "${pids[2]}" "http://127.0.0.1:$p_opa/health" "$work/opa.log"
wait_healthy opadesign "${pids[3]}" "http://127.0.0.1:$p_opadesign/healthz" "$work/opadesign.log"

targets=(steward bare opa-design)
declare -A url=(
	[steward]="http://127.0.0.1:$p_steward/v1/consent/check?$QUERY"
	[bare]="http://127.0.0.1:$p_bare/v1/consent/check?$QUERY"
	[opa-design]="http://127.0.0.1:$p_opadesign/v1/consent/check?$QUERY"
)
auth="Authorization: Bearer $key"

# Every target must answer the check with 200 before it is measured.
for t in "${targets[@]}"; do
	code="$(curl -sS --max-time 5 -o "$work/$t.body" -w '%{http_code}' -H "$auth" "${url[$t]}")" || code=000
	if [ "$code" != 200 ]; then
		{ head -c 2000 "$work/$t.body"; echo; } >&2 2>/dev/null || true
		die "$t answered $code to ${url[$t]%%\?*}"
	fi
	log "$t: $(head -c 300 "$work/$t.body")"
done

# ---------------------------------------------------------------- measure
# to_ms VALUE: wrk latency (e.g. 812.00us, 1.23ms, 2.01s, 1.50m) in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
		f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
		if (f < 0 || n == "") { print "?"; exit }
		printf "%.3f", n * f
	}'
}

# cpu_ticks PID: user+system CPU time of PID so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
declare -A pid_of=([steward]="${pids[0]}" [bare]="${pids[1]}" [opa-design]="${pids[3]}")
hz="$(getconf CLK_TCK)"

# measure T ROUND: one measured wrk run against T, its figures filed under
# "T ROUND" in rps, p99 and cpu_us.
declare -A rps=() p99=() cpu_us=()
measure() {
	local t="$1" r="$2" ticks0 ticks1 reqs pprof_pid=""
	log "round $r: measuring $t for ${BENCH_SECONDS}s"
	if [ "$t" = steward ] && [ "$r" = 1 ] && [ "${BENCH_PPROF:-0}" = 1 ]; then
		mkdir -p var/bench
		curl -fsS -o var/bench/steward-cpu.pprof "http://127.0.0.1:$p_pprof/debug/pprof/profile?seconds=$BENCH_SECONDS" &
		pprof_pid=$!
	fi
	ticks0="$(cpu_ticks "${pid_of[$t]}")"
	wrk -t1 -c32 -d"${BENCH_SECONDS}s" --latency -H "$auth" "${url[$t]}" >"$work/$t.wrk" 2>&1 ||
		{ cat "$work/$t.wrk" >&2; die "wrk failed for $t"; }
	ticks1="$(cpu_ticks "${pid_of[$t]}")"
	reqs="$(awk '/requests in/ {print $1}' "$work/$t.wrk")"
	# The server's own CPU time per request (opa-design's excludes its opa).
	cpu_us["$t $r"]="$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$hz" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "n/a" }')"
	if grep -q 'Non-2xx or 3xx responses' "$work/$t.wrk"; then
		cat "$work/$t.wrk" >&2
		die "$t answered errors under load; its numbers would be meaningless"
	fi
	if [ -n "$pprof_pid" ]; then
		wait "$pprof_pid" || die "could not take the CPU profile"
		log "CPU profile written to var/bench/steward-cpu.pprof"
	fi
	rps["$t $r"]="$(awk '/^Requests\/sec:/ {print $2}' "$work/$t.wrk")"
	p99["$t $r"]="$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/$t.wrk")")"
	[ -n "${rps["$t $r"]}" ] || { cat "$work/$t.wrk" >&2; die "could not parse wrk output for $t"; }
	if grep -q 'Socket errors' "$work/$t.wrk"; then
		log "$t: $(grep 'Socket errors' "$work/$t.wrk" | sed 's/^ *//')"
	fi
}

for t in "${targets[@]}"; do
	log "warming $t for ${BENCH_WARM_SECONDS}s"
	wrk -t1 -c32 -d"${BENCH_WARM_SECONDS}s" -H "$auth" "${url[$t]}" >"$work/$t.warm" 2>&1 ||
		{ cat "$work/$t.warm" >&2; die "wrk warm-up failed for $t"; }
done
# Rounds alternate the order of the targets, so that a machine busier at
# one moment than the next does not always favour the same one; each
# round's ratios compare runs seconds apart, and the median round is what
# is reported (with the spread).
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	order=("${targets[@]}")
	((r % 2 == 0)) && order=(bare steward opa-design)
	for t in "${order[@]}"; do
		measure "$t" "$r"
	done
done

# median VALUE...: the median of numbers (the lower middle one of an even
# count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# figures T FIELD: every round's value of FIELD (rps, p99, cpu_us) for T.
figures() {
	local -n f="$2"
	local r
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do printf '%s ' "${f["$1 $r"]}"; done
}
# round_ratios A B FIELD [inverse]: each round's A/B of FIELD (B/A if inverse).
round_ratios() {
	local -n f="$3"
	local r
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		if [ "${4:-}" = inverse ]; then ratio "${f["$2 $r"]}" "${f["$1 $r"]}"; else ratio "${f["$1 $r"]}" "${f["$2 $r"]}"; fi
		echo
	done
}
# spread VALUE...: "median (min-max)".
spread() {
	local sorted
	sorted="$(printf '%s\n' "$@" | sort -g)"
	printf '%s (%s-%s)' "$(median "$@")" "$(head -n1 <<<"$sorted")" "$(tail -n1 <<<"$sorted")"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

mkdir -p var/bench
out=var/bench/consent-check.txt
{
	echo "# consent check: GET /v1/consent/check?$QUERY"
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo none)  $(go version | cut -d' ' -f3)  $(nproc) cores"
	echo "# wrk -t1 -c32 -d${BENCH_SECONDS}s --latency per target, $BENCH_ROUNDS rounds in alternating order (after ${BENCH_WARM_SECONDS}s warm-up); medians; steward log level $BENCH_LOG_LEVEL; opa $OPA_VERSION"
	printf '%-12s %12s %10s %16s\n' target req/s p99 'server cpu/req'
	for t in "${targets[@]}"; do
		# shellcheck disable=SC2046 # word splitting intended
		printf '%-12s %12.0f %8sms %14sus\n' "$t" "$(median $(figures "$t" rps))" "$(median $(figures "$t" p99))" "$(median $(figures "$t" cpu_us))"
	done
	echo
	echo "# ratios: the median round's (lowest-highest round)"
	# shellcheck disable=SC2046
	printf 'steward/bare        %s\n' "$(spread $(round_ratios steward bare rps))"
	# Less disturbed by other work on a shared machine than req/s: bare's
	# CPU time per request over steward's.
	# shellcheck disable=SC2046
	printf 'steward/bare (cpu)  %s\n' "$(spread $(round_ratios steward bare cpu_us inverse))"
	# shellcheck disable=SC2046
	printf 'steward/opa-design  %s\n' "$(spread $(round_ratios steward opa-design rps))"
	echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine skews req/s more than cpu/req)"
} >"$out"
cat "$out"
log "written to $out"

# ---------------------------------------------------------------- privacy requests
# How long an access request with five automated tasks takes from
# verification to completed (internal/dsar BenchmarkVerifiedToCompleted:
# p50-ms and p99-ms per request; target p50 < 200 ms), on the same server.
if [ "${BENCH_DSAR:-1}" = 0 ]; then
	exit 0
fi
log "privacy requests: verified to completed, 50 access requests of 5 automated tasks"
STEWARD_TEST_DATABASE_URL="$admin_url" go test -run '^$' -bench BenchmarkVerifiedToCompleted -benchtime 50x ./internal/dsar/
