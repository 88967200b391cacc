// Package e2e holds recon's end-to-end tests: the real binary against a real
// Apache Kafka broker and a real ClickHouse server started by
// deploy/local/services.sh (make test-integration). Without
// RECON_KAFKA_BROKERS and RECON_CLICKHOUSE_ADDR the tests skip, unless
// RECON_REQUIRE_SERVICES=1 makes a missing service a failure.
package e2e
