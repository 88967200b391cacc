// Package cfonb reads CFONB 120 account statements ("relevé de compte 120
// caractères", the format French banks deliver to corporate clients) into
// recon records — the same statement and transaction records the ISO 20022
// reader gives for camt — streaming one record at a time.
//
// A file is records of exactly 120 characters (blank lines between them
// are passed over): 01 opens a statement with the previous balance, 04 is a
// movement, 05 a complement of the 04 before it, 07 closes the statement
// with the new balance. Each statement's account is its bank code, branch
// code and account number; recon names it by its French IBAN, computed
// exactly from them (the RIB key, which CFONB 120 does not carry, is a
// function of the three; the country is FR, so an account of Monaco, whose
// IBAN starts MC, would be named wrongly). Amounts are exact: 13 digits and
// a signed last character ("{" and "A"-"I" for 0-9 positive, "}" and
// "J"-"R" negative), scaled by the record's number of decimals, which must
// be the currency's ISO 4217 minor units. A file is rejected whole, with an
// *Error naming the line, the field and the reason, when any part is bad:
// a record not 120 characters long, a 04 or 05 outside a statement, a 05
// before any 04, a 01 before the last statement's 07, an unreadable date or
// amount, a record of another account or currency than its statement's.
//
// Identity of a transaction record: recon.IdentityKey over the end-to-end
// id a 05 "RCN" complement carries (its first 35 characters), so a CFONB
// movement and the camt.054 entry of the same SEPA payment get the same
// key. CFONB 120 has no bank reference recon can rely on across channels
// (the entry number and the reference zone are the bank's own, not the
// camt AcctSvcrRef), so a movement without RCN is named by its position:
// "<statement id>/<movement index>" as its entry reference's key, the
// statement id being "<bank><branch><account>/<old balance date>".
//
// Complements read: LIB, LCC, LC2 (remittance text, appended to the label),
// NPY/NBE (the payer's, the beneficiary's name: the counterparty of a
// credit, of a debit), IPY/IBE (their account, kept when it is an IBAN),
// RCN (end-to-end id), RUM (the mandate reference); others are passed over.
package cfonb

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ingest/internal/textline"
)

// Source is the Source of the records.
const Source = "cfonb120"

// RecordLength is the length of every record.
const RecordLength = 120

// Limits bound everything a file can make the reader spend. Zero fields
// take the default.
type Limits struct {
	MaxFileBytes   int64 // raw bytes of one file
	MaxStatements  int   // 01...07 statements in one file
	MaxMovements   int   // 04 records in one file
	MaxComplements int   // 05 records of one movement
	MaxBlankLines  int   // blank lines in one file
}

