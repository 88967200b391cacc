// Package chaos proves recon's safety under faults: a seeded generator
// writes a workload and what must come of it, an independent checker reads
// the ledger (API and Kafka, read committed), ClickHouse and the dead
// letters and reports every missing or duplicate posting, unbalanced entry,
// ClickHouse/ledger difference and unaccounted input, and the scenario
// runner injects the faults of docs/RELIABILITY.md against the real recon
// binary on Kafka and ClickHouse instances of its own, printing one table
// row per scenario (fault evidence, result, recovery time).
package chaos
