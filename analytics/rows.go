package analytics

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// Limits on what a record may carry into ClickHouse. A record over a limit
// is poison: it goes to dead_letters with the reason.
const (
	// amountScale is the fractional digits of every Decimal(38, 5) column.
	amountScale = 5
	// maxPostings bounds the rows one ledger entry expands into.
	maxPostings = 10_000
)

// maxAmount is 10^33, the first value Decimal(38, 5) cannot hold.
var maxAmount = decimal.New(1, 38-amountScale)

// Source is where a row came from in Kafka: its record's coordinates, and
// for records that expand into several rows (a ledger entry's postings) the
// row's index within the record. (Topic, Partition, Offset, Index) is unique
// per table; it is how the sink recognises rows already written.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
	Index     uint16
	Timestamp time.Time // the record's timestamp, stored as kafka_timestamp
}

func (s Source) source() Source { return s }

// BankTransactionRow is one row of recon.bank_transactions: one sighting of
// one bank transaction.
type BankTransactionRow struct {
	Source
	recon.BankTransaction
}

// MatchRow is one row of recon.matches: one match decision.
type MatchRow struct {
	Source
	recon.Decision
}

// PostingRow is one row of recon.ledger_postings: one posting of a ledger
// entry, with the entry's fields repeated.
type PostingRow struct {
	Source // Index is the posting's index within the entry
	Entry  *recon.Entry
	recon.Posting
}

// StatementRow is one row of recon.statements.
type StatementRow struct {
	Source
	recon.Statement
}

// AlertRow is one row of recon.alerts: one alert edge.
type AlertRow struct {
	Source
	recon.Alert
}

// BreakRow is one row of recon.breaks: one statement proof.
type BreakRow struct {
	Source
	recon.Break
}

// DeadLetterRow is one row of recon.dead_letters: a dead letter read from
// the dead-letters topic (Origin "topic") or a record the sink itself could
// not turn into rows (Origin "sink", Raw is the record's value).
type DeadLetterRow struct {
	Source
	Origin string
	recon.DeadLetter
}

// Rows is what a batch of records becomes: one slice per table, in record
// order, and the count of records that made no row.
type Rows struct {
	BankTransactions []BankTransactionRow
	Matches          []MatchRow
	LedgerPostings   []PostingRow
	Statements       []StatementRow
	Alerts           []AlertRow
	DeadLetters      []DeadLetterRow
	Breaks           []BreakRow
	// Skipped counts records deliberately not stored, by topic and record
	// type (returns and status reports on the bank-transactions topic).
	Skipped map[SkipKey]int
	// Poison counts records turned into sink dead letters, by topic.
	Poison map[string]int
}

// SkipKey names a kind of skipped record.
type SkipKey struct{ Topic, Type string }

// Len is the number of rows over all tables.
func (r *Rows) Len() int {
	return len(r.BankTransactions) + len(r.Matches) + len(r.LedgerPostings) +
		len(r.Statements) + len(r.Alerts) + len(r.DeadLetters) + len(r.Breaks)
}

// Build turns records into rows. It is pure: the same records give the same
// rows, whatever the time or the state of ClickHouse. A record that cannot be
// decoded or breaks a limit becomes a dead-letter row naming its coordinates.
func Build(recs []*kgo.Record) Rows {
	var rows Rows
	for _, rec := range recs {
		rows.Add(rec)
	}
	return rows
}

// Add appends the rows of one record.
func (r *Rows) Add(rec *kgo.Record) {
	src := Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	// A broker's timestamp is always in range; clamp rather than refuse.
	if ts, err := fitTime("timestamp", rec.Timestamp); err == nil {
		src.Timestamp = ts
	} else {
		src.Timestamp = minTime
	}
	var err error
	switch rec.Topic {
	case schemas.TopicBankTransactions:
		err = r.addBankTransaction(src, rec.Value)
	case schemas.TopicMatches:
		err = r.addMatch(src, rec.Value)
	case schemas.TopicLedgerEntries:
		err = r.addEntry(src, rec.Value)
	case schemas.TopicStatements:
		err = r.addStatement(src, rec.Value)
	case schemas.TopicAlerts:
		err = r.addAlert(src, rec.Value)
	case schemas.TopicDeadLetters:
		err = r.addDeadLetter(src, rec.Value)
	case schemas.TopicReconciliation:
		err = r.addBreak(src, rec.Value)
	default:
		err = fmt.Errorf("topic %q is not one the sink reads", rec.Topic)
	}
	if err != nil {
		r.addPoison(src, rec.Value, err)
	}
}

