# Steward: developer entry points. `make` (or `make help`) lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

export PATH := /usr/local/go/bin:$(PATH)

GO          ?= go
GOBIN_DIR   := $(shell $(GO) env GOPATH 2>/dev/null)/bin
# staticcheck v0.8.2 (2026.2.2), released 2026-10-12.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(GOBIN_DIR)/staticcheck
FUZZTIME    ?= 15s

# Tests create their databases on the server named by STEWARD_TEST_DATABASE_URL
# (see internal/db/dbtest). Honour it when set (after checking it answers);
# else find or start a local server (scripts/ensure-postgres.sh, which ignores
# the dev DATABASE_URL here) and pass its admin URL down.
TEST_PG_URL = if [ -n "$${STEWARD_TEST_DATABASE_URL:-}" ]; then \
		DATABASE_URL="$$STEWARD_TEST_DATABASE_URL" scripts/ensure-postgres.sh; \
	else env -u DATABASE_URL scripts/ensure-postgres.sh; fi

.PHONY: help build run test lint bench fuzz clean screenshots chaos

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make TARGET [VAR=value]\n\nTargets:\n"} \
		/^[a-zA-Z0-9_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@printf '\nVariables: FUZZTIME=%s  BENCH_SECONDS=10  STEWARD_TEST_DATABASE_URL, DATABASE_URL (optional)\n' '$(FUZZTIME)'

build: ## Build bin/steward and bin/steward-demo (the demo deployment make run starts)
	$(GO) build -o bin/steward ./cmd/steward
	$(GO) build -o bin/steward-demo ./cmd/steward-demo

run: ## Run Steward locally (PostgreSQL, secrets, demo keys; see scripts/run.sh)
	scripts/run.sh

test: ## Run all tests with -race against PostgreSQL (started if needed); installs missing peers
	@scripts/ensure-peers.sh
	@url="$$($(TEST_PG_URL))"; \
	echo "go test -race -count=1 -timeout 14m ./...  (PostgreSQL: $${url%%\?*})"; \
	STEWARD_TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 -timeout 14m ./...
	@# Allocation counts, which -race distorts (its sync.Pool drops items at random).
	$(GO) test -count=1 -run 'Allocat' ./internal/keyring ./internal/cowmap

CHAOS_KILLS ?= 60
CHAOS_REQUESTS ?= 60
CHAOS_SEED ?=
CHAOS_RUN ?= TestChaos|TestAbuse|TestDatabaseFaults|TestBehindTransactionPooler
# The abuse harness (TestAbuse*): every generated input, ABUSE_ROUNDS times, reshuffled; ABUSE_SEED reproduces a run.
ABUSE_ROUNDS ?= 10
ABUSE_SEED ?=

chaos: ## Longer reliability harness: CHAOS_KILLS (60) SIGKILLs over CHAOS_REQUESTS (60) requests, ABUSE_ROUNDS (10) of the fuzzer, database faults, the pooler; CHAOS_SEED/ABUSE_SEED replay
	@scripts/ensure-peers.sh
	@url="$$($(TEST_PG_URL))"; \
	echo "go test -race -count=1 -run '$(CHAOS_RUN)' ./cmd/steward/  (kills $(CHAOS_KILLS), requests $(CHAOS_REQUESTS), seed $(if $(CHAOS_SEED),$(CHAOS_SEED),random))"; \
	STEWARD_TEST_DATABASE_URL="$$url" STEWARD_CHAOS_KILLS=$(CHAOS_KILLS) STEWARD_CHAOS_REQUESTS=$(CHAOS_REQUESTS) STEWARD_CHAOS_SEED=$(CHAOS_SEED) \
		STEWARD_ABUSE_ROUNDS=$(ABUSE_ROUNDS) STEWARD_ABUSE_SEED=$(ABUSE_SEED) \
		$(GO) test -race -count=1 -timeout 30m -v -run '$(CHAOS_RUN)' ./cmd/steward/

screenshots: ## Re-take the pages' screenshots into docs/screenshots (Chromium tests)
	@scripts/ensure-peers.sh
	@url="$$($(TEST_PG_URL))"; \
	STEWARD_TEST_DATABASE_URL="$$url" STEWARD_SCREENSHOTS="$(CURDIR)/docs/screenshots" $(GO) test -count=1 -run 'TestPrivacyCenter|TestSDK|TestConsole' -skip 'EveryPageEveryLanguage' ./cmd/steward/ ./internal/sdk/...

lint: ## gofmt (must list nothing), go vet and staticcheck
	@files="$$(find . \( -path ./var -o -path ./bin -o -path ./.git -o -path ./tmp -o -name node_modules \) -prune \
		-o -name '*.go' -type f -print | xargs -r gofmt -l)"; \
	if [ -n "$$files" ]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	@if ! "$(STATICCHECK)" -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))'; then \
		echo "installing staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR)"; \
		GOFLAGS= GOBIN="$(GOBIN_DIR)" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi
	$(STATICCHECK) ./...

bench: ## Consent-check load test (scripts/bench.sh), then Go benchmarks
	@scripts/ensure-peers.sh
	scripts/bench.sh
	@url="$$($(TEST_PG_URL))"; \
	STEWARD_TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

fuzz: ## Run every Fuzz* target for FUZZTIME each (default 15s)
	@scripts/ensure-peers.sh
	@url="$$($(TEST_PG_URL))"; export STEWARD_TEST_DATABASE_URL="$$url"; \
	targets="$$($(GO) test -list '^Fuzz' ./... | \
		awk '/^Fuzz/ {names = names " " $$1; next} /^ok[ \t]/ {if (names != "") print $$2 names; names = ""}')"; \
	if [ -z "$$targets" ]; then echo "no Fuzz targets found"; exit 0; fi; \
	while read -r pkg names; do \
		for name in $$names; do \
			echo "==> $$pkg $$name for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done <<< "$$targets"

clean: ## Remove build output and bench results (keeps var/secrets.env and var/pg)
	rm -rf bin var/bench
