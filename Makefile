# recon — two commands matter: `make run` and `make test`. See README.md.
SHELL := /bin/bash
GO    ?= go
SERVICES := deploy/local/services.sh
# RECON_FIXTURES: the public bank files the corpus test reads (never copied into the repository),
# by default the shared fixtures beside the checkout (else the workplace's /work/shared/fixtures).
# make test's integration run fails without them.
RECON_FIXTURES ?= $(firstword $(wildcard $(abspath ../shared/fixtures) /work/shared/fixtures) $(abspath ../shared/fixtures))
export RECON_FIXTURES

.PHONY: run test test-unit test-examples test-integration services-up services-down bench bench-state fuzz vet chaos

## run: the whole pipeline in one process on an embedded broker, with the shipped demo
run:
	$(GO) run ./cmd/recon run --demo

## test: unit tests, then real Kafka + ClickHouse (installed and started here) and the integration suite
test: vet test-unit test-examples test-integration

## vet: go vet, gofmt, staticcheck (its checks: staticcheck.conf) and a tidy go.mod, in both modules:
## the root and deploy/ (the deployment validators, whose Kubernetes and Prometheus dependencies
## stay out of recon's module)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
vet:
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...
	cd deploy && $(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff

test-unit:
	$(GO) test -count=1 -timeout 15m ./...
	cd deploy && $(GO) test -count=1 -timeout 5m ./...

## test-examples: the Python example producer (examples/python) against vectors Go writes and the
## JSON Schemas of schemas/json, in a virtualenv its setup.sh makes (pinned pytest and jsonschema
## from PyPI). Fails, never skips, without python3.
test-examples:
	examples/python/setup.sh
	cd examples/python && $${RECON_PY_VENV:-.venv}/bin/python -m pytest -q -p no:cacheprovider

test-integration:
	$(SERVICES) reset
	set -a; eval "$$($(SERVICES) env)"; set +a; \
	RECON_REQUIRE_SERVICES=1 $(GO) test -count=1 -p 1 -timeout 40m -run 'Integration' ./... ; rc=$$?; \
	$(SERVICES) down; exit $$rc

services-up:
	$(SERVICES) up

services-down:
	$(SERVICES) down

## bench: Go benchmarks of the hot paths, then `recon bench` on deploy/local's Kafka + ClickHouse:
## a throughput run (BENCH_ARGS, default 100,000 loans, 200,000 events, as fast as possible) and
## a latency run at 2,000 events/s. Each prints one JSON line last. It never fails on speed.
BENCH_ARGS ?=
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2x ./...
	$(SERVICES) up
	mkdir -p /tmp/recon-bench && $(GO) build -o /tmp/recon-bench/recon ./cmd/recon
	/tmp/recon-bench/recon bench --work-dir /tmp/recon-bench $(BENCH_ARGS)
	/tmp/recon-bench/recon bench --work-dir /tmp/recon-bench --loans 10000 --events 30000 --rate 2000 --no-baseline

## bench-state: `recon bench --state` on deploy/local's Kafka + ClickHouse: 1,000,000 loans (straight
## to the loans topic) and 2,100,000 events in two halves (≥ 2,000,000 journal entries), then the
## matcher killed and restarted, restarted with its stores deleted, and a second instance joining,
## each timed, with every component's memory. One JSON line last. BENCH_STATE_ARGS: e.g.
## --events 10000000 (the README's option), --loans 20000 --events 60000 (a quick look).
BENCH_STATE_ARGS ?=
bench-state:
	$(SERVICES) up
	mkdir -p /tmp/recon-bench && $(GO) build -o /tmp/recon-bench/recon ./cmd/recon
	/tmp/recon-bench/recon bench --state --work-dir /tmp/recon-bench $(BENCH_STATE_ARGS)

## chaos: the fault scenarios of docs/RELIABILITY.md on a Kafka and a ClickHouse of its own (other
## ports, /tmp/recon-chaos-<pid>; it kills and pauses them), then a table: scenario, fault evidence,
## result, recovery time. Exits non-zero on any safety violation. CHAOS_ARGS: -tier long (minutes-long
## outages, 100,000 transactions per workload), -seed N (replay), -only 1,2,5. The CI tier also runs
## in `make test` as TestIntegrationChaosCI.
CHAOS_ARGS ?=
chaos:
	$(GO) run ./chaos/cmd/chaos -repo . $(CHAOS_ARGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 60s ./ingest/iso20022/
