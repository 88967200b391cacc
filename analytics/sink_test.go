package analytics

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// fixture is a small day of recon's life with known analytics.
type fixture struct {
	t0    time.Time
	today time.Time
	recs  []*kgo.Record
}

func newFixture() fixture {
	t0 := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	suspenseDay := today.AddDate(0, 0, -10).Format(time.DateOnly)
	f := fixture{t0: t0, today: today}
	add := func(topic, key string, at time.Time, value string) {
		f.recs = append(f.recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value), Timestamp: at})
	}
	bt, mt, le := schemas.TopicBankTransactions, schemas.TopicMatches, schemas.TopicLedgerEntries
	txn := func(id, src, dir, amount, day, extra string) string {
		return fmt.Sprintf(`{"type":"transaction","id":%q,"source":%q,"account_iban":"DE89370400440532013000","direction":%q,"amount":%q,"currency":"EUR","status":"booked","booking_date":%q%s}`, id, src, dir, amount, day, extra)
	}
	add(bt, "T1", t0, txn("T1", "webhook", "credit", "100.00", "2024-03-01", `,"virtual_iban":"DE02100100100000000001"`))
	add(bt, "T1", t0.Add(time.Hour), txn("T1", "camt.054", "credit", "100.00", "2024-03-01", `,"virtual_iban":"DE02100100100000000001"`))
	add(bt, "T2", t0, txn("T2", "camt.054", "credit", "50.00", "2024-03-01", `,"mandate_id":"M2"`))
	add(bt, "T3", t0, txn("T3", "webhook", "credit", "25.50", suspenseDay, ""))
	add(bt, "T4", t0, txn("T4", "camt.054", "debit", "50.00", "2024-03-05", `,"mandate_id":"M2","reversal":true,"return_reason":"AM04"`))
	add(bt, "T5", t0, txn("T5", "camt.054", "credit", "10.00", "2024-03-06", `,"mandate_id":"M5"`))
	add(bt, "R1", t0, `{"type":"return","id":"R1","source":"pacs.004","message_id":"m","returned_amount":"50.00","currency":"EUR"}`)
	add(bt, "X", t0, `{not json`)

	dec := func(id, outcome, loan, rule, dir, amount, day string, at time.Time) string {
		return fmt.Sprintf(`{"transaction_id":%q,"outcome":%q,"loan_id":%q,"rule":%q,"confidence":"1","amount":%q,"currency":"EUR","direction":%q,"booking_date":%q,"decided_at":%q}`,
			id, outcome, loan, rule, amount, dir, day, at.Format(time.RFC3339Nano))
	}
	add(mt, "T1", t0, dec("T1", "posted", "L1", "virtual_iban", "credit", "100.00", "2024-03-01", t0.Add(30*time.Second)))
	add(mt, "T1", t0, dec("T1", "duplicate", "L1", "identity", "credit", "100.00", "2024-03-01", t0.Add(time.Hour)))
	add(mt, "T2", t0, dec("T2", "posted", "L2", "mandate", "credit", "50.00", "2024-03-01", t0.Add(90*time.Second)))
	add(mt, "T3", t0, dec("T3", "suspense", "", "none", "credit", "25.50", suspenseDay, t0.Add(10*time.Second)))
	add(mt, "T4", t0, dec("T4", "posted", "L2", "mandate", "debit", "50.00", "2024-03-05", t0.Add(30*time.Second)))
	add(mt, "T5", t0, dec("T5", "posted", "L2", "mandate", "credit", "10.00", "2024-03-06", t0.Add(60*time.Second)))

	entry := func(id, kind, loan, day string, seq int, amount, debit, credit string) string {
		return fmt.Sprintf(`{"id":%q,"kind":%q,"loan_id":%q,"effective_date":%q,"booked_at":%q,"sequence":%d,"prev_hash":"p","hash":"h","postings":[{"account":%q,"side":"debit","amount":%q,"currency":"EUR"},{"account":%q,"side":"credit","amount":%q,"currency":"EUR"}]}`,
			id, kind, loan, day, t0.Format(time.RFC3339), seq, debit, amount, credit, amount)
	}
	add(le, "L1", t0, entry("E1", "disbursement", "L1", "2024-02-01", 1, "1000.00", "loan:L1:principal", "cash:bank"))
	add(le, "L2", t0, entry("E2", "disbursement", "L2", "2024-02-01", 1, "500.00", "loan:L2:principal", "cash:bank"))
	add(le, "L1", t0, entry("E3", "repayment", "L1", "2024-03-01", 2, "100.00", "cash:bank", "loan:L1:principal"))
	add(le, "L2", t0, entry("E4", "repayment", "L2", "2024-03-01", 2, "50.00", "cash:bank", "loan:L2:principal"))
	add(le, "L2", t0, entry("E5", "return", "L2", "2024-03-05", 3, "50.00", "loan:L2:principal", "cash:bank"))

	add(schemas.TopicStatements, "DE89", t0, `{"type":"statement","id":"S1","source":"camt.053","message_id":"m1","account_iban":"DE89","currency":"EUR","opening_balance":"0","closing_balance":"150","booked_entries":2,"booked_credits":"150","booked_debits":"0","balance_check":"ok"}`)
	add(schemas.TopicStatements, "DE89", t0, `{"type":"statement","id":"S2","source":"camt.053","message_id":"m2","account_iban":"DE89","currency":"EUR","opening_balance":"150","closing_balance":"250","booked_entries":1,"booked_credits":"90","booked_debits":"0","balance_check":"mismatch"}`)
	add(schemas.TopicAlerts, "A1", t0, `{"id":"A1","rule":"suspense_amount","kind":"threshold","state":"firing","subject":"EUR","value":"25.5","threshold":"20","currency":"EUR","at":"2024-03-01T10:00:00Z","message":"suspense above 20 EUR"}`)
	add(schemas.TopicDeadLetters, "D1", t0, `{"id":"D1","source":"ingest","where":"file.xml:/Document","reason":"bad XML","raw":"PHg+","at":"2024-03-01T10:00:00Z"}`)
	return f
}

