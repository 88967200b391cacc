package analytics

// Views for data teams. Every view reads base tables with FINAL and
// aggregates at query time, so it sees each stored row once: the sink writes
// each Kafka record once, and FINAL collapses anything that slipped through
// (two sink instances overlapping after a lost group session). No
// materialized view: a materialized view counts every INSERT it sees,
// duplicates included, before any merge.
//
// Money is posted money: cash views read posted match decisions, one per
// transaction_id. Dates fall back to the decision's or booking's date when a
// record has none.

// postedDecisions is one row per transaction with a posted decision.
const postedDecisions = `
    SELECT transaction_id,
           any(loan_id) AS p_loan_id,
           any(amount) AS p_amount,
           any(currency) AS p_currency,
           any(direction) AS p_direction,
           any(ifNull(booking_date, toDate(decided_at))) AS p_day
    FROM {db}.matches FINAL
    WHERE outcome = 'posted'
    GROUP BY transaction_id`

// bookedTransactions is one row per booked bank transaction id, whatever the
// number of sightings.
const bookedTransactions = `
    SELECT id,
           any(direction) AS t_direction,
           any(mandate_id) AS t_mandate_id,
           max(reversal) AS t_reversal,
           any(return_reason) AS t_return_reason,
           any(amount) AS t_amount,
           any(currency) AS t_currency
    FROM {db}.bank_transactions FINAL
    WHERE status = 'booked'
    GROUP BY id`

// principalDeltas is the daily net change of loan principal receivables
// (accounts "loan:<id>:principal", debit-normal), per currency.
const principalDeltas = `
    SELECT currency AS d_currency,
           ifNull(effective_date, toDate(booked_at)) AS d_day,
           sum(if(side = 'debit', amount, -amount)) AS d_delta
    FROM {db}.ledger_postings FINAL
    WHERE match(account, '^loan:[^:]+:principal$')
    GROUP BY d_currency, d_day`

// statementBreaksV3 is statement_breaks from migration 3 on: a statement
// whose own arithmetic fails, or whose latest proof against the ledger is a
// break or incomplete, or that does not chain on from the previous one.
// The latest status of a break id is its last record (one account's breaks
// share a partition, so offsets order them).
const statementBreaksV3 = `
SELECT id, account_iban, source, message_id, from_date, to_date, currency,
       opening_balance, closing_balance, booked_credits, booked_debits,
       balance_check,
       closing_balance - opening_balance - booked_credits + booked_debits AS difference,
       proof_status, proof_ledger, proof_difference, proof_reason,
       chain_status, chain_difference
FROM (
    SELECT * FROM {db}.statements FINAL
) ANY LEFT JOIN (
    SELECT statement_id AS id,
           argMaxIf(status, kafka_offset, type = 'proof') AS proof_status,
           argMaxIf(ledger, kafka_offset, type = 'proof') AS proof_ledger,
           argMaxIf(difference, kafka_offset, type = 'proof') AS proof_difference,
           argMaxIf(reason, kafka_offset, type = 'proof') AS proof_reason,
           argMaxIf(status, kafka_offset, type = 'chain') AS chain_status,
           argMaxIf(difference, kafka_offset, type = 'chain') AS chain_difference
    FROM {db}.breaks FINAL
    GROUP BY statement_id
) USING id
WHERE balance_check = 'mismatch'
   OR (closing_balance - opening_balance - booked_credits + booked_debits) != 0
   OR proof_status IN ('break', 'incomplete')
   OR chain_status = 'break'`

