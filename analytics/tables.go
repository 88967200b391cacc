package analytics

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// table is one base table the sink writes: its name, the columns it inserts
// (in order; inserted_at is left to its DEFAULT), and the expression of the
// row index within a record, used to find rows already written.
type table struct {
	name    string
	columns []string
	index   string
}

// kafkaColumns end every table's column list: where the row came from.
var kafkaColumns = []string{"kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"}

func cols(c ...string) []string { return append(c, kafkaColumns...) }

var (
	tableBankTransactions = table{name: "bank_transactions", index: "0", columns: cols(
		"id", "producer_id", "source", "message_id", "account_iban", "virtual_iban",
		"direction", "amount", "currency", "status", "booking_date", "value_date",
		"end_to_end_id", "transaction_id", "mandate_id", "creditor_reference",
		"remittance_info", "bank_reference", "entry_reference", "entry_amount",
		"counterparty_name", "counterparty_iban", "counterparty_bic", "bank_tx_code",
		"reversal", "return_reason", "instructed_amount", "instructed_currency",
		"charges_amount", "charges_currency", "remainder", "is_charge")}
	tableMatches = table{name: "matches", index: "0", columns: cols(
		"transaction_id", "outcome", "loan_id", "rule", "confidence", "evidence",
		"reason", "amount", "currency", "direction", "booking_date", "decided_at",
		"entry_ids")}
	tableLedgerPostings = table{name: "ledger_postings", index: "posting_index", columns: cols(
		"entry_id", "entry_kind", "loan_id", "borrower_id", "transaction_id", "effective_date",
		"booked_at", "note", "sequence", "prev_hash", "hash", "posting_index",
		"account", "side", "amount", "currency")}
	tableStatements = table{name: "statements", index: "0", columns: cols(
		"id", "source", "message_id", "account_iban", "sequence_number",
		"legal_sequence_number", "created_at", "from_date", "to_date", "currency",
		"opening_balance", "closing_balance", "closing_date", "booked_entries",
		"booked_credits", "booked_debits", "balance_check")}
	tableAlerts = table{name: "alerts", index: "0", columns: cols(
		"id", "rule", "kind", "state", "subject", "value", "threshold", "currency",
		"at", "message")}
	tableDeadLetters = table{name: "dead_letters", index: "0", columns: cols(
		"origin", "id", "source", "location", "reason", "raw", "at")}
	tableBreaks = table{name: "breaks", index: "0", columns: cols(
		"id", "type", "statement_id", "previous_statement_id", "account_iban",
		"date", "currency", "expected", "ledger", "difference", "status",
		"reason", "transactions", "missing", "at")}

	// tables in the order the sink inserts a batch.
	tables = []table{tableBankTransactions, tableMatches, tableLedgerPostings,
		tableStatements, tableAlerts, tableDeadLetters, tableBreaks}
)

// kafkaCols builds the four Kafka columns of n rows.
type kafkaCols struct {
	topic     []string
	partition []int32
	offset    []int64
	timestamp []time.Time
}

func (k *kafkaCols) add(s Source) {
	k.topic = append(k.topic, s.Topic)
	k.partition = append(k.partition, s.Partition)
	k.offset = append(k.offset, s.Offset)
	k.timestamp = append(k.timestamp, s.Timestamp)
}

func (k *kafkaCols) columns() []any { return []any{k.topic, k.partition, k.offset, k.timestamp} }

