#!/usr/bin/env bash
# run.sh: what `make run` does. Starts Steward locally, on a fresh machine too.
#
#   1. Database: $DATABASE_URL if set; else database "steward" (created if
#      missing) on the PostgreSQL that scripts/ensure-postgres.sh finds or
#      starts: 127.0.0.1:5432 if it answers, else the machine's stopped
#      cluster, else a private cluster under ./var/pg on port 54329.
#   2. Secrets: ./var/secrets.env is created once (never overwritten, mode 0600)
#      with a fresh STEWARD_IDENTITY_KEYS and STEWARD_RECEIPT_SIGNING_KEY, then
#      sourced. Delete it only if you mean to lose every sealed identity.
#   3. Builds bin/steward and bin/steward-demo, and applies migrations.
#   4. Creates one demo API key per role (frontend, sdk, admin, auditor,
#      reviewer) and writes them to ./var/demo.env (mode 0600).
#   5. The demo deployment (skipped with STEWARD_DEMO=0), all on loopback
#      ports and under ./var/demo:
#      - versitygw, an S3 server (installed into GOPATH/bin with go install
#        if missing, which takes a few minutes, once) on 127.0.0.1:7070,
#        data in ./var/demo/s3;
#      - `steward-demo seed`: database steward_demo_app on the same
#        PostgreSQL (created if missing), schemas app (web) and bot
#        recreated with 300 generated people each, bucket "media" refilled
#        with the web people's uploads, masks and generated images;
#      - `steward-demo peers`: the Stripe fake (127.0.0.1:12111), the Creem
#        fake (:12112), a Resend stand-in (:12113, printing every email) and
#        a Telegram Bot API stand-in (:12114, printing every bot message)
#        and the reference bot's opt-out webhook receiver (:12115), every
#        web person a customer of both, linked from app.users;
#      - `steward-demo connectors`: ./var/demo/connectors.yaml.
#      A port in use is replaced by the next free one. The demo people and
#      the peers' URLs and keys are added to ./var/demo.env.
#   6. bin/steward serve on $STEWARD_ADDR (default 127.0.0.1:8080), with
#      STEWARD_CONNECTORS=./var/demo/connectors.yaml and (demo only)
#      STEWARD_WEBHOOKS_ALLOW_LOOPBACK=true. Once it is ready,
#      `steward-demo webhook` registers the opt-out receiver as a webhook
#      endpoint (once: kept across runs while its URL stays the same) and
#      writes its signing secret to ./var/demo/optouts-webhook.secret
#      (mode 0600), which the receiver reads. When Steward exits, or on
#      Ctrl-C or SIGTERM, every process started here is stopped.
#
# Environment: DATABASE_URL, STEWARD_ADDR, STEWARD_LOG_LEVEL, STEWARD_DEMO,
# STEWARD_DEMO_PEOPLE (default 300), STEWARD_DEMO_S3_PORT,
# STEWARD_DEMO_STRIPE_PORT, STEWARD_DEMO_CREEM_PORT, STEWARD_DEMO_RESEND_PORT,
# STEWARD_DEMO_TELEGRAM_PORT, STEWARD_DEMO_OPTOUTS_PORT, and those read by scripts/ensure-postgres.sh
# (STEWARD_PG_PROBE_PORT, STEWARD_PG_DIR, STEWARD_PG_PORT).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'run: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found (expected on PATH or in /usr/local/go/bin)"

mkdir -p var
chmod 0755 var

# 1. Database.
if [ -z "${DATABASE_URL:-}" ]; then
	DATABASE_URL="$(scripts/ensure-postgres.sh --db steward)"
else
	scripts/ensure-postgres.sh >/dev/null
fi
export DATABASE_URL