// RecordError is why a record could not become rows, with its coordinates.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%s/%d@%d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

func (r *Rows) addPoison(src Source, raw []byte, err error) {
	rerr := &RecordError{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset, Err: err}
	if r.Poison == nil {
		r.Poison = map[string]int{}
	}
	r.Poison[src.Topic]++
	r.DeadLetters = append(r.DeadLetters, DeadLetterRow{
		Source: src,
		Origin: "sink",
		DeadLetter: recon.DeadLetter{
			ID:     src.Topic + "/" + strconv.Itoa(int(src.Partition)) + "/" + strconv.FormatInt(src.Offset, 10),
			Source: "analytics",
			Where:  src.Topic + "/" + strconv.Itoa(int(src.Partition)) + "@" + strconv.FormatInt(src.Offset, 10),
			Reason: rerr.Error(),
			Raw:    raw,
			At:     src.Timestamp,
		},
	})
}

func (r *Rows) skip(topic, typ string) {
	if r.Skipped == nil {
		r.Skipped = map[SkipKey]int{}
	}
	r.Skipped[SkipKey{topic, typ}]++
}

func (r *Rows) addBankTransaction(src Source, raw []byte) error {
	var probe struct {
		Type string `json:"type"`
	}
	if err := bus.Unmarshal(raw, &probe); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if probe.Type != recon.TypeTransaction {
		if probe.Type == "" {
			return errors.New(`record has no "type"`)
		}
		r.skip(src.Topic, probe.Type)
		return nil
	}
	var t recon.BankTransaction
	if err := bus.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("decode transaction: %w", err)
	}
	if t.ID == "" {
		return errors.New("transaction has no id")
	}
	if err := checkDates(t.BookingDate, t.ValueDate); err != nil {
		return err
	}
	var err error
	if t.Amount, err = fitAmount("amount", t.Amount); err != nil {
		return err
	}
	if t.EntryAmount != nil {
		a, err := fitAmount("entry_amount", *t.EntryAmount)
		if err != nil {
			return err
		}
		t.EntryAmount = &a
	}
	for name, m := range map[string]*recon.Money{"instructed_amount": t.InstructedAmount, "charges": t.Charges} {
		if m == nil {
			continue
		}
		if m.Amount, err = fitAmount(name, m.Amount); err != nil {
			return err
		}
	}
	r.BankTransactions = append(r.BankTransactions, BankTransactionRow{Source: src, BankTransaction: t})
	return nil
}

func (r *Rows) addMatch(src Source, raw []byte) error {
	var d recon.Decision
	if err := bus.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decode decision: %w", err)
	}
	if d.TransactionID == "" {
		return errors.New("decision has no transaction_id")
	}
	if err := checkDates(d.BookingDate); err != nil {
		return err
	}
	var err error
	if d.Amount, err = fitAmount("amount", d.Amount); err != nil {
		return err
	}
	if d.Confidence, err = fitAmount("confidence", d.Confidence); err != nil {
		return err
	}
	if d.DecidedAt, err = fitTime("decided_at", d.DecidedAt); err != nil {
		return err
	}
	r.Matches = append(r.Matches, MatchRow{Source: src, Decision: d})
	return nil
}

func (r *Rows) addEntry(src Source, raw []byte) error {
	e := new(recon.Entry)
	if err := bus.Unmarshal(raw, e); err != nil {
		return fmt.Errorf("decode entry: %w", err)
	}
	if e.ID == "" {
		return errors.New("entry has no id")
	}
	if len(e.Postings) == 0 || len(e.Postings) > maxPostings {
		return fmt.Errorf("entry %s has %d postings, want 1 to %d", e.ID, len(e.Postings), maxPostings)
	}
	if err := checkDates(e.EffectiveDate); err != nil {
		return err
	}
	var err error
	if e.BookedAt, err = fitTime("booked_at", e.BookedAt); err != nil {
		return err
	}
	start := len(r.LedgerPostings)
	for i, p := range e.Postings {
		if p.Amount, err = fitAmount(fmt.Sprintf("postings[%d].amount", i), p.Amount); err != nil {
			r.LedgerPostings = r.LedgerPostings[:start]
			return err
		}
		s := src
		s.Index = uint16(i)
		r.LedgerPostings = append(r.LedgerPostings, PostingRow{Source: s, Entry: e, Posting: p})
	}
	return nil
}

