#!/usr/bin/env bash
# ensure-peers.sh: install what the tests talk to, when it is missing, so that
# `make test` is the whole set-up on a fresh machine (Go and PostgreSQL's
# binaries are all it assumes). Idempotent and quick when everything is there.
#
#   stripe-mock  Stripe's API simulator (go install, ~2 min once)
#   versitygw    an S3 server (go install, ~4 min once)
#   unzip        an independent ZIP reader for the export packages (apt)
#   chromium     the browser the page tests drive (apt, ~90 s once)
#   pgbouncer    the transaction pooler the pooler tests start (apt; Debian's
#                /usr/sbin, which internal/testpeer also searches)
#   axe-core     the WCAG checker the page tests inject (npm, into
#                $(go env GOPATH)/share/axe-core, where internal/browsertest
#                looks)
#
# Go tools go to $(go env GOPATH)/bin, which internal/testpeer searches even
# when it is not on PATH. Prints what it installs on stderr; nothing else.
# Pinned versions: the module proxy here refuses versions published in the
# last few weeks, and the tests are written against these.
set -euo pipefail

log() { printf 'ensure-peers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found (expected on PATH or in /usr/local/go/bin)"
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"

STRIPE_MOCK_MODULE=github.com/stripe/stripe-mock@v0.203.0
VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw@v1.8.0
AXE_CORE_VERSION=4.13.0
axedir="$(go env GOPATH | cut -d: -f1)/share/axe-core"

# have NAME: on PATH or in GOBIN.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$gobin/$1" ]; }

# go_tool NAME MODULE@VERSION: go install unless present.
go_tool() {
	have "$1" && return 0
	log "installing $1 ($2) into $gobin; once per machine"
	GOFLAGS='' GOBIN="$gobin" go install "$2" || die "go install $2 failed"
	[ -x "$gobin/$1" ] || die "$1 still missing after go install $2"
}

# as_root CMD...: run CMD as root (directly, or with sudo -n).
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root to run: $* (or install the package yourself)"
	fi
}

apt_updated=0
# apt_tool NAME PACKAGE...: apt-get install unless NAME is on PATH.
apt_tool() {
	local name="$1"
	shift
	type -P "$name" >/dev/null 2>&1 && return 0
	command -v apt-get >/dev/null 2>&1 || die "$name is missing and this machine has no apt-get: install $* yourself"
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		as_root apt-get update -qq >&2
		apt_updated=1
	fi
	log "installing $* (apt)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
	type -P "$name" >/dev/null 2>&1 || die "$name still missing after apt-get install $*"
}

# axe_core: npm install the pinned axe-core unless it is there.
axe_core() {
	local have_version=""
	if [ -f "$axedir/node_modules/axe-core/package.json" ]; then
		have_version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$axedir/node_modules/axe-core/package.json" | head -1)"
	fi
	[ "$have_version" = "$AXE_CORE_VERSION" ] && return 0
	apt_tool npm npm
	log "installing axe-core@$AXE_CORE_VERSION (npm) into $axedir"
	mkdir -p "$axedir"
	npm install --no-save --no-audit --no-fund --silent --prefix "$axedir" "axe-core@$AXE_CORE_VERSION" >&2 ||
		die "npm install axe-core@$AXE_CORE_VERSION failed"
	[ -f "$axedir/node_modules/axe-core/axe.min.js" ] || die "axe.min.js missing after npm install"
}

# ensure_chromium: Debian's package (any of the names internal/browsertest
# tries). type -P looks for executables only: a shell function of the same
# name must not count as the browser.
ensure_chromium() {
	type -P chromium >/dev/null 2>&1 || type -P chromium-browser >/dev/null 2>&1 ||
		type -P google-chrome >/dev/null 2>&1 || apt_tool chromium chromium
}

# ensure_pgbouncer: Debian's package (1.18 in bookworm). It lands in
# /usr/sbin, often not on a user's PATH, so that is looked at too.
ensure_pgbouncer() {
	type -P pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || apt_tool pgbouncer pgbouncer
}

case "${1:-all}" in
all)
	# The two go installs compile at once: together they take about as
	# long as the larger alone on two cores.
	pids=()
	if ! have stripe-mock; then go_tool stripe-mock "$STRIPE_MOCK_MODULE" & pids+=($!); fi
	if ! have versitygw; then go_tool versitygw "$VERSITYGW_MODULE" & pids+=($!); fi
	apt_tool unzip unzip
	ensure_chromium
	ensure_pgbouncer
	axe_core
	for p in "${pids[@]}"; do wait "$p" || exit 1; done
	;;
versitygw) go_tool versitygw "$VERSITYGW_MODULE" ;;
stripe-mock) go_tool stripe-mock "$STRIPE_MOCK_MODULE" ;;
chromium) ensure_chromium ;;
pgbouncer) ensure_pgbouncer ;;
axe-core) axe_core ;;
*) die "usage: $0 [all|versitygw|stripe-mock|chromium|pgbouncer|axe-core]" ;;
esac