// DefaultLimits are generous for real bank files and still bound memory.
func DefaultLimits() Limits {
	return Limits{MaxFileBytes: 256 << 20, MaxStatements: 1_000_000, MaxMovements: 5_000_000, MaxComplements: 200, MaxBlankLines: 100_000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxStatements <= 0 {
		l.MaxStatements = d.MaxStatements
	}
	if l.MaxMovements <= 0 {
		l.MaxMovements = d.MaxMovements
	}
	if l.MaxComplements <= 0 {
		l.MaxComplements = d.MaxComplements
	}
	if l.MaxBlankLines <= 0 {
		l.MaxBlankLines = d.MaxBlankLines
	}
	return l
}

// ErrLimit: the input exceeds one of Limits. Every error Read returns is
// an *Error, wrapping ErrLimit when a bound was crossed.
var ErrLimit = errors.New("limit exceeded")

// Error is a rejected file with its coordinates: the line (1-based) and
// the field ("04 amount (91-104)", or "" for the file's structure).
type Error struct {
	File   string
	Line   int
	Field  string
	Reason string
	Err    error // ErrLimit or nil
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Summary describes a file that was read.
type Summary struct {
	File         string `json:"file"`
	Message      string `json:"message"` // cfonb120
	Bytes        int64  `json:"bytes"`
	Lines        int    `json:"lines"`
	Statements   int    `json:"statements"`
	Entries      int    `json:"entries"`
	Transactions int    `json:"transactions"`
}

// Read streams the records of one file to emit as it reads:
// recon.BankTransaction values as each movement is complete, then each
// statement's recon.Statement. name is used in errors only. On error the
// file is rejected whole, but records already emitted stay emitted (ReadAll
// returns nothing then). An error from emit is returned as is.
func Read(r io.Reader, name string, lim Limits, emit func(rec any) error) (Summary, error) {
	lim = lim.withDefaults()
	rd := &reader{file: name, lim: lim, emit: emit, sc: textline.New(r, lim.MaxFileBytes, 4*RecordLength)}
	rd.sum.File, rd.sum.Message = name, Source
	err := rd.run()
	if rd.emitErr != nil {
		err = rd.emitErr
	}
	rd.sum.Bytes, rd.sum.Lines = rd.sc.Bytes(), rd.sc.Line()
	return rd.sum, err
}

// ReadAll reads a whole file and returns its records only when all of it
// was read.
func ReadAll(r io.Reader, name string, lim Limits) ([]any, Summary, error) {
	var recs []any
	sum, err := Read(r, name, lim, func(rec any) error {
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, sum, err
	}
	return recs, sum, nil
}

type reader struct {
	file    string
	lim     Limits
	emit    func(any) error
	emitErr error
	sc      *textline.Scanner
	sum     Summary
	blanks  int
	runes   []rune     // the record's characters, when it is not ASCII
	st      *statement // nil between statements
}

// text is columns from-to of the record, its accented letters kept.
func (r *reader) text(s string, from, to int) string {
	if len(r.runes) > 0 {
		return string(r.runes[from-1 : to])
	}
	return col(s, from, to)
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

type statement struct {
	line             int
	bank, branch     string
	account, ccy     string
	decimals         int32
	iban             string // or the domestic id, when no IBAN can be computed
	open             decimal.Decimal
	openDate         recon.Date
	movements        int
	credits, debits  decimal.Decimal
	pending          *movement
	ids              map[string]bool
	provisionalID    string
	recordsOfAccount string // bank, branch and account as records carry them
}

type movement struct {
	line        int
	dir         recon.Direction
	amt         decimal.Decimal
	booking     recon.Date
	value       recon.Date
	label       string
	code        string // interbank operation code
	complements int
	remittance  []string
	e2e         string
	mandate     string
	payer       string
	payee       string
	payerAcct   string
	payeeAcct   string
}

type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }

func (r *reader) send(rec any) error {
	if err := r.emit(rec); err != nil {
		r.emitErr = err
		return errEmit{err}
	}
	return nil
}

func (r *reader) fail(field, reason string) error {
	return &Error{File: r.file, Line: r.sc.Line(), Field: field, Reason: reason}
}

func (r *reader) limit(field, reason string) error {
	return &Error{File: r.file, Line: r.sc.Line(), Field: field, Reason: reason, Err: ErrLimit}
}

func (r *reader) run() error {
	for {
		s, err := r.sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var lim error
			if errors.Is(err, textline.ErrLimit) {
				lim = ErrLimit
			}
			return &Error{File: r.file, Line: r.sc.Line(), Reason: err.Error(), Err: lim}
		}
		if strings.TrimSpace(s) == "" {
			if r.blanks++; r.blanks > r.lim.MaxBlankLines {
				return r.limit("", fmt.Sprintf("more than MaxBlankLines (%d) blank lines", r.lim.MaxBlankLines))
			}
			continue
		}
		if err := r.record(s); err != nil {
			return err
		}
	}
	if r.st != nil {
		return &Error{File: r.file, Line: r.st.line, Reason: "statement opened here (01) has no new balance (07) before the end of the file"}
	}
	if r.sum.Statements == 0 {
		return r.fail("", "no CFONB 120 statement (no 01 record)")
	}
	return nil
}

// record reads one 120-character record.
func (r *reader) record(s string) error {
	r.runes = r.runes[:0]
	if !ascii(s) {
		// text zones may hold accented letters: columns count characters
		r.runes = append(r.runes, []rune(s)...)
		b := make([]byte, len(r.runes))
		for i, c := range r.runes {
			b[i] = byte(c)
			if c >= 0x80 {
				b[i] = '?'
			}
		}
		s = string(b)
	}
	if len(s) != RecordLength {
		return r.fail("", fmt.Sprintf("record of %d characters; CFONB 120 records are %d", len(s), RecordLength))
	}
	code := s[0:2]
	switch code {
	case "01":
		return r.opening(s)
	case "04", "05", "07":
		if r.st == nil {
			return r.fail(code, "record outside a statement (no 01 before it)")
		}
	default:
		return r.fail("record code (1-2)", fmt.Sprintf("unknown record code %q (01, 04, 05, 07)", code))
	}
	if err := r.sameAccount(s); err != nil {
		return err
	}
	switch code {
	case "04":
		if err := r.flush(); err != nil {
			return err
		}
		return r.movement(s)
	case "05":
		return r.complement(s)
	}
	if err := r.flush(); err != nil {
		return err
	}
	return r.closing(s)
}

// col is the text of columns from-to, 1-based and inclusive as the CFONB
// specification counts them.
func col(s string, from, to int) string { return s[from-1 : to] }

func (r *reader) opening(s string) error {
	if r.st != nil {
		return r.fail("01", fmt.Sprintf("new statement before the new balance (07) of the statement opened at line %d", r.st.line))
	}
	if r.sum.Statements++; r.sum.Statements > r.lim.MaxStatements {
		return r.limit("01", fmt.Sprintf("more than MaxStatements (%d) statements in one file", r.lim.MaxStatements))
	}
	st := &statement{line: r.sc.Line(), bank: col(s, 3, 7), branch: col(s, 12, 16), ccy: col(s, 17, 19), account: col(s, 22, 32)}
	st.recordsOfAccount = st.account
	if !isCurrency(st.ccy) {
		return r.fail("01 currency (17-19)", fmt.Sprintf("%q is no currency code", st.ccy))
	}
	dec, err := r.decimals(s, st.ccy)
	if err != nil {
		return err
	}
	st.decimals = dec
	if st.openDate, err = r.date(s, 35, "01 date of the previous balance (35-40)"); err != nil {
		return err
	}
	if st.open, err = r.amount(s, dec, "01 previous balance (91-104)"); err != nil {
		return err
	}
	st.iban = accountID(st.bank, st.branch, st.account)
	st.provisionalID = st.bank + st.branch + strings.TrimSpace(st.account) + "/" + string(st.openDate)
	r.st = st
	return nil
}

// sameAccount checks a 04, 05 or 07 is of its statement's account and
// currency. Only the account number and currency are compared: anonymised
// files (and some banks) carry another bank code on movements.
func (r *reader) sameAccount(s string) error {
	st := r.st
	if a := col(s, 22, 32); a != st.account {
		return r.fail(s[:2]+" account (22-32)", fmt.Sprintf("account %q in a statement of account %q (line %d)", a, st.account, st.line))
	}
	if c := col(s, 17, 19); c != st.ccy {
		return r.fail(s[:2]+" currency (17-19)", fmt.Sprintf("currency %q in a statement in %s (line %d)", c, st.ccy, st.line))
	}
	if dec, err := r.decimals(s, st.ccy); err != nil {
		return err
	} else if dec != st.decimals {
		return r.fail(s[:2]+" decimals (20)", "number of decimals differs from the statement's")
	}
	return nil
}

func (r *reader) movement(s string) error {
	st := r.st
	if r.sum.Entries++; r.sum.Entries > r.lim.MaxMovements {
		return r.limit("04", fmt.Sprintf("more than MaxMovements (%d) movements in one file", r.lim.MaxMovements))
	}
	m := &movement{line: r.sc.Line(), code: strings.TrimSpace(col(s, 8, 11)), label: clean(r.text(s, 49, 79))}
	amt, err := r.amount(s, st.decimals, "04 amount (91-104)")
	if err != nil {
		return err
	}
	m.dir, m.amt = recon.Credit, amt
	if amt.IsNegative() || s[103] == '}' {
		m.dir, m.amt = recon.Debit, amt.Neg()
	}
	if m.booking, err = r.date(s, 35, "04 booking date (35-40)"); err != nil {
		return err
	}
	if strings.TrimSpace(col(s, 43, 48)) != "" {
		if m.value, err = r.date(s, 43, "04 value date (43-48)"); err != nil {
			return err
		}
	}
	st.pending = m
	return nil
}

func (r *reader) complement(s string) error {
	m := r.st.pending
	if m == nil {
		return r.fail("05", "complement before any movement (04) of its statement")
	}
	if m.complements++; m.complements > r.lim.MaxComplements {
		return r.limit("05", fmt.Sprintf("more than MaxComplements (%d) complements of one movement", r.lim.MaxComplements))
	}
	info := r.text(s, 49, 118)
	switch q := col(s, 46, 48); q {
	case "LIB", "LCC", "LC2":
		if t := clean(info); t != "" {
			m.remittance = append(m.remittance, t)
		}
	case "NPY":
		m.payer = clean(info)
	case "NBE":
		m.payee = clean(info)
	case "IPY":
		m.payerAcct = clean(info)
	case "IBE":
		m.payeeAcct = clean(info)
	case "RCN":
		if e := strings.TrimSpace(string([]rune(info)[:35])); !strings.EqualFold(e, "NOTPROVIDED") {
			m.e2e = e
		}
	case "RUM":
		m.mandate = strings.TrimSpace(string([]rune(info)[:35]))
	}
	return nil
}

// flush emits the pending movement as a transaction record.
func (r *reader) flush() error {
	st := r.st
	m := st.pending
	if m == nil {
		return nil
	}
	st.pending = nil
	st.movements++
	if m.dir == recon.Credit {
		st.credits = st.credits.Add(m.amt)
	} else {
		st.debits = st.debits.Add(m.amt)
	}
	amt := m.amt
	rec := recon.BankTransaction{
		Type: recon.TypeTransaction, Source: Source, MessageID: st.provisionalID, AccountIBAN: st.iban,
		Direction: m.dir, Amount: m.amt, Currency: st.ccy, Status: recon.Booked,
		BookingDate: m.booking, ValueDate: m.value, EndToEndID: m.e2e, MandateID: m.mandate,
		RemittanceInfo: strings.Join(append([]string{m.label}, m.remittance...), " "),
		EntryAmount:    &amt, BankTxCode: m.code,
	}
	name, acct := m.payer, m.payerAcct
	if m.dir == recon.Debit {
		name, acct = m.payee, m.payeeAcct
	}
	rec.CounterpartyName = name
	if acct != "" && recon.ValidIBAN(acct) == nil {
		rec.CounterpartyIBAN = recon.NormalizeIBAN(acct)
	}
	rec.ID = recon.IdentityKey(rec)
	if rec.ID == "" || st.ids[rec.ID] {
		rec.ID = recon.IdentityKey(recon.BankTransaction{AccountIBAN: st.iban, Direction: m.dir, EntryReference: st.provisionalID + "/" + strconv.Itoa(st.movements)})
	}
	if st.ids == nil {
		st.ids = make(map[string]bool)
	}
	st.ids[rec.ID] = true
	r.sum.Transactions++
	return r.send(rec)
}

func (r *reader) closing(s string) error {
	st := r.st
	r.st = nil
	closeDate, err := r.date(s, 35, "07 date of the new balance (35-40)")
	if err != nil {
		return err
	}
	closing, err := r.amount(s, st.decimals, "07 new balance (91-104)")
	if err != nil {
		return err
	}
	open := st.open
	rec := recon.Statement{
		Type: recon.TypeStatement, ID: st.provisionalID, Source: Source, MessageID: st.provisionalID,
		AccountIBAN: st.iban, FromDate: st.openDate, ToDate: closeDate, Currency: st.ccy,
		OpeningBalance: &open, ClosingBalance: &closing, ClosingDate: closeDate,
		BookedEntries: st.movements, BookedCredits: st.credits, BookedDebits: st.debits, BalanceCheck: "mismatch",
	}
	if open.Add(st.credits).Sub(st.debits).Equal(closing) {
		rec.BalanceCheck = "ok"
	}
	return r.send(rec)
}

// decimals reads column 20, which must be the currency's minor units.
func (r *reader) decimals(s, ccy string) (int32, error) {
	c := s[19]
	if c < '0' || c > '9' {
		return 0, r.fail(s[:2]+" decimals (20)", fmt.Sprintf("%q is no number of decimals", c))
	}
	dec := int32(c - '0')
	if want := minorUnits(ccy); dec != want {
		return 0, r.fail(s[:2]+" decimals (20)", fmt.Sprintf("%d decimals for %s, whose amounts have %d (ISO 4217)", dec, ccy, want))
	}
	return dec, nil
}

// amount reads columns 91-104: 13 digits and a signed last character.
func (r *reader) amount(s string, dec int32, field string) (decimal.Decimal, error) {
	a := col(s, 91, 104)
	digits, last := a[:13], a[13]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return decimal.Decimal{}, r.fail(field, fmt.Sprintf("amount %q is not 13 digits and a signed last character", a))
		}
	}
	var d byte
	neg := false
	switch {
	case last == '{':
		d = 0
	case last >= 'A' && last <= 'I':
		d = last - 'A' + 1
	case last == '}':
		d, neg = 0, true
	case last >= 'J' && last <= 'R':
		d, neg = last-'J'+1, true
	default:
		return decimal.Decimal{}, r.fail(field, fmt.Sprintf("amount %q ends in %q, not a signed digit ({, A-I, }, J-R)", a, last))
	}
	v, err := decimal.NewFromString(digits + string('0'+d))
	if err != nil {
		return decimal.Decimal{}, r.fail(field, err.Error())
	}
	v = v.Shift(-dec)
	if neg {
		v = v.Neg()
	}
	return v, nil
}

