# recon — two commands matter: `make run` and `make test`. See README.md.
SHELL := /bin/bash
GO    ?= go
SERVICES := deploy/local/services.sh

.PHONY: run test test-unit test-integration services-up services-down bench fuzz vet

## run: the whole pipeline in one process on an embedded broker, with the shipped demo
run:
	$(GO) run ./cmd/recon run --demo

## test: unit tests, then real Kafka + ClickHouse (installed and started here) and the integration suite
test: vet test-unit test-integration

vet:
	$(GO) vet ./...

test-unit:
	$(GO) test -count=1 -timeout 15m ./...

test-integration:
	$(SERVICES) reset
	set -a; eval "$$($(SERVICES) env)"; set +a; \
	RECON_REQUIRE_SERVICES=1 $(GO) test -count=1 -p 1 -timeout 40m -run 'Integration' ./... ; rc=$$?; \
	$(SERVICES) down; exit $$rc

services-up:
	$(SERVICES) up

services-down:
	$(SERVICES) down

## bench: Go benchmarks of the hot paths (numbers go in README's BENCHMARKS)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2x ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 60s ./ingest/iso20022/
