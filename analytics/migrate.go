package analytics

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migration is one versioned step of the analytics schema. Statements use
// {db} for the database name. Every statement is idempotent (IF NOT EXISTS,
// or DROP then CREATE for views), so a migration interrupted half-way, or run
// by two instances at once, is simply run again.
//
// The SQL is the subset ClickHouse 18.16 (Debian 12's package) and 24.x–26.x
// both accept: no DateTime64, LowCardinality, window functions, CTEs or
// arrayCumSum over Decimal; ReplacingMergeTree without a version column.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
}

// kafkaDDL is the source columns every base table ends with.
const kafkaDDL = `
    kafka_topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    kafka_timestamp DateTime,
    inserted_at DateTime DEFAULT now()`

// Migrations is the schema, oldest first. Append; never edit a released one.
var Migrations = []Migration{
	{Version: 1, Name: "base tables", Statements: []string{
		`CREATE TABLE IF NOT EXISTS {db}.bank_transactions (
    id String,
    producer_id String,
    source String,
    message_id String,
    account_iban String,
    virtual_iban String,
    direction String,
    amount Decimal(38, 5),
    currency String,
    status String,
    booking_date Nullable(Date),
    value_date Nullable(Date),
    end_to_end_id String,
    transaction_id String,
    mandate_id String,
    creditor_reference String,
    remittance_info String,
    bank_reference String,
    entry_reference String,
    entry_amount Nullable(Decimal(38, 5)),
    counterparty_name String,
    counterparty_iban String,
    counterparty_bic String,
    bank_tx_code String,
    reversal UInt8,
    return_reason String,
    instructed_amount Nullable(Decimal(38, 5)),
    instructed_currency String,
    charges_amount Nullable(Decimal(38, 5)),
    charges_currency String,
    remainder UInt8,
    is_charge UInt8,` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (id, kafka_topic, kafka_partition, kafka_offset)`,
		`CREATE TABLE IF NOT EXISTS {db}.matches (
    transaction_id String,
    outcome String,
    loan_id String,
    rule String,
    confidence Decimal(38, 5),
    evidence String,
    reason String,
    amount Decimal(38, 5),
    currency String,
    direction String,
    booking_date Nullable(Date),
    decided_at DateTime,
    entry_ids Array(String),` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (transaction_id, kafka_topic, kafka_partition, kafka_offset)`,
		`CREATE TABLE IF NOT EXISTS {db}.ledger_postings (
    entry_id String,
    entry_kind String,
    loan_id String,
    transaction_id String,
    effective_date Nullable(Date),
    booked_at DateTime,
    note String,
    sequence Int64,
    prev_hash String,
    hash String,
    posting_index UInt16,
    account String,
    side String,
    amount Decimal(38, 5),
    currency String,` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (entry_id, posting_index)`,
		`CREATE TABLE IF NOT EXISTS {db}.statements (
    id String,
    source String,
    message_id String,
    account_iban String,
    sequence_number String,
    legal_sequence_number String,
    created_at String,
    from_date Nullable(Date),
    to_date Nullable(Date),
    currency String,
    opening_balance Nullable(Decimal(38, 5)),
    closing_balance Nullable(Decimal(38, 5)),
    closing_date Nullable(Date),
    booked_entries UInt32,
    booked_credits Decimal(38, 5),
    booked_debits Decimal(38, 5),
    balance_check String,` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (id)`,
		`CREATE TABLE IF NOT EXISTS {db}.alerts (
    id String,
    rule String,
    kind String,
    state String,
    subject String,
    value Decimal(38, 5),
    threshold Decimal(38, 5),
    currency String,
    at DateTime,
    message String,` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (id, kafka_topic, kafka_partition, kafka_offset)`,
		`CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    origin String,
    id String,
    source String,
    location String,
    reason String,
    raw String,
    at DateTime,` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (kafka_topic, kafka_partition, kafka_offset)`,
		`CREATE TABLE IF NOT EXISTS {db}.sink_offsets (
    kafka_topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    committed_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree ORDER BY (kafka_topic, kafka_partition, kafka_offset)`,
	}},
	{Version: 2, Name: "data-team views", Statements: viewStatements()},
	{Version: 3, Name: "statement proofs", Statements: []string{
		`CREATE TABLE IF NOT EXISTS {db}.breaks (
    id String,
    type String,
    statement_id String,
    previous_statement_id String,
    account_iban String,
    date Nullable(Date),
    currency String,
    expected Decimal(38, 5),
    ledger Decimal(38, 5),
    difference Decimal(38, 5),
    status String,
    reason String,
    transactions UInt32,
    missing UInt32,
    at DateTime,` + kafkaDDL + `
) ENGINE = ReplacingMergeTree ORDER BY (id, kafka_topic, kafka_partition, kafka_offset)`,
		"DROP TABLE IF EXISTS {db}.statement_breaks",
		"CREATE VIEW {db}.statement_breaks AS" + statementBreaksV3,
	}},
	{Version: 4, Name: "borrowers", Statements: []string{
		"ALTER TABLE {db}.ledger_postings ADD COLUMN borrower_id String DEFAULT '' AFTER loan_id",
	}},
}

var dbNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Migrate brings database up to the newest migration: it creates the
// database and schema_migrations if missing, then runs, in order, every
// migration not yet recorded there. Running it again does nothing.
func Migrate(ctx context.Context, conn driver.Conn, database string) error {
	if !dbNameRE.MatchString(database) {
		return fmt.Errorf("analytics: database name %q must match %s", database, dbNameRE)
	}
	for _, q := range []string{
		`CREATE DATABASE IF NOT EXISTS {db}`,
		`CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree ORDER BY version`,
	} {
		if err := conn.Exec(ctx, expand(q, database)); err != nil {
			return fmt.Errorf("analytics: migrate %s: %w", database, err)
		}
	}
	applied := map[uint32]bool{}
	rows, err := conn.Query(ctx, expand(`SELECT DISTINCT version FROM {db}.schema_migrations`, database))
	if err != nil {
		return fmt.Errorf("analytics: read %s.schema_migrations: %w", database, err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("analytics: read %s.schema_migrations: %w", database, err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: read %s.schema_migrations: %w", database, err)
	}
	for _, m := range Migrations {
		if applied[m.Version] {
			continue
		}
		for i, q := range m.Statements {
			if err := conn.Exec(ctx, expand(q, database)); err != nil {
				return fmt.Errorf("analytics: migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		// INSERT … SELECT, not VALUES: over the native protocol an INSERT
		// with VALUES waits for a data block on 18.16.
		if err := conn.Exec(ctx, expand(`INSERT INTO {db}.schema_migrations (version, name) SELECT ?, ?`, database), m.Version, m.Name); err != nil {
			return fmt.Errorf("analytics: record migration %d: %w", m.Version, err)
		}
	}
	return nil
}

func expand(q, database string) string { return strings.ReplaceAll(q, "{db}", database) }