func (r *Rows) addStatement(src Source, raw []byte) error {
	var s recon.Statement
	if err := bus.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("decode statement: %w", err)
	}
	if s.ID == "" {
		return errors.New("statement has no id")
	}
	if err := checkDates(s.FromDate, s.ToDate, s.ClosingDate); err != nil {
		return err
	}
	if s.BookedEntries < 0 || s.BookedEntries > 1<<31 {
		return fmt.Errorf("booked_entries %d out of range", s.BookedEntries)
	}
	var err error
	for name, p := range map[string]*decimal.Decimal{"opening_balance": s.OpeningBalance, "closing_balance": s.ClosingBalance, "booked_credits": &s.BookedCredits, "booked_debits": &s.BookedDebits} {
		if p == nil {
			continue
		}
		if *p, err = fitAmount(name, *p); err != nil {
			return err
		}
	}
	r.Statements = append(r.Statements, StatementRow{Source: src, Statement: s})
	return nil
}

func (r *Rows) addAlert(src Source, raw []byte) error {
	var a recon.Alert
	if err := bus.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("decode alert: %w", err)
	}
	if a.ID == "" {
		return errors.New("alert has no id")
	}
	var err error
	if a.Value, err = fitAmount("value", a.Value); err != nil {
		return err
	}
	if a.Threshold, err = fitAmount("threshold", a.Threshold); err != nil {
		return err
	}
	if a.At, err = fitTime("at", a.At); err != nil {
		return err
	}
	r.Alerts = append(r.Alerts, AlertRow{Source: src, Alert: a})
	return nil
}

func (r *Rows) addBreak(src Source, raw []byte) error {
	var b recon.Break
	if err := bus.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("decode break: %w", err)
	}
	if b.ID == "" {
		return errors.New("break has no id")
	}
	if err := checkDates(b.Date); err != nil {
		return err
	}
	if b.Transactions < 0 || b.Transactions > 1<<31 || b.Missing < 0 || b.Missing > 1<<31 {
		return fmt.Errorf("transactions %d / missing %d out of range", b.Transactions, b.Missing)
	}
	var err error
	for name, p := range map[string]*decimal.Decimal{"expected": &b.Expected, "ledger": &b.Ledger, "difference": &b.Difference} {
		if *p, err = fitAmount(name, *p); err != nil {
			return err
		}
	}
	if b.At, err = fitTime("at", b.At); err != nil {
		return err
	}
	r.Breaks = append(r.Breaks, BreakRow{Source: src, Break: b})
	return nil
}

func (r *Rows) addDeadLetter(src Source, raw []byte) error {
	var d recon.DeadLetter
	if err := bus.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decode dead letter: %w", err)
	}
	var err error
	if d.At, err = fitTime("at", d.At); err != nil {
		return err
	}
	r.DeadLetters = append(r.DeadLetters, DeadLetterRow{Source: src, Origin: "topic", DeadLetter: d})
	return nil
}

// fitAmount checks that d fits Decimal(38, 5) exactly and returns it at
// that scale.
func fitAmount(name string, d decimal.Decimal) (decimal.Decimal, error) {
	if !d.Equal(d.Truncate(amountScale)) {
		return d, fmt.Errorf("%s %s has more than %d decimal places", name, d, amountScale)
	}
	if d.Abs().GreaterThanOrEqual(maxAmount) {
		return d, fmt.Errorf("%s %s does not fit Decimal(38, %d)", name, d, amountScale)
	}
	return d.Round(amountScale), nil
}

func checkDates(ds ...recon.Date) error {
	for _, d := range ds {
		if d != "" && !d.Valid() {
			return fmt.Errorf("date %q is not YYYY-MM-DD", d)
		}
		if d != "" && (d < "1970-01-01" || d > "2105-12-31") {
			return fmt.Errorf("date %q outside ClickHouse Date range", d)
		}
	}
	return nil
}

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

// fitTime checks that t fits a DateTime column (seconds, 1970 to 2105). The
// zero time, an absent JSON field, is stored as 1970-01-01 00:00:00.
func fitTime(name string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return minTime, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return t, fmt.Errorf("%s %s outside ClickHouse DateTime range", name, t.Format(time.RFC3339))
	}
	return t.UTC(), nil
}