// date reads DDMMYY at column from; years 80-99 are 1980-1999, the others
// 2000-2079.
func (r *reader) date(s string, from int, field string) (recon.Date, error) {
	t := col(s, from, from+5)
	v, err := time.Parse("020106", t)
	if err != nil {
		return "", r.fail(field, fmt.Sprintf("invalid date %q (want DDMMYY)", t))
	}
	y := v.Year() % 100
	if y >= 80 {
		y += 1900
	} else {
		y += 2000
	}
	return recon.Date(fmt.Sprintf("%04d-%02d-%02d", y, v.Month(), v.Day())), nil
}

// accountID is the account's French IBAN, computed from the bank code,
// branch code, account number and the RIB key that follows from them; the
// domestic id "<bank> <branch> <account>" when they are not of the RIB's
// form.
func accountID(bank, branch, account string) string {
	if key, ok := ribKey(bank, branch, account); ok {
		return recon.IBANFor("FR", bank+branch+account+key)
	}
	return strings.Join(strings.Fields(bank+" "+branch+" "+account), " ")
}

// ribKey is the RIB key: 97 - (89·bank + 15·branch + 3·account) mod 97,
// letters of the account read as digits (A,J=1 B,K,S=2 ... I,R,Z=9).
func ribKey(bank, branch, account string) (string, bool) {
	if len(bank) != 5 || len(branch) != 5 || len(account) != 11 || !allDigits(bank) || !allDigits(branch) {
		return "", false
	}
	acct := make([]byte, len(account))
	for i := 0; i < len(account); i++ {
		c := account[i]
		switch {
		case c >= '0' && c <= '9':
			acct[i] = c
		case c >= 'A' && c <= 'I':
			acct[i] = '1' + c - 'A'
		case c >= 'J' && c <= 'R':
			acct[i] = '1' + c - 'J'
		case c >= 'S' && c <= 'Z':
			acct[i] = '2' + c - 'S'
		default:
			return "", false
		}
	}
	b, _ := strconv.ParseInt(bank, 10, 64)
	g, _ := strconv.ParseInt(branch, 10, 64)
	a, _ := strconv.ParseInt(string(acct), 10, 64)
	key := 97 - (89*b+15*g+3*a)%97
	return fmt.Sprintf("%02d", key), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isCurrency(c string) bool {
	return len(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] >= 'A' && c[2] <= 'Z'
}

// minorUnits is a currency's ISO 4217 minor units: 2 but for these.
func minorUnits(ccy string) int32 {
	switch ccy {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// clean is a text zone without its padding.
func clean(s string) string { return strings.Join(strings.Fields(s), " ") }