// kafka starts an in-process broker and produces recs, returning the broker
// addresses and the last offset of every partition written.
func kafka(t *testing.T, recs []*kgo.Record) ([]string, map[partition]int64) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, Topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	last := map[partition]int64{}
	results := cl.ProduceSync(context.Background(), recs...)
	for _, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		p := partition{r.Record.Topic, r.Record.Partition}
		last[p] = max(last[p], r.Record.Offset)
	}
	return cluster.ListenAddrs(), last
}

// runUntil runs a sink until it has committed last (or crashed) and returns
// Run's error.
func runUntil(t *testing.T, s *Sink, last map[partition]int64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	caughtUp := make(chan struct{})
	s.onCommit = func(c map[partition]int64) {
		for p, o := range last {
			if got, ok := c[p]; !ok || got < o {
				return
			}
		}
		select {
		case <-caughtUp:
		default:
			close(caughtUp)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-caughtUp:
		cancel()
		return <-errc
	case err := <-errc:
		if ctx.Err() != nil {
			t.Fatal("sink did not catch up before the timeout")
		}
		return err
	}
}

func newSink(t *testing.T, db string, brokers []string, group string) *Sink {
	t.Helper()
	s, err := New(Config{Addr: clickhouseAddr(), Database: db, Brokers: brokers, Group: group,
		BatchRows: 7, FlushInterval: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIntegrationSinkExactlyOnceAcrossCrash(t *testing.T) {
	conn, db := clickhouseConn(t)
	f := newFixture()
	brokers, last := kafka(t, f.recs)

	// First run "crashes" right after its first ledger_postings INSERT,
	// before sink_offsets records the batch.
	s := newSink(t, db, brokers, "g1")
	crash := errors.New("crash after insert")
	s.afterInsert = func(table string, rows int) error {
		if table == "ledger_postings" && rows > 0 {
			return crash
		}
		return nil
	}
	if err := runUntil(t, s, last); !errors.Is(err, crash) {
		t.Fatalf("first run: got %v, want the injected crash", err)
	}
	crashed := count(t, conn, "SELECT count() FROM "+db+".ledger_postings")
	if crashed == 0 {
		t.Fatal("the crash left no rows behind; the test proves nothing")
	}
	t.Logf("crash left %d postings, %d rows in sink_offsets", crashed, count(t, conn, "SELECT count() FROM "+db+".sink_offsets"))
	// A new sink resumes from what ClickHouse has.
	if err := runUntil(t, newSink(t, db, brokers, "g2"), last); err != nil {
		t.Fatal(err)
	}
	checkFixture(t, conn, db, f)

	// Lose all progress records: the sink re-reads everything and must
	// still write nothing twice.
	ctx := context.Background()
	if err := conn.Exec(ctx, "TRUNCATE TABLE "+db+".sink_offsets"); err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, newSink(t, db, brokers, "g3"), last); err != nil {
		t.Fatal(err)
	}
	checkFixture(t, conn, db, f)
	// And without FINAL, the base tables hold each row once.
	checkCounts(t, conn, db, "")
}

func checkCounts(t *testing.T, conn driver.Conn, db, final string) {
	t.Helper()
	want := map[string]uint64{"bank_transactions": 6, "matches": 6, "ledger_postings": 10,
		"statements": 2, "alerts": 1, "dead_letters": 2}
	for table, n := range want {
		if got := count(t, conn, "SELECT count() FROM "+db+"."+table+final); got != n {
			t.Errorf("%s%s: %d rows, want %d", table, final, got, n)
		}
	}
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkFixture checks every table and view against the fixture's known
// numbers, rendering each query's rows as text.
func checkFixture(t *testing.T, conn driver.Conn, db string, f fixture) {
	t.Helper()
	checkCounts(t, conn, db, " FINAL")
	bucketDay := f.today.AddDate(0, 0, -10).Format(time.DateOnly)
	for _, c := range []struct{ q, want string }{
		{"SELECT toString(day), currency, toString(collected), toString(returned), toString(net), payments, returns FROM {db}.cash_collected_daily ORDER BY day",
			"2024-03-01 EUR 150 0 150 2 0|2024-03-05 EUR 0 50 -50 0 1|2024-03-06 EUR 10 0 10 1 0"},
		{"SELECT loan_id, toString(day), toString(net) FROM {db}.cash_collected_by_loan ORDER BY loan_id, day",
			"L1 2024-03-01 100|L2 2024-03-01 50|L2 2024-03-05 -50|L2 2024-03-06 10"},
		{"SELECT rule, decisions, posted, suspense, rejected, toString(match_rate), timed, toString(avg_seconds_to_match), max_seconds_to_match FROM {db}.match_rate_by_rule ORDER BY rule",
			"mandate 3 3 0 0 1 3 60 90|none 1 0 1 0 0 0 nan 0|virtual_iban 1 1 0 0 1 1 30 30"},
		{"SELECT transaction_id, toString(amount), toString(booking_date) FROM {db}.suspense_open",
			"T3 25.5 " + bucketDay},
		{"SELECT age_bucket, currency, transactions, toString(amount), oldest_days FROM {db}.suspense_ageing",
			"8-30d EUR 1 25.5 10"},
		{"SELECT return_reason, currency, returns, toString(returned_amount), collections, toString(return_rate) FROM {db}.dd_return_rate_by_reason",
			"AM04 EUR 1 50 2 0.5"},
		{"SELECT id, toString(difference) FROM {db}.statement_breaks",
			"S2 10"},
		{"SELECT currency, toString(day), toString(outstanding) FROM {db}.portfolio_outstanding_daily ORDER BY day",
			"EUR 2024-02-01 1500|EUR 2024-03-01 1350|EUR 2024-03-05 1400"},
		{"SELECT loan_id, toString(outstanding) FROM {db}.loan_outstanding ORDER BY loan_id",
			"L1 900|L2 500"},
		{"SELECT origin, id, kafka_topic FROM {db}.dead_letters FINAL WHERE origin = 'topic'",
			"topic D1 recon.dead-letters.v1"},
		{"SELECT origin, kafka_topic, location LIKE 'recon.bank-transactions.v1/_@_' FROM {db}.dead_letters FINAL WHERE origin = 'sink'",
			"sink recon.bank-transactions.v1 1"},
	} {
		got := render(t, conn, expand(c.q, db))
		if c.want != got {
			t.Errorf("%s\n got: %s\nwant: %s", c.q, got, c.want)
		}
	}
}

// render runs q and joins its rows with "|", columns with " ". Decimals
// print without trailing zeros.
func render(t *testing.T, conn driver.Conn, q string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if out != "" {
			out += "|"
		}
		for i, v := range vals {
			if i > 0 {
				out += " "
			}
			out += text(v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

var trailingZeros = regexp.MustCompile(`^(-?\d+)(\.\d*?)0*$`)

// text prints a scanned value; decimals lose trailing zeros, which 18.16
// prints and newer servers do not.
func text(v any) string {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "NULL"
		}
		rv = rv.Elem()
	}
	s := fmt.Sprint(rv.Interface())
	if m := trailingZeros.FindStringSubmatch(s); m != nil {
		s = m[1] + strings.TrimSuffix(m[2], ".")
	}
	return s
}