# 2. Secrets, created once; a secret added in a later version is appended
#    to an existing file, never replacing what is there.
secrets=var/secrets.env
rand32() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
if [ ! -e "$secrets" ]; then
	tmp="$(mktemp var/.secrets.env.XXXXXX)"
	chmod 0600 "$tmp"
	{
		echo "# Created by scripts/run.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Keep secret; never commit."
		echo "# Losing STEWARD_IDENTITY_KEYS makes stored identities unreadable."
	} >"$tmp"
	# ln fails if the target exists: never overwrite, even in a race.
	if ln "$tmp" "$secrets" 2>/dev/null; then
		log "created $secrets"
	fi
	rm -f "$tmp"
fi
for name in STEWARD_IDENTITY_KEYS STEWARD_RECEIPT_SIGNING_KEY STEWARD_AUDIT_SIGNING_KEY STEWARD_DEMO_ADMIN_PASSWORD; do
	if ! grep -q "^$name=" "$secrets"; then
		value="$(rand32)"
		[ "$name" = STEWARD_IDENTITY_KEYS ] && value="k1:$value"
		echo "$name=$value" >>"$secrets"
		log "added $name to $secrets"
	fi
done
chmod 0600 "$secrets"
set -a
# shellcheck source=/dev/null
. "./$secrets"
set +a

# 3. Build and migrate.
log "building bin/steward and bin/steward-demo"
go build -o bin/steward ./cmd/steward
go build -o bin/steward-demo ./cmd/steward-demo
log "applying migrations"
bin/steward migrate up