func viewStatements() []string {
	views := []struct{ name, query string }{
		{"cash_collected_daily", `
SELECT p_day AS day,
       p_currency AS currency,
       sumIf(p_amount, p_direction = 'credit') AS collected,
       sumIf(p_amount, p_direction = 'debit') AS returned,
       collected - returned AS net,
       countIf(p_direction = 'credit') AS payments,
       countIf(p_direction = 'debit') AS returns
FROM (` + postedDecisions + `)
GROUP BY day, currency`},
		{"cash_collected_by_loan", `
SELECT p_loan_id AS loan_id,
       p_day AS day,
       p_currency AS currency,
       sumIf(p_amount, p_direction = 'credit') AS collected,
       sumIf(p_amount, p_direction = 'debit') AS returned,
       collected - returned AS net,
       countIf(p_direction = 'credit') AS payments
FROM (` + postedDecisions + `)
GROUP BY loan_id, day, currency`},
		{"match_rate_by_rule", `
SELECT rule,
       count() AS decisions,
       countIf(outcome = 'posted') AS posted,
       countIf(outcome = 'suspense') AS suspense,
       countIf(outcome = 'rejected') AS rejected,
       posted / decisions AS match_rate,
       countIf(outcome = 'posted' AND first_seen > toDateTime(0)) AS timed,
       avgIf(toInt64(decided_at) - toInt64(first_seen), outcome = 'posted' AND first_seen > toDateTime(0)) AS avg_seconds_to_match,
       maxIf(toInt64(decided_at) - toInt64(first_seen), outcome = 'posted' AND first_seen > toDateTime(0)) AS max_seconds_to_match
FROM (
    SELECT transaction_id, rule, outcome, decided_at
    FROM {db}.matches FINAL
    WHERE outcome != 'duplicate'
) ANY LEFT JOIN (
    SELECT id AS transaction_id, min(kafka_timestamp) AS first_seen
    FROM {db}.bank_transactions FINAL
    GROUP BY transaction_id
) USING transaction_id
GROUP BY rule`},
		{"suspense_open", `
SELECT transaction_id,
       anyIf(amount, outcome = 'suspense') AS amount,
       anyIf(currency, outcome = 'suspense') AS currency,
       anyIf(direction, outcome = 'suspense') AS direction,
       minIf(ifNull(booking_date, toDate(decided_at)), outcome = 'suspense') AS booking_date,
       minIf(decided_at, outcome = 'suspense') AS parked_at
FROM {db}.matches FINAL
WHERE outcome IN ('suspense', 'posted', 'rejected')
GROUP BY transaction_id
HAVING countIf(outcome = 'suspense') > 0 AND countIf(outcome IN ('posted', 'rejected')) = 0`},
		{"suspense_ageing", `
SELECT multiIf(age_days <= 1, '0-1d', age_days <= 7, '2-7d', age_days <= 30, '8-30d', '31d+') AS age_bucket,
       currency,
       count() AS transactions,
       sum(amount) AS amount,
       max(age_days) AS oldest_days
FROM (
    SELECT currency, amount, today() - booking_date AS age_days
    FROM {db}.suspense_open
)
GROUP BY age_bucket, currency`},
		{"dd_return_rate_by_reason", `
SELECT t_return_reason AS return_reason,
       t_currency AS currency,
       count() AS returns,
       sum(t_amount) AS returned_amount,
       any(c_collections) AS collections,
       if(collections = 0, 0, returns / collections) AS return_rate
FROM (` + bookedTransactions + `
) ANY LEFT JOIN (
    SELECT t_currency, count() AS c_collections
    FROM (` + bookedTransactions + `)
    WHERE t_mandate_id != '' AND t_direction = 'credit' AND t_reversal = 0 AND t_return_reason = ''
    GROUP BY t_currency
) USING t_currency
WHERE t_return_reason != '' AND (t_reversal = 1 OR t_direction = 'debit')
GROUP BY return_reason, currency`},
		{"statement_breaks", `
SELECT id, account_iban, source, message_id, from_date, to_date, currency,
       opening_balance, closing_balance, booked_credits, booked_debits,
       balance_check,
       closing_balance - opening_balance - booked_credits + booked_debits AS difference
FROM {db}.statements FINAL
WHERE balance_check = 'mismatch'
   OR (closing_balance - opening_balance - booked_credits + booked_debits) != 0`},
		{"portfolio_outstanding_daily", `
SELECT d_currency AS currency, day, sum(d_delta) AS outstanding
FROM (
    SELECT d_currency, d_day, d_delta, days
    FROM (` + principalDeltas + `
    ) ANY LEFT JOIN (
        SELECT d_currency, groupUniqArray(d_day) AS days
        FROM (` + principalDeltas + `)
        GROUP BY d_currency
    ) USING d_currency
) ARRAY JOIN days AS day
WHERE day >= d_day
GROUP BY currency, day`},
		{"loan_outstanding", `
SELECT splitByChar(':', account)[2] AS loan_id,
       currency,
       sum(if(side = 'debit', amount, -amount)) AS outstanding
FROM {db}.ledger_postings FINAL
WHERE match(account, '^loan:[^:]+:principal$')
GROUP BY loan_id, currency`},
	}
	var out []string
	// Drop in reverse order: suspense_ageing reads suspense_open.
	for i := len(views) - 1; i >= 0; i-- {
		out = append(out, "DROP TABLE IF EXISTS {db}."+views[i].name)
	}
	for _, v := range views {
		out = append(out, "CREATE VIEW {db}."+v.name+" AS"+v.query)
	}
	return out
}

// ViewNames lists the data-team views Migrate creates.
var ViewNames = []string{"cash_collected_daily", "cash_collected_by_loan", "match_rate_by_rule",
	"suspense_open", "suspense_ageing", "dd_return_rate_by_reason", "statement_breaks",
	"portfolio_outstanding_daily", "loan_outstanding"}