// date converts an optional recon.Date to a Nullable(Date) value. Dates were
// checked by Build, so a parse error cannot happen here.
func date(d recon.Date) *time.Time {
	if d == "" {
		return nil
	}
	t, err := time.Parse(time.DateOnly, string(d))
	if err != nil {
		panic("analytics: unchecked date " + string(d))
	}
	return &t
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func money(m *recon.Money) (*decimal.Decimal, string) {
	if m == nil {
		return nil, ""
	}
	a := m.Amount
	return &a, m.Currency
}

// columnsOf returns the column values of rows for t, in t.columns order.
func columnsOf(t table, r *Rows) []any {
	switch t.name {
	case tableBankTransactions.name:
		return bankTransactionColumns(r.BankTransactions)
	case tableMatches.name:
		return matchColumns(r.Matches)
	case tableLedgerPostings.name:
		return postingColumns(r.LedgerPostings)
	case tableStatements.name:
		return statementColumns(r.Statements)
	case tableAlerts.name:
		return alertColumns(r.Alerts)
	case tableDeadLetters.name:
		return deadLetterColumns(r.DeadLetters)
	case tableBreaks.name:
		return breakColumns(r.Breaks)
	}
	panic("analytics: unknown table " + t.name)
}

func rowCount(t table, r *Rows) int {
	switch t.name {
	case tableBankTransactions.name:
		return len(r.BankTransactions)
	case tableMatches.name:
		return len(r.Matches)
	case tableLedgerPostings.name:
		return len(r.LedgerPostings)
	case tableStatements.name:
		return len(r.Statements)
	case tableAlerts.name:
		return len(r.Alerts)
	case tableDeadLetters.name:
		return len(r.DeadLetters)
	case tableBreaks.name:
		return len(r.Breaks)
	}
	panic("analytics: unknown table " + t.name)
}

func bankTransactionColumns(rows []BankTransactionRow) []any {
	n := len(rows)
	var (
		str     = make([][]string, 24)
		amount  = make([]decimal.Decimal, 0, n)
		entry   = make([]*decimal.Decimal, 0, n)
		instr   = make([]*decimal.Decimal, 0, n)
		charges = make([]*decimal.Decimal, 0, n)
		booking = make([]*time.Time, 0, n)
		value   = make([]*time.Time, 0, n)
		flags   = make([][]uint8, 3)
		k       kafkaCols
	)
	for _, r := range rows {
		t := &r.BankTransaction
		ia, ic := money(t.InstructedAmount)
		ca, cc := money(t.Charges)
		for i, s := range []string{t.ID, t.ProducerID, t.Source, t.MessageID, t.AccountIBAN,
			t.VirtualIBAN, string(t.Direction), t.Currency, string(t.Status), t.EndToEndID,
			t.TransactionID, t.MandateID, t.CreditorReference, t.RemittanceInfo,
			t.BankReference, t.EntryReference, t.CounterpartyName, t.CounterpartyIBAN,
			t.CounterpartyBIC, t.BankTxCode, t.ReturnReason, ic, cc} {
			str[i] = append(str[i], s)
		}
		amount = append(amount, t.Amount)
		entry = append(entry, t.EntryAmount)
		instr = append(instr, ia)
		charges = append(charges, ca)
		booking = append(booking, date(t.BookingDate))
		value = append(value, date(t.ValueDate))
		for i, b := range []bool{t.Reversal, t.Remainder, t.IsCharge} {
			flags[i] = append(flags[i], flag(b))
		}
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[3], str[4], str[5],
		str[6], amount, str[7], str[8], booking, value,
		str[9], str[10], str[11], str[12],
		str[13], str[14], str[15], entry,
		str[16], str[17], str[18], str[19],
		flags[0], str[20], instr, str[21],
		charges, str[22], flags[1], flags[2]}, k.columns()...)
}

func matchColumns(rows []MatchRow) []any {
	n := len(rows)
	var (
		str        = make([][]string, 8)
		confidence = make([]decimal.Decimal, 0, n)
		amount     = make([]decimal.Decimal, 0, n)
		booking    = make([]*time.Time, 0, n)
		decided    = make([]time.Time, 0, n)
		entryIDs   = make([][]string, 0, n)
		k          kafkaCols
	)
	for _, r := range rows {
		d := &r.Decision
		for i, s := range []string{d.TransactionID, string(d.Outcome), d.LoanID, d.Rule,
			d.Evidence, d.Reason, d.Currency, string(d.Direction)} {
			str[i] = append(str[i], s)
		}
		confidence = append(confidence, d.Confidence)
		amount = append(amount, d.Amount)
		booking = append(booking, date(d.BookingDate))
		decided = append(decided, d.DecidedAt)
		ids := d.EntryIDs
		if ids == nil {
			ids = []string{}
		}
		entryIDs = append(entryIDs, ids)
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[3], confidence, str[4],
		str[5], amount, str[6], str[7], booking, decided, entryIDs}, k.columns()...)
}

func postingColumns(rows []PostingRow) []any {
	n := len(rows)
	var (
		str       = make([][]string, 11)
		effective = make([]*time.Time, 0, n)
		booked    = make([]time.Time, 0, n)
		sequence  = make([]int64, 0, n)
		index     = make([]uint16, 0, n)
		amount    = make([]decimal.Decimal, 0, n)
		k         kafkaCols
	)
	for i := range str {
		str[i] = make([]string, 0, n)
	}
	var (
		lastEntry *recon.Entry
		lastDate  *time.Time
	)
	for _, r := range rows {
		e := r.Entry
		if e != lastEntry { // postings of one entry share its parsed date
			lastEntry, lastDate = e, date(e.EffectiveDate)
		}
		str[0] = append(str[0], e.ID)
		str[1] = append(str[1], e.Kind)
		str[2] = append(str[2], e.LoanID)
		str[3] = append(str[3], e.TransactionID)
		str[4] = append(str[4], e.Note)
		str[5] = append(str[5], e.PrevHash)
		str[6] = append(str[6], e.Hash)
		str[7] = append(str[7], r.Account)
		str[8] = append(str[8], string(r.Side))
		str[9] = append(str[9], r.Currency)
		str[10] = append(str[10], e.BorrowerID)
		effective = append(effective, lastDate)
		booked = append(booked, e.BookedAt)
		sequence = append(sequence, e.Sequence)
		index = append(index, r.Index)
		amount = append(amount, r.Amount)
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[10], str[3], effective,
		booked, str[4], sequence, str[5], str[6], index,
		str[7], str[8], amount, str[9]}, k.columns()...)
}

