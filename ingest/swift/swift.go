// Package swift reads SWIFT MT940 customer statements and MT942 interim
// transaction reports into recon records — the same statement and
// transaction records the ISO 20022 reader gives for camt — streaming one
// line at a time.
//
// A file holds one or more messages, each from its :20: to a "-" line (or
// the next :20:, or the end), with or without SWIFT's block envelope
// ({1:...}{2:...}{4: ... -}) and with the few lines of bank header some
// banks put before a message (at most Limits.MaxPreambleLines). Every
// message is a statement record; each :61: line, with the :86: fields after
// it, a transaction record. Amounts are exact decimals read from the text
// (decimal comma; "1234," and ",50" are read as written). Everything is
// bounded by Limits, and a file is rejected whole, with an *Error naming the
// line, the field and the reason, when any part of it is bad: a message
// without :25:, an MT940 without opening or closing balance, an unreadable
// :61:, balance or date.
//
// Identity of a transaction record: recon.IdentityKey over the :61: bank
// reference (after "//", unless NONREF) and the end-to-end id the :86:
// structure gives (German "EREF+", Dutch "/EREF/"), so an MT940 line and the
// camt.054 entry of the same movement (AcctSvcrRef, EndToEndId) get the same
// key. The :61: customer reference is not an identity: it is whatever the
// account owner typed, and two payments may share it. A line with neither
// reference, or whose key an earlier line of its message already took, is
// named by its position: "<message id>/<line index>" as its entry
// reference's key, where the message id is "<:20:>/<:28C:>/<opening balance
// date, or the :13D: date-time of an MT942>".
//
// :86: dialects read: the German ZKA/DK structure (a three-digit business
// code, then ?00 posting text, ?20-?29 and ?60-?63 remittance lines with the
// SEPA qualifiers EREF+, MREF+, CRED+, SVWZ+ ..., ?30 bank code or BIC, ?31
// account or IBAN, ?32-?33 name); the Dutch SEPA keys (/EREF/, /REMI/,
// /IBAN/, /BIC/, /NAME/, /CNTP/, /ORDP/, /BENM/, /MARF/, /RTRN/ ...); free
// text otherwise, kept as remittance text. A counterparty IBAN is kept only
// when it is one (recon.ValidIBAN), a BIC only when it has a BIC's form;
// nothing is guessed from free text.
package swift

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ingest/internal/textline"
)

// Message kinds, the Source of the records.
const (
	MT940 = "mt940"
	MT942 = "mt942"
)

// Summary describes a file that was read.
type Summary struct {
	File         string `json:"file"`
	Message      string `json:"message"` // mt940 or mt942: the first message's kind
	Bytes        int64  `json:"bytes"`
	Lines        int    `json:"lines"`
	Statements   int    `json:"statements"`
	Entries      int    `json:"entries"`
	Transactions int    `json:"transactions"`
}

// Read streams the records of one file to emit as it reads:
// recon.BankTransaction values as their :61: and :86: are complete, then
// each message's recon.Statement. name is used in errors only. On error the
// file is rejected whole, but records already emitted stay emitted: a
// streaming caller must treat everything emitted for a failed file as void
// (ReadAll does). An error from emit is returned as is.
func Read(r io.Reader, name string, lim Limits, emit func(rec any) error) (Summary, error) {
	lim = lim.withDefaults()
	rd := &reader{file: name, lim: lim, emit: emit, sc: textline.New(r, lim.MaxFileBytes, lim.MaxLineBytes)}
	rd.sum.File = name
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
	file     string
	lim      Limits
	emit     func(any) error
	emitErr  error
	sc       *textline.Scanner
	sum      Summary
	preamble int    // lines outside any message since the last one
	block2   string // the message type of the last {2:} block seen (940, 942)

	// the field being read
	tag     string
	tagLine int
	text    []string
	size    int

	msg  *message // nil outside a message
	dash bool     // a "-" line was read before the message's closing balance
}

