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
#   3. Builds bin/steward and applies migrations.
#   4. Creates one demo API key per role (frontend, sdk, admin, auditor,
#      reviewer) and writes them to ./var/demo.env (mode 0600).
#   5. exec bin/steward serve on $STEWARD_ADDR (default 127.0.0.1:8080).
#
# Environment: DATABASE_URL, STEWARD_ADDR, STEWARD_LOG_LEVEL, and those read
# by scripts/ensure-postgres.sh (STEWARD_PG_PROBE_PORT, STEWARD_PG_DIR,
# STEWARD_PG_PORT).
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
for name in STEWARD_IDENTITY_KEYS STEWARD_RECEIPT_SIGNING_KEY STEWARD_AUDIT_SIGNING_KEY; do
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
log "building bin/steward"
go build -o bin/steward ./cmd/steward
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

EOF

# 5. Serve.
exec bin/steward serve