# 4. Demo keys, fresh each run.
export STEWARD_ADDR="${STEWARD_ADDR:-127.0.0.1:8080}"
host="${STEWARD_ADDR%:*}"
port="${STEWARD_ADDR##*:}"
case "$host" in "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;; esac
url="http://$host:$port"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
declare -A keys=()
for role in frontend sdk admin auditor reviewer; do
	out="$(bin/steward keys create --name "demo-$role-$stamp" --role "$role" --quiet)" ||
		die "could not create the $role key"
	out="$(printf '%s' "$out" | tr -d '\r' | sed '/^[[:space:]]*$/d')"
	if [ -z "$out" ] || [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || [[ "$out" =~ [[:space:]\'] ]]; then
		die "'steward keys create --quiet' for $role did not print exactly one key line"
	fi
	keys[$role]="$out"
done

# 4b. The demo staff admin for the console, created once (its password
#     stays in var/secrets.env, so every run prints the same one).
STEWARD_STAFF_PASSWORD="$STEWARD_DEMO_ADMIN_PASSWORD" bin/steward staff create --email admin@demo.local \
	--name "Demo admin" --role admin --if-missing >/dev/null || die "could not create the demo staff admin"
# Passkeys need a host name, not an IP address: the console is shown at localhost.
console_url="$url/console/"
[ "$host" != 127.0.0.1 ] || console_url="http://localhost:$port/console/"

# 5. The demo deployment. Every process started from here on is stopped
#    when this script ends, however it ends (short of SIGKILL).
children=()
steward_pid=""

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS; reap it and
# set $stopped to its exit status (1 if it had already gone).
stop_pid() {
	local pid="$1" i
	stopped=1
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	stopped=0
	wait "$pid" 2>/dev/null || stopped=$?
}

cleanup() {
	local status=$? i
	trap '' INT TERM # a second Ctrl-C must not orphan what is being stopped
	trap - EXIT
	if [ -n "$steward_pid" ]; then
		stop_pid "$steward_pid" 40
		# Stopped by a signal: exit as Steward did (0 after a clean shutdown).
		[ "$status" -lt 128 ] || status=$stopped
	fi
	for ((i = ${#children[@]} - 1; i >= 0; i--)); do
		stop_pid "${children[i]}" 10
	done
	[ ${#children[@]} -eq 0 ] || log "stopped the demo peers and versitygw"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
# pick_port DEFAULT WHAT: sets $port to DEFAULT, or the next free port after it.
pick_port() {
	local p="$1" i
	for ((i = 0; i < 100; i++, p++)); do
		if [[ "$taken" != *" $p "* ]] && port_free "$p"; then
			[ "$p" = "$1" ] || log "port $1 is in use; the $2 gets $p"
			taken+="$p "
			port="$p"
			return 0
		fi
	done
	die "no free port for the $2 from $1 on"
}

# read_env: set the DEMO_*=value lines of standard input as variables.
read_env() {
	local k v
	while IFS='=' read -r k v; do
		if [[ "$k" =~ ^DEMO_[A-Z0-9_]+$ ]]; then
			printf -v "$k" '%s' "$v"
		fi
	done
}

demo_on=1
case "${STEWARD_DEMO:-1}" in 0 | false | no | off) demo_on=0 ;; esac
if [ "$demo_on" = 1 ]; then
	demo_dir=var/demo
	mkdir -p "$demo_dir/s3"
	s3_key=steward-demo-access
	s3_secret=steward-demo-secret-key

	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$gobin/versitygw" ]; then
		log "versitygw (the demo's S3 server) is missing: installing it takes about 4 minutes, once."
		log "(STEWARD_DEMO=0 make run skips the demo deployment.)"
	fi
	scripts/ensure-peers.sh versitygw || die "could not install versitygw (STEWARD_DEMO=0 make run skips the demo deployment)"
	vgw="$(command -v versitygw || echo "$gobin/versitygw")"

	pick_port "${STEWARD_DEMO_S3_PORT:-7070}" "object store (versitygw)"
	s3_url="http://127.0.0.1:$port"
	log "starting versitygw on $s3_url (data in $demo_dir/s3, log in $demo_dir/versitygw.log)"
	"$vgw" --access "$s3_key" --secret "$s3_secret" --region us-east-1 --port "127.0.0.1:$port" \
		posix "$demo_dir/s3" >"$demo_dir/versitygw.log" 2>&1 </dev/null &
	children+=($!)

	log "seeding the demo application: database, people, objects"
	seed_out="$(bin/steward-demo seed --people "${STEWARD_DEMO_PEOPLE:-300}" --s3-endpoint "$s3_url" \
		--s3-access-key "$s3_key" --s3-secret-key "$s3_secret")" ||
		die "steward-demo seed failed (versitygw's log: $demo_dir/versitygw.log)"
	read_env <<<"$seed_out"

	log "starting the Stripe and Creem fakes and the Resend and Telegram stand-ins"
	pick_port "${STEWARD_DEMO_STRIPE_PORT:-12111}" "Stripe fake"
	stripe_addr="127.0.0.1:$port"
	pick_port "${STEWARD_DEMO_CREEM_PORT:-12112}" "Creem fake"
	creem_addr="127.0.0.1:$port"
	pick_port "${STEWARD_DEMO_RESEND_PORT:-12113}" "Resend stand-in"
	resend_addr="127.0.0.1:$port"
	pick_port "${STEWARD_DEMO_TELEGRAM_PORT:-12114}" "Telegram stand-in"
	telegram_addr="127.0.0.1:$port"
	pick_port "${STEWARD_DEMO_OPTOUTS_PORT:-12115}" "bot opt-out receiver"
	optouts_addr="127.0.0.1:$port"
	optouts_secret="$demo_dir/optouts-webhook.secret"
	ready="$demo_dir/peers.ready"
	rm -f "$ready"
	bin/steward-demo peers --database "$DEMO_APP_DATABASE_URL" --stripe "$stripe_addr" --creem "$creem_addr" \
		--resend "$resend_addr" --telegram "$telegram_addr" --ready-file "$ready" --mail-log "$demo_dir/mail.log" \
		--chat-log "$demo_dir/telegram.log" --optouts "$optouts_addr" --optouts-secret-file "$optouts_secret" </dev/null &
	peers_pid=$!
	children+=("$peers_pid")
	for ((i = 0; i < 600; i++)); do
		[ -s "$ready" ] && break
		kill -0 "$peers_pid" 2>/dev/null || die "steward-demo peers exited"
		sleep 0.1
	done
	[ -s "$ready" ] || die "steward-demo peers did not get ready within 60s"
	read_env <"$ready"

	bin/steward-demo connectors --database "$DEMO_APP_DATABASE_URL" --s3-endpoint "$s3_url" \
		--stripe-url "$DEMO_STRIPE_URL" --creem-url "$DEMO_CREEM_URL" --out "$demo_dir/connectors.yaml"
	export STEWARD_CONNECTORS="$PWD/$demo_dir/connectors.yaml"
	# The opt-out receiver is on loopback: Steward refuses such webhook
	# endpoints unless told this is a test or demo.
	export STEWARD_WEBHOOKS_ALLOW_LOOPBACK=true
	# Emails go to the stand-in, unless a real Resend is configured.
	mail="$DEMO_RESEND_URL  (emails Steward sends are printed here and kept in ./var/demo/mail.log)"
	if [ -z "${STEWARD_RESEND_API_KEY:-}" ]; then
		export STEWARD_RESEND_API_KEY=re_steward_demo STEWARD_RESEND_BASE_URL="$DEMO_RESEND_URL"
		export STEWARD_EMAIL_FROM="${STEWARD_EMAIL_FROM:-Privacy <privacy@example.com>}"
		export STEWARD_STAFF_EMAIL="${STEWARD_STAFF_EMAIL:-privacy-team@example.com}"
	else
		mail="not used: STEWARD_RESEND_API_KEY is set, so emails go to Resend"
	fi
	# Bot messages go to the stand-in, unless a real bot is configured.
	bot="$DEMO_TELEGRAM_URL  (messages to people who asked through the bot are printed here and kept in ./var/demo/telegram.log)"
	if [ -z "${STEWARD_TELEGRAM_BOT_TOKEN:-}" ]; then
		export STEWARD_TELEGRAM_BOT_TOKEN="$DEMO_TELEGRAM_TOKEN" STEWARD_TELEGRAM_API_URL="$DEMO_TELEGRAM_URL"
	else
		bot="not used: STEWARD_TELEGRAM_BOT_TOKEN is set, so bot messages go to Telegram"
	fi
fi

demo=var/demo.env
tmp="$(mktemp var/.demo.env.XXXXXX)"
chmod 0600 "$tmp"
{
	echo "# Demo API keys created by scripts/run.sh at $stamp. Load with: . ./var/demo.env"
	echo "export STEWARD_URL=$url"
	echo "export FRONTEND_KEY='${keys[frontend]}'"
	echo "export SDK_KEY='${keys[sdk]}'"
	echo "export ADMIN_KEY='${keys[admin]}'"
	echo "export AUDITOR_KEY='${keys[auditor]}'"
	echo "export REVIEWER_KEY='${keys[reviewer]}'"
	if [ "$demo_on" = 1 ]; then
		echo "# The demo deployment: a web and a bot person to make requests for, and the peers Steward reaches."
		for name in DEMO_EMAIL DEMO_USER_ID DEMO_TG DEMO_APP_DATABASE_URL DEMO_STRIPE_URL DEMO_STRIPE_KEY \
			DEMO_CREEM_URL DEMO_CREEM_KEY DEMO_CREEM_WEBHOOK_SECRET DEMO_RESEND_URL DEMO_TELEGRAM_URL DEMO_OPTOUTS_URL; do
			printf 'export %s=%q\n' "$name" "${!name}"
		done
		printf 'export DEMO_S3_ENDPOINT=%q DEMO_S3_ACCESS_KEY=%q DEMO_S3_SECRET_KEY=%q DEMO_S3_BUCKET=media\n' \
			"$s3_url" "$s3_key" "$s3_secret"
	fi
} >"$tmp"
mv -f "$tmp" "$demo"

cat <<EOF

  Steward is starting on $url  (database: ${DATABASE_URL%%\?*})

  Demo API keys (also in ./var/demo.env):
    frontend  ${keys[frontend]}
    sdk       ${keys[sdk]}
    admin     ${keys[admin]}
    auditor   ${keys[auditor]}
    reviewer  ${keys[reviewer]}

  In another shell:
    . ./var/demo.env
    curl -s -H "Authorization: Bearer \$FRONTEND_KEY" \\
      "\$STEWARD_URL/v1/consent/check?subject=visitor:abc123def456&purpose=analytics&jurisdiction=US-CA"

  Then follow the walkthrough in README.md. Stop the server with Ctrl-C.

  Staff console: $console_url
    sign in as admin@demo.local with password $STEWARD_DEMO_ADMIN_PASSWORD
    (kept in ./var/secrets.env); the first sign-in enrols an authenticator app or a passkey.

EOF

if [ "$demo_on" = 1 ]; then
	cat <<EOF
  Demo deployment (values also in ./var/demo.env; logs under ./var/demo):
    application db   ${DEMO_APP_DATABASE_URL%%\?*}: schemas app (web) and bot, $DEMO_PEOPLE people each
    object store     $s3_url  bucket media, $DEMO_OBJECTS objects (versitygw; keys $s3_key / $s3_secret)
    Stripe fake      $DEMO_STRIPE_URL  (key $DEMO_STRIPE_KEY)
    Creem fake       $DEMO_CREEM_URL  (key $DEMO_CREEM_KEY, webhook secret $DEMO_CREEM_WEBHOOK_SECRET)
    Resend stand-in  $mail
    Telegram bot     $bot
    bot opt-outs     $DEMO_OPTOUTS_URL  (webhook receiver: consent.changed for broadcast -> bot.tg_broadcast_optouts)
    connectors       ./var/demo/connectors.yaml (app_db, bot_db, object_store, stripe, creem)

    demo web person  DEMO_EMAIL=$DEMO_EMAIL
    demo bot person  DEMO_TG=$DEMO_TG

  An access request for the demo web person, through every connector (docs/operations.md, "Demo deployment"):
    . ./var/demo.env
    curl -s -X POST "\$STEWARD_URL/v1/privacy-requests" -H "Authorization: Bearer \$REVIEWER_KEY" \\
      -H 'Content-Type: application/json' -d '{"type": "access", "subject": "email:'"\$DEMO_EMAIL"'",
        "region": "DE", "channel": "staff", "note": "demo", "identity_verified": true}'

  The demo bot person asks through the bot, and is answered there (see the Telegram stand-in's log):
    curl -s -X POST "\$STEWARD_URL/v1/privacy-requests" -H "Authorization: Bearer \$FRONTEND_KEY" \\
      -H 'Content-Type: application/json' -d '{"type": "access", "subject": "tg:'"\$DEMO_TG"'",
        "region": "DE", "channel": "bot", "identity_asserted": true, "language": "ru"}'

EOF
fi

# 6. Serve until Steward exits, or a demo process it relies on does, or
#    this script is stopped; cleanup then stops the rest.
bin/steward serve </dev/null &
steward_pid=$!
# The receiver's endpoint can only be registered through a running
# Steward; it is registered once and kept while its URL stays the same.
# Without it the demo still runs, only the bot's table is not kept in step.
if [ "$demo_on" = 1 ]; then
	STEWARD_DEMO_ADMIN_KEY="${keys[admin]}" bin/steward-demo webhook --steward-url "$url" \
		--receiver-url "$DEMO_OPTOUTS_URL" --secret-file "$optouts_secret" </dev/null >&2 ||
		log "WARNING: could not register the bot opt-out webhook; opt-outs will not reach bot.tg_broadcast_optouts"
fi
status=0
if [ ${#children[@]} -gt 0 ] && ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)); then
	wait -n "$steward_pid" "${children[@]}" || status=$?
	if [ "$status" -lt 128 ] && kill -0 "$steward_pid" 2>/dev/null; then
		log "a demo process exited (status $status); stopping Steward"
		status=1
	fi
else
	wait "$steward_pid" || status=$?
fi
exit "$status"
