package analytics

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

func rec(topic string, offset int64, value string) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: 1, Offset: offset, Value: []byte(value),
		Timestamp: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func TestBuild(t *testing.T) {
	bt, le := schemas.TopicBankTransactions, schemas.TopicLedgerEntries
	for _, c := range []struct {
		name   string
		rec    *kgo.Record
		counts [6]int // bank_transactions, matches, postings, statements, alerts, dead letters
		poison string // substring of the dead letter's reason
		skip   string
	}{
		{"transaction", rec(bt, 7, `{"type":"transaction","id":"T1","source":"webhook","direction":"credit","amount":"12.34","currency":"EUR","status":"booked","booking_date":"2024-03-01"}`),
			[6]int{1, 0, 0, 0, 0, 0}, "", ""},
		{"return is skipped and counted", rec(bt, 8, `{"type":"return","id":"R1"}`), [6]int{}, "", "return"},
		{"bad json", rec(bt, 9, `{"type":`), [6]int{0, 0, 0, 0, 0, 1}, "bank-transactions.v1/1@9: decode", ""},
		{"no type", rec(bt, 9, `{"id":"x"}`), [6]int{0, 0, 0, 0, 0, 1}, `no "type"`, ""},
		{"too many decimals", rec(bt, 10, `{"type":"transaction","id":"T1","amount":"1.000001","currency":"EUR"}`),
			[6]int{0, 0, 0, 0, 0, 1}, "more than 5 decimal places", ""},
		{"too large", rec(bt, 10, `{"type":"transaction","id":"T1","amount":"1e40","currency":"EUR"}`),
			[6]int{0, 0, 0, 0, 0, 1}, "does not fit Decimal(38, 5)", ""},
		{"bad date", rec(bt, 11, `{"type":"transaction","id":"T1","amount":"1","booking_date":"2024-02-30"}`),
			[6]int{0, 0, 0, 0, 0, 1}, "not YYYY-MM-DD", ""},
		{"entry has one row per posting", rec(le, 12, `{"id":"E1","kind":"repayment","booked_at":"2024-03-01T10:00:00Z","postings":[{"account":"cash","side":"debit","amount":"5","currency":"EUR"},{"account":"loan:L1:principal","side":"credit","amount":"5","currency":"EUR"}]}`),
			[6]int{0, 0, 2, 0, 0, 0}, "", ""},
		{"entry without postings", rec(le, 13, `{"id":"E1","postings":[]}`), [6]int{0, 0, 0, 0, 0, 1}, "0 postings", ""},
		{"decision", rec(schemas.TopicMatches, 1, `{"transaction_id":"T1","outcome":"posted","rule":"r","confidence":"0.9","amount":"1","currency":"EUR","decided_at":"2024-03-01T10:00:00.123Z"}`),
			[6]int{0, 1, 0, 0, 0, 0}, "", ""},
		{"statement", rec(schemas.TopicStatements, 1, `{"type":"statement","id":"S1","opening_balance":"-1.5","booked_entries":1,"booked_credits":"0","booked_debits":"0","balance_check":"ok"}`),
			[6]int{0, 0, 0, 1, 0, 0}, "", ""},
		{"alert", rec(schemas.TopicAlerts, 1, `{"id":"A1","value":"1","threshold":"2","at":"2024-03-01T10:00:00Z"}`), [6]int{0, 0, 0, 0, 1, 0}, "", ""},
		{"dead letter", rec(schemas.TopicDeadLetters, 1, `{"id":"D1","reason":"r","raw":"PHg+"}`), [6]int{0, 0, 0, 0, 0, 1}, "", ""},
		{"unknown topic", rec("other", 1, `{}`), [6]int{0, 0, 0, 0, 0, 1}, "not one the sink reads", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := Build([]*kgo.Record{c.rec})
			got := [6]int{len(rows.BankTransactions), len(rows.Matches), len(rows.LedgerPostings),
				len(rows.Statements), len(rows.Alerts), len(rows.DeadLetters)}
			if got != c.counts {
				t.Fatalf("rows per table %v, want %v", got, c.counts)
			}
			if c.poison != "" {
				d := rows.DeadLetters[0]
				if !strings.Contains(d.Reason, c.poison) || d.Origin != "sink" || string(d.Raw) != string(c.rec.Value) || d.Offset != c.rec.Offset {
					t.Errorf("dead letter %+v, want reason containing %q with the raw record", d, c.poison)
				}
				if rows.Poison[c.rec.Topic] != 1 {
					t.Errorf("poison count %v", rows.Poison)
				}
			}
			if c.skip != "" && rows.Skipped[SkipKey{c.rec.Topic, c.skip}] != 1 {
				t.Errorf("skipped %v, want one %q", rows.Skipped, c.skip)
			}
			for _, tb := range tables {
				cols := columnsOf(tb, &rows)
				if len(cols) != len(tb.columns) {
					t.Fatalf("%s: %d column values for %d columns", tb.name, len(cols), len(tb.columns))
				}
			}
		})
	}
}

func TestBuildPostingCoordinates(t *testing.T) {
	rows := Build([]*kgo.Record{rec(schemas.TopicLedgerEntries, 42, `{"id":"E1","effective_date":"2024-03-01","booked_at":"2024-03-01T10:00:00Z","postings":[{"account":"a","side":"debit","amount":"5.5","currency":"EUR"},{"account":"b","side":"credit","amount":"5.50000","currency":"EUR"}]}`)})
	for i, p := range rows.LedgerPostings {
		if p.Offset != 42 || p.Index != uint16(i) || p.Entry.ID != "E1" || p.Amount.String() != "5.5" {
			t.Errorf("posting %d: %+v", i, p)
		}
	}
	cols := postingColumns(rows.LedgerPostings)
	for i, c := range cols {
		if n := lenOf(c); n != 2 {
			t.Errorf("column %s has %d values, want 2", tableLedgerPostings.columns[i], n)
		}
	}
}

func lenOf(v any) int {
	switch c := v.(type) {
	case []string:
		return len(c)
	case []int32:
		return len(c)
	case []int64:
		return len(c)
	case []uint16:
		return len(c)
	case []time.Time:
		return len(c)
	case []*time.Time:
		return len(c)
	}
	return 2 // decimals: checked by the integration test
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Addr: "a:1", Brokers: []string{"b:1"}}
	for _, c := range []struct {
		name string
		cfg  func(Config) Config
		err  string
	}{
		{"defaults", func(c Config) Config { return c }, ""},
		{"no addr", func(c Config) Config { c.Addr = ""; return c }, "Addr"},
		{"no brokers", func(c Config) Config { c.Brokers = nil; return c }, "Brokers"},
		{"bad database", func(c Config) Config { c.Database = "x; DROP"; return c }, "Database"},
		{"huge batch", func(c Config) Config { c.BatchRows = 10_000_000; return c }, "BatchRows"},
	} {
		err := c.cfg(ok).Validate()
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: got %v, want error containing %q", c.name, err, c.err)
		}
	}
}