// message is what one MT940/MT942 accumulates while its lines stream past.
type message struct {
	line           int // of its :20:
	kind           string
	ref, seq       string
	account        string
	hasAccount     bool
	ccy            string
	open, close    *balance
	floor          bool
	created        string // :13D: as RFC 3339
	createdRaw     string
	id             string // set at the first :61: or the end
	entries        int
	booked         int
	credits        decimal.Decimal
	debits         decimal.Decimal
	nCredits       int
	nDebits        int
	totalD, totalC *total
	pending        *entry
	ids            map[string]bool // identity keys given in this message
}

type balance struct {
	amt  decimal.Decimal // signed
	ccy  string
	date recon.Date
}

type total struct {
	n   int
	amt decimal.Decimal
	ccy string
}

// errEmit marks an error from the caller's emit.
type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }

func (r *reader) send(rec any) error {
	if err := r.emit(rec); err != nil {
		r.emitErr = err
		return errEmit{err}
	}
	return nil
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
		if err := r.line(s); err != nil {
			return err
		}
	}
	if r.msg != nil {
		if err := r.end(); err != nil {
			return err
		}
	}
	if r.sum.Statements == 0 {
		return r.fail(0, "", "no MT940/MT942 message (no :20: field)")
	}
	return nil
}

func (r *reader) fail(line int, field, reason string) error {
	return &Error{File: r.file, Line: line, Field: field, Reason: reason}
}

func (r *reader) limit(line int, field, reason string) error {
	return &Error{File: r.file, Line: line, Field: field, Reason: reason, Err: ErrLimit}
}

// failField is an error about the field being read.
func (r *reader) failField(reason string) error {
	return r.fail(r.tagLine, ":"+r.tag+":", reason)
}

// line reads one line, inside a message or between messages.
func (r *reader) line(s string) error {
	if r.msg == nil {
		return r.outside(s)
	}
	t := strings.TrimRight(s, " \t")
	if t == "" {
		return nil // blank lines between fields (some banks) carry nothing
	}
	if r.dash {
		// a "-" line before the closing balance: text of the field being
		// read when another field of the message follows, else the end
		r.dash = false
		if tag, _, ok := parseTag(t); ok && tag != "20" {
			r.text = append(r.text, "-")
		} else if err := r.end(); err != nil {
			return err
		} else {
			return r.outside(s)
		}
	}
	switch {
	case t == "-" && r.msg.close == nil && r.msg.kind != MT942 && r.msg.createdRaw == "":
		r.dash = true
		return nil
	case isEnd(t):
		return r.end()
	case strings.HasPrefix(t, "{1:") || strings.HasPrefix(t, "{2:"):
		// a new envelope without the end of the last message
		if err := r.end(); err != nil {
			return err
		}
		return r.outside(s)
	}
	if tag, rest, ok := parseTag(t); ok {
		return r.startField(tag, rest)
	}
	// a continuation of the field being read
	if len(r.text) >= r.lim.MaxFieldLines {
		return r.limit(r.tagLine, ":"+r.tag+":", fmt.Sprintf("field longer than MaxFieldLines (%d lines)", r.lim.MaxFieldLines))
	}
	if r.size += len(s); r.size > r.lim.MaxFieldBytes {
		return r.limit(r.tagLine, ":"+r.tag+":", fmt.Sprintf("field longer than MaxFieldBytes (%d)", r.lim.MaxFieldBytes))
	}
	r.text = append(r.text, strings.TrimRight(s, "\t"))
	return nil
}

// isEnd: "-" ends a message's text block, "-}" its SWIFT block 4.
func isEnd(t string) bool { return t == "-" || strings.HasPrefix(t, "-}") }

