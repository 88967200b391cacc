#!/usr/bin/env bash
# deploy/local/services.sh: the real services recon's integration tests and demos use, on
# loopback: Apache Kafka (KRaft, one node, 127.0.0.1:19092) and ClickHouse (127.0.0.1:19000),
# Debian's chromium for the console's browser test (chromium.sh) and xmllint for collect's
# schema test (xmllint.sh).
#
#   services.sh up      install what is missing, start both, wait until they answer (idempotent)
#   services.sh down    stop both (only the processes these scripts started)
#   services.sh reset   down, wipe their data, up: a clean slate for a test run
#   services.sh env     print the environment that points recon at them
#
# Installs need root on Debian (apt for ClickHouse, chromium and xmllint, Maven Central via mvn
# for Kafka).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICES_DIR="${RECON_SERVICES_DIR:-/tmp/recon-services}"

case "${1:-}" in
up)
	"$HERE/kafka.sh" start
	"$HERE/clickhouse.sh" start
	"$HERE/chromium.sh" install || echo "services.sh: chromium is missing; the console's browser test will fail" >&2
	"$HERE/xmllint.sh" install || echo "services.sh: xmllint is missing; collect's schema test will fail" >&2
	;;
down)
	"$HERE/kafka.sh" stop || true
	"$HERE/clickhouse.sh" stop || true
	;;
reset)
	"$HERE/kafka.sh" stop || true
	"$HERE/clickhouse.sh" stop || true
	rm -rf "$SERVICES_DIR/kafka" "$SERVICES_DIR/clickhouse"
	"$HERE/kafka.sh" start
	"$HERE/clickhouse.sh" start
	"$HERE/chromium.sh" install || echo "services.sh: chromium is missing; the console's browser test will fail" >&2
	"$HERE/xmllint.sh" install || echo "services.sh: xmllint is missing; collect's schema test will fail" >&2
	;;
env)
	"$HERE/kafka.sh" env
	"$HERE/clickhouse.sh" env
	"$HERE/chromium.sh" env
	;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
