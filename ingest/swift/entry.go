package swift

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// entry is one :61: statement line, waiting for the :86: fields after it.
type entry struct {
	line                 int
	value, booking       recon.Date
	dir                  recon.Direction
	reversal             bool
	amt                  decimal.Decimal
	code                 string // transaction type: NTRF, N051, FMSC...
	customerRef, bankRef string
	info                 []string // the :86: lines
}

// statementLine reads a :61: into the message's pending entry:
// value date YYMMDD, [entry date MMDD], mark C/D/RC/RD, [funds code],
// amount, type (a letter and three characters), customer reference,
// [//bank reference], and on the next line [supplementary details] (or the
// bank reference, when it did not fit on the first).
func (r *reader) statementLine() error {
	m := r.msg
	r.settle(m)
	if !m.hasAccount {
		return r.failField("statement line before the :25: account")
	}
	if m.ccy == "" {
		return r.failField("statement line before the currency is known (:60F:, :60M: or :34F:)")
	}
	if r.sum.Entries++; r.sum.Entries > r.lim.MaxEntries {
		return r.limit(r.tagLine, ":61:", fmt.Sprintf("more than MaxEntries (%d) statement lines in one file", r.lim.MaxEntries))
	}
	e, err := parse61(strings.TrimSpace(r.text[0]), r.lim.MaxAmountDigits)
	if err != nil {
		return r.failField(fmt.Sprintf("unreadable statement line %q: %v", clip(strings.TrimSpace(r.text[0])), err))
	}
	if e.bankRef == "" && len(r.text) > 1 {
		if ref, ok := strings.CutPrefix(strings.TrimSpace(r.text[1]), "//"); ok {
			e.bankRef = strings.TrimSpace(ref)
		}
	}
	if strings.EqualFold(e.bankRef, "NONREF") {
		e.bankRef = ""
	}
	e.line = r.tagLine
	m.pending = e
	return nil
}

// parse61 reads the first line of a :61:.
func parse61(s string, maxDigits int) (*entry, error) {
	e := &entry{}
	var ok bool
	if len(s) < 6 {
		return nil, fmt.Errorf("no value date")
	}
	if e.value, ok = yymmdd(s[:6], true); !ok {
		return nil, fmt.Errorf("invalid value date %q", s[:6])
	}
	s = s[6:]
	switch {
	case len(s) >= 4 && allDigits(s[:4]):
		if e.booking, ok = entryDate(s[:4], e.value); !ok {
			return nil, fmt.Errorf("invalid entry date %q", s[:4])
		}
		s = s[4:]
	case strings.HasPrefix(s, "    "): // an entry date left blank
		s = s[4:]
	}
	switch {
	case strings.HasPrefix(s, "RC"):
		e.dir, e.reversal, s = recon.Debit, true, s[2:] // reversal of a credit: money out
	case strings.HasPrefix(s, "RD"):
		e.dir, e.reversal, s = recon.Credit, true, s[2:] // reversal of a debit: money in
	case strings.HasPrefix(s, "C"):
		e.dir, s = recon.Credit, s[1:]
	case strings.HasPrefix(s, "D"):
		e.dir, s = recon.Debit, s[1:]
	default:
		return nil, fmt.Errorf("no debit/credit mark (C, D, RC, RD)")
	}
	if len(s) >= 2 && isUpper(s[0]) && (isDigit(s[1]) || s[1] == ',') {
		s = s[1:] // funds code: the third letter of the currency code
	}
	n := 0
	for n < len(s) && (isDigit(s[n]) || s[n] == ',' || s[n] == '.') {
		n++
	}
	amt, err := parseAmount(s[:n], maxDigits)
	if err != nil {
		return nil, err
	}
	e.amt, s = amt, strings.TrimLeft(s[n:], " ")
	switch {
	case s == "" || strings.HasPrefix(s, "//"):
		// no transaction type (some banks' exports): nothing to read
	case len(s) < 4 || !isUpper(s[0]):
		return nil, fmt.Errorf("no transaction type after the amount")
	default:
		e.code, s = s[:4], s[4:]
	}
	cust, bank, _ := strings.Cut(s, "//")
	e.customerRef, e.bankRef = strings.TrimSpace(cust), strings.TrimSpace(bank)
	return e, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// flushEntry emits the pending statement line as a transaction record.
func (r *reader) flushEntry() error {
	m := r.msg
	e := m.pending
	if e == nil {
		return nil
	}
	m.pending = nil
	m.entries++
	m.booked++
	if e.dir == recon.Credit {
		m.credits, m.nCredits = m.credits.Add(e.amt), m.nCredits+1
	} else {
		m.debits, m.nDebits = m.debits.Add(e.amt), m.nDebits+1
	}
	d := details(e.info)
	amt := e.amt
	rec := recon.BankTransaction{
		Type: recon.TypeTransaction, Source: m.kind, MessageID: m.id, AccountIBAN: m.account,
		Direction: e.dir, Amount: e.amt, Currency: m.ccy, Status: recon.Booked,
		BookingDate: e.booking, ValueDate: e.value, BankReference: e.bankRef,
		EndToEndID: d.endToEnd, MandateID: d.mandate, CreditorReference: d.creditorRef,
		RemittanceInfo: d.remittance, EntryAmount: &amt, CounterpartyName: d.name,
		CounterpartyIBAN: d.iban, CounterpartyBIC: d.bic, BankTxCode: e.code,
		Reversal: e.reversal, ReturnReason: d.returnReason,
	}
	if rec.BookingDate == "" {
		rec.BookingDate = e.value // no entry date: booked on its value date
	}
	rec.ID = recon.IdentityKey(rec)
	if rec.ID == "" || m.ids[rec.ID] {
		// no reference, or one an earlier line of this message has: by position
		rec.ID = recon.IdentityKey(recon.BankTransaction{AccountIBAN: m.account, Direction: e.dir, EntryReference: m.id + "/" + strconv.Itoa(m.entries)})
	}
	if m.ids == nil {
		m.ids = make(map[string]bool)
	}
	m.ids[rec.ID] = true
	if entryHook != nil {
		entryHook(e, rec)
	}
	r.sum.Transactions++
	return r.send(rec)
}

// entryHook lets tests see each statement line next to its record.
var entryHook func(e *entry, rec recon.BankTransaction)