// outside reads a line between messages: envelopes, bank headers, blanks,
// or the :20: that starts the next message.
func (r *reader) outside(s string) error {
	t := strings.TrimSpace(s)
	if t == "" || isEnd(t) {
		return nil
	}
	if i := strings.Index(t, "{2:"); i >= 0 && len(t) >= i+7 {
		r.block2 = t[i+4 : i+7] // {2:I940... or {2:O940...
	}
	if i := strings.Index(t, "{4:"); i >= 0 {
		if t = strings.TrimSpace(t[i+3:]); t == "" {
			return nil
		}
	}
	if tag, rest, ok := parseTag(t); ok {
		if tag != "20" {
			return r.fail(r.sc.Line(), ":"+tag+":", "field outside a message: no :20: before it")
		}
		return r.start(rest)
	}
	if r.preamble++; r.preamble > r.lim.MaxPreambleLines {
		return r.limit(r.sc.Line(), "", fmt.Sprintf("more than MaxPreambleLines (%d) lines that are no MT940/MT942 field outside a message", r.lim.MaxPreambleLines))
	}
	return nil
}

// parseTag splits ":61:rest" into its tag and rest. A tag is two digits
// and an optional letter, or a bank's own letters (":NS:").
func parseTag(t string) (tag, rest string, ok bool) {
	if len(t) < 4 || t[0] != ':' {
		return "", "", false
	}
	end := strings.IndexByte(t[1:], ':')
	if end < 2 || end > 3 {
		return "", "", false
	}
	tag = t[1 : 1+end]
	if len(tag) == 3 && tag[2] == ' ' {
		tag = tag[:2] // ING writes ":86 :" for the statement's summary
	}
	switch {
	case isDigit(tag[0]) && isDigit(tag[1]) && (len(tag) == 2 || isUpper(tag[2])):
	case tag == "NS":
	default:
		return "", "", false
	}
	return tag, t[2+end:], true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// start opens a message at its :20:.
func (r *reader) start(ref string) error {
	if r.sum.Statements++; r.sum.Statements > r.lim.MaxStatements {
		return r.limit(r.sc.Line(), ":20:", fmt.Sprintf("more than MaxStatements (%d) messages in one file", r.lim.MaxStatements))
	}
	r.msg = &message{line: r.sc.Line()}
	switch r.block2 {
	case "940":
		r.msg.kind = MT940
	case "942":
		r.msg.kind = MT942
	}
	r.block2, r.preamble = "", 0
	r.tag, r.tagLine, r.text, r.size = "20", r.sc.Line(), append(r.text[:0], ref), len(ref)
	return nil
}

// startField ends the field being read and starts the next one.
func (r *reader) startField(tag, rest string) error {
	if err := r.field(); err != nil {
		return err
	}
	if tag != "86" {
		if err := r.flushEntry(); err != nil {
			return err
		}
	}
	if tag == "20" {
		if err := r.end(); err != nil {
			return err
		}
		return r.start(rest)
	}
	r.tag, r.tagLine, r.text, r.size = tag, r.sc.Line(), append(r.text[:0], rest), len(rest)
	return nil
}

// joined is a one-line field's text, its lines joined as they wrapped.
func (r *reader) joined() string {
	if len(r.text) == 1 {
		return strings.TrimSpace(r.text[0])
	}
	var b strings.Builder
	for _, l := range r.text {
		b.WriteString(strings.TrimSpace(l))
	}
	return b.String()
}

// field reads the field just completed into the message.
func (r *reader) field() error {
	m := r.msg
	if r.tag == "" {
		return nil
	}
	defer func() { r.tag = "" }()
	switch r.tag {
	case "20":
		if m.ref = r.joined(); m.ref == "" {
			return r.failField("empty transaction reference")
		}
	case "25":
		if m.hasAccount {
			return r.failField("second :25: account in one message")
		}
		if m.account = accountID(r.joined()); m.account == "" {
			return r.failField("empty account identification")
		}
		m.hasAccount = true
	case "28", "28C":
		m.seq = r.joined()
	case "60F", "60M":
		if m.open != nil {
			return r.failField("second opening balance in one message")
		}
		b, err := r.balance()
		if err != nil {
			return err
		}
		m.open = b
		if m.ccy == "" {
			m.ccy = b.ccy
		}
	case "62F", "62M":
		if m.close != nil {
			return r.failField("second closing balance in one message")
		}
		b, err := r.balance()
		if err != nil {
			return err
		}
		m.close = b
	case "64", "65":
		if _, err := r.balance(); err != nil {
			return err
		}
	case "34F":
		return r.floorLimit()
	case "13D":
		return r.dateTime()
	case "90D", "90C":
		return r.total()
	case "61":
		return r.statementLine()
	case "86":
		if m.pending != nil {
			m.pending.info = append(m.pending.info, r.text...)
		}
		// an :86: after no :61: is information for the whole statement
	}
	// :21:, :NS: and fields of no use to recon are passed over
	return nil
}

// end closes the message being read and emits its statement.
func (r *reader) end() error {
	if err := r.field(); err != nil {
		return err
	}
	if err := r.flushEntry(); err != nil {
		return err
	}
	m := r.msg
	r.msg, r.dash = nil, false
	where := func(reason string) error {
		return r.fail(m.line, "", fmt.Sprintf("message %q starting here: %s", m.ref, reason))
	}
	r.settle(m)
	if !m.hasAccount {
		return where("no :25: account")
	}
	if m.kind == MT940 {
		switch {
		case m.open == nil:
			return where("no opening balance :60F:/:60M:")
		case m.close == nil:
			return where("no closing balance :62F:/:62M:")
		}
	}
	if r.sum.Message == "" {
		r.sum.Message = m.kind
	}
	return r.send(r.statement(m))
}

// settle fixes a message's kind and id, once its heading fields are read:
// at its first :61:, or at its end.
func (r *reader) settle(m *message) {
	if m.id != "" {
		return
	}
	if m.kind == "" {
		m.kind = MT940
		if m.open == nil && (m.floor || m.createdRaw != "" || m.totalC != nil || m.totalD != nil) {
			m.kind = MT942
		}
	}
	anchor := "-"
	switch {
	case m.open != nil && m.open.date != "":
		anchor = string(m.open.date)
	case m.createdRaw != "":
		anchor = m.createdRaw
	}
	m.id = m.ref + "/" + m.seq + "/" + anchor
}

func (r *reader) statement(m *message) recon.Statement {
	st := recon.Statement{
		Type: recon.TypeStatement, ID: m.id, Source: m.kind, MessageID: m.id, AccountIBAN: m.account,
		SequenceNumber: m.seq, CreatedAt: m.created, Currency: m.ccy,
		BookedEntries: m.booked, BookedCredits: m.credits, BookedDebits: m.debits, BalanceCheck: "n/a",
	}
	if m.open != nil {
		st.OpeningBalance = &m.open.amt
	}
	if m.close != nil {
		st.ClosingBalance = &m.close.amt
		st.ClosingDate = m.close.date
	}
	switch {
	case m.open != nil && m.close != nil:
		if m.open.ccy == m.close.ccy {
			st.BalanceCheck = check(m.open.amt.Add(m.credits).Sub(m.debits).Equal(m.close.amt))
		}
	case m.totalD != nil || m.totalC != nil:
		// an interim report's own arithmetic: its :90D:/:90C: totals
		ok := true
		for _, t := range []struct {
			tot *total
			n   int
			amt decimal.Decimal
		}{{m.totalD, m.nDebits, m.debits}, {m.totalC, m.nCredits, m.credits}} {
			if t.tot != nil && (t.tot.n != t.n || !t.tot.amt.Equal(t.amt) || t.tot.ccy != m.ccy) {
				ok = false
			}
		}
		st.BalanceCheck = check(ok)
	}
	return st
}

func check(ok bool) string {
	if ok {
		return "ok"
	}
	return "mismatch"
}