func statementColumns(rows []StatementRow) []any {
	n := len(rows)
	var (
		str     = make([][]string, 9)
		dates   = make([][]*time.Time, 3)
		opening = make([]*decimal.Decimal, 0, n)
		closing = make([]*decimal.Decimal, 0, n)
		entries = make([]uint32, 0, n)
		credits = make([]decimal.Decimal, 0, n)
		debits  = make([]decimal.Decimal, 0, n)
		k       kafkaCols
	)
	for _, r := range rows {
		s := &r.Statement
		for i, v := range []string{s.ID, s.Source, s.MessageID, s.AccountIBAN, s.SequenceNumber,
			s.LegalSequenceNumber, s.CreatedAt, s.Currency, s.BalanceCheck} {
			str[i] = append(str[i], v)
		}
		for i, d := range []recon.Date{s.FromDate, s.ToDate, s.ClosingDate} {
			dates[i] = append(dates[i], date(d))
		}
		opening = append(opening, s.OpeningBalance)
		closing = append(closing, s.ClosingBalance)
		entries = append(entries, uint32(s.BookedEntries))
		credits = append(credits, s.BookedCredits)
		debits = append(debits, s.BookedDebits)
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[3], str[4],
		str[5], str[6], dates[0], dates[1], str[7],
		opening, closing, dates[2], entries,
		credits, debits, str[8]}, k.columns()...)
}

func alertColumns(rows []AlertRow) []any {
	n := len(rows)
	var (
		str       = make([][]string, 7)
		value     = make([]decimal.Decimal, 0, n)
		threshold = make([]decimal.Decimal, 0, n)
		at        = make([]time.Time, 0, n)
		k         kafkaCols
	)
	for _, r := range rows {
		a := &r.Alert
		for i, v := range []string{a.ID, a.Rule, a.Kind, a.State, a.Subject, a.Currency, a.Message} {
			str[i] = append(str[i], v)
		}
		value = append(value, a.Value)
		threshold = append(threshold, a.Threshold)
		at = append(at, a.At)
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[3], str[4], value, threshold, str[5],
		at, str[6]}, k.columns()...)
}

func deadLetterColumns(rows []DeadLetterRow) []any {
	var (
		str = make([][]string, 6)
		at  = make([]time.Time, 0, len(rows))
		k   kafkaCols
	)
	for _, r := range rows {
		d := &r.DeadLetter
		for i, v := range []string{r.Origin, d.ID, d.Source, d.Where, d.Reason, string(d.Raw)} {
			str[i] = append(str[i], v)
		}
		at = append(at, d.At)
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[3], str[4], str[5], at}, k.columns()...)
}

func breakColumns(rows []BreakRow) []any {
	n := len(rows)
	var (
		str   = make([][]string, 8)
		dates = make([]*time.Time, 0, n)
		dec   = make([][]decimal.Decimal, 3)
		cnt   = make([][]uint32, 2)
		at    = make([]time.Time, 0, n)
		k     kafkaCols
	)
	for _, r := range rows {
		b := &r.Break
		for i, v := range []string{b.ID, b.Type, b.StatementID, b.PreviousStatementID, b.AccountIBAN, b.Currency, b.Status, b.Reason} {
			str[i] = append(str[i], v)
		}
		dates = append(dates, date(b.Date))
		for i, v := range []decimal.Decimal{b.Expected, b.Ledger, b.Difference} {
			dec[i] = append(dec[i], v)
		}
		cnt[0] = append(cnt[0], uint32(b.Transactions))
		cnt[1] = append(cnt[1], uint32(b.Missing))
		at = append(at, b.At)
		k.add(r.Source)
	}
	return append([]any{str[0], str[1], str[2], str[3], str[4], dates, str[5],
		dec[0], dec[1], dec[2], str[6], str[7], cnt[0], cnt[1], at}, k.columns()...)
}
