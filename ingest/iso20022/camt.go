package iso20022

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

// camt reads a camt.052/053/054 message: GrpHdr, then each Rpt/Stmt/Ntfctn.
func (r *reader) camt(start string) error {
	n := 0
	err := r.children(start, func(se string) error {
		switch se {
		case "GrpHdr":
			root, err := r.subtree(se)
			if err != nil {
				return err
			}
			r.msgID = r.t.str(root, "MsgId")
			r.sum.MessageID = r.msgID
			return nil
		case "Stmt", "Rpt", "Ntfctn":
			n++
			return r.statement(se, n)
		}
		return r.skip(se)
	})
	if err == nil && n == 0 {
		return r.fail(r.sub(start), "no Stmt, Rpt or Ntfctn in the message")
	}
	return err
}

// stmt is what a statement accumulates while its entries stream past.
type stmt struct {
	index                     int
	id, seq, legalSeq, create string
	from, to                  recon.Date
	iban, ccy                 string
	hasAcct                   bool
	opbd, prcd, clbd          *balance
	entries, booked           int
	credits, debits           decimal.Decimal
	ccys                      []string // currencies of balances and booked entries
}

type balance struct {
	amt  decimal.Decimal // signed
	ccy  string
	date recon.Date
}

func (s *stmt) addCcy(c string) {
	for _, x := range s.ccys {
		if x == c {
			return
		}
	}
	s.ccys = append(s.ccys, c)
}

func (r *reader) statement(start string, index int) error {
	s := &stmt{index: index}
	err := r.children(start, func(se string) error {
		switch se {
		case "Id", "ElctrncSeqNb", "LglSeqNb", "CreDtTm", "FrToDt", "Acct", "Bal", "Ntry":
		default:
			return r.skip(se)
		}
		root, err := r.subtree(se)
		if err != nil {
			return err
		}
		t := &r.t
		switch se {
		case "Id":
			s.id = t.str(root, "")
		case "ElctrncSeqNb":
			s.seq = t.str(root, "")
		case "LglSeqNb":
			s.legalSeq = t.str(root, "")
		case "CreDtTm":
			s.create = t.str(root, "")
		case "FrToDt":
			s.from, s.to = datePart(t.str(root, "FrDtTm")), datePart(t.str(root, "ToDtTm"))
		case "Acct":
			s.hasAcct = true
			s.iban = t.str(root, "Id/IBAN")
			if s.iban == "" {
				s.iban = t.str(root, "Id/Othr/Id")
			}
			s.ccy = t.str(root, "Ccy")
		case "Bal":
			return r.balance(root, s)
		case "Ntry":
			if !s.hasAcct {
				return r.failAt(root, "Ntry before the statement's Acct")
			}
			return r.entry(root, s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r.send(r.statementRecord(s))
}

func (r *reader) balance(n int32, s *stmt) error {
	t := &r.t
	amt, ccy, ok, err := r.amount(n, "Amt")
	if err != nil {
		return err
	}
	if !ok {
		return r.failAt(n, "balance without Amt")
	}
	dir, err := r.indicator(n)
	if err != nil {
		return err
	}
	b := &balance{amt: amt, ccy: ccy}
	if dir == recon.Debit {
		b.amt = b.amt.Neg()
	}
	if d := t.at(n, "Dt"); d != none {
		if b.date, err = r.date(d); err != nil {
			return err
		}
	}
	switch t.str(n, "Tp/CdOrPrtry/Cd") {
	case "OPBD":
		if s.opbd == nil {
			s.opbd = b
		}
	case "PRCD":
		if s.prcd == nil {
			s.prcd = b
		}
	case "CLBD":
		if s.clbd == nil {
			s.clbd = b
		}
	}
	return nil
}

func (r *reader) statementRecord(s *stmt) recon.Statement {
	id := s.id
	if id == "" {
		id = "#" + strconv.Itoa(s.index)
	}
	st := recon.Statement{
		Type: recon.TypeStatement, ID: r.msgID + "/" + id, Source: r.source, MessageID: r.msgID,
		AccountIBAN: s.iban, SequenceNumber: s.seq, LegalSequenceNumber: s.legalSeq, CreatedAt: s.create,
		FromDate: s.from, ToDate: s.to, Currency: s.ccy,
		BookedEntries: s.booked, BookedCredits: s.credits, BookedDebits: s.debits, BalanceCheck: "n/a",
	}
	open := s.opbd
	if open == nil {
		open = s.prcd
	}
	for _, b := range []*balance{open, s.clbd} {
		if b != nil {
			s.addCcy(b.ccy)
			if st.Currency == "" {
				st.Currency = b.ccy
			}
		}
	}
	if open != nil {
		st.OpeningBalance = &open.amt
	}
	if s.clbd != nil {
		st.ClosingBalance = &s.clbd.amt
		st.ClosingDate = s.clbd.date
	}
	if open != nil && s.clbd != nil && len(s.ccys) == 1 {
		st.BalanceCheck = "mismatch"
		if open.amt.Add(s.credits).Sub(s.debits).Equal(s.clbd.amt) {
			st.BalanceCheck = "ok"
		}
	}
	r.sum.Statements++
	return st
}

// entry turns one Ntry into its records, which sum to the entry's amount.
func (r *reader) entry(n int32, s *stmt) error {
	t := &r.t
	s.entries++
	r.sum.Entries++
	e, err := r.entryHead(n)
	if err != nil {
		return err
	}
	if e.status == recon.Booked {
		s.booked++
		s.addCcy(e.ccy)
		if e.dir == recon.Credit {
			s.credits = s.credits.Add(e.amt)
		} else {
			s.debits = s.debits.Add(e.amt)
		}
	}
	entryAmt := e.amt // shared by the entry's records
	base := recon.BankTransaction{
		Type: recon.TypeTransaction, Source: r.source, MessageID: r.msgID, AccountIBAN: s.iban,
		Direction: e.dir, Currency: e.ccy, Status: e.status, BookingDate: e.booking, ValueDate: e.value,
		EntryReference: e.ref, EntryAmount: &entryAmt, Reversal: e.reversal, BankTxCode: e.code,
	}
	// The entry's fallback reference and key are needed only when a record
	// has no reference of its own, or for charges and remainders.
	var fallback, entryKey string
	var haveKey bool
	fallbackRef := func() string {
		if fallback == "" {
			if fallback = e.ref; fallback == "" {
				fallback = r.msgID + "/" + strconv.Itoa(s.index) + "/" + strconv.Itoa(s.entries)
			}
		}
		return fallback
	}
	key := func() string {
		if !haveKey {
			entryKey, haveKey = recon.IdentityKey(recon.BankTransaction{AccountIBAN: s.iban, Direction: e.dir, BankReference: e.bankRef, EntryReference: fallbackRef()}), true
		}
		return entryKey
	}

	details := r.details[:0]
	t.each(n, "NtryDtls", func(nd int32) { t.each(nd, "TxDtls", func(d int32) { details = append(details, d) }) })
	r.details = details

	recs := r.recs[:0]
	var charges []recon.BankTransaction
	if len(details) == 0 {
		rec := base
		rec.Amount = e.amt
		rec.BankReference = e.bankRef
		rec.Charges = e.charges
		if rec.ID = recon.IdentityKey(rec); rec.ID == "" {
			rec.ID = recon.IdentityKey(recon.BankTransaction{AccountIBAN: s.iban, Direction: e.dir, EntryReference: fallbackRef()})
		}
		recs = append(recs, rec)
	}
	for i, d := range details {
		rec, err := r.detail(d, base, e, s, len(details) == 1)
		if err != nil {
			return err
		}
		ref := func() string {
			if e.ref == "" && len(details) == 1 {
				return fallbackRef()
			}
			return fallbackRef() + "#" + strconv.Itoa(i+1)
		}
		// The key of the record with ref as its entry reference; the
		// reference counts only when the record has no other.
		own := rec.EntryReference
		rec.EntryReference = ""
		rec.ID = recon.IdentityKey(rec)
		rec.EntryReference = own
		if rec.ID == "" {
			k := rec
			k.EntryReference = ref()
			rec.ID = recon.IdentityKey(k)
		}
		for _, p := range recs {
			if p.ID == rec.ID {
				rec.ID = recon.IdentityKey(recon.BankTransaction{AccountIBAN: s.iban, Direction: rec.Direction, EntryReference: ref()})
				break
			}
		}
		recs = append(recs, rec)
		if rec.Charges != nil && rec.Charges.Currency == e.ccy {
			charges = append(charges, chargeRecord(base, rec.ID, rec.Charges.Amount))
		}
	}
	if len(details) > 0 && len(charges) == 0 && e.charges != nil && e.charges.Currency == e.ccy {
		charges = append(charges, chargeRecord(base, key(), e.charges.Amount))
	}
	// The common case, one record carrying the entry's amount, needs no sums.
	if len(recs) != 1 || recs[0].Direction != e.dir || !recs[0].Amount.Equal(e.amt) {
		want := signed(e.dir, e.amt)
		diff := want.Sub(sum(recs))
		if !diff.IsZero() && len(details) > 0 {
			recs = append(recs, charges...)
			diff = want.Sub(sum(recs))
		}
		if !diff.IsZero() {
			rem := base
			rem.ID = key() + ":remainder"
			rem.Remainder = true
			rem.Direction, rem.Amount = recon.Credit, diff
			if diff.IsNegative() {
				rem.Direction, rem.Amount = recon.Debit, diff.Neg()
			}
			recs = append(recs, rem)
		}
	}
	if entryHook != nil {
		entryHook(signed(e.dir, e.amt), e.ccy, e.status, recs)
	}
	for _, rec := range recs {
		r.sum.Transactions++
		if err := r.send(rec); err != nil {
			return err
		}
	}
	r.recs = recs[:0]
	return nil
}

// entryHook lets tests see each entry's records next to its signed amount.
var entryHook func(want decimal.Decimal, ccy string, status recon.Status, recs []recon.BankTransaction)

func chargeRecord(base recon.BankTransaction, parent string, amt decimal.Decimal) recon.BankTransaction {
	c := base
	c.ID = parent + ":charges"
	c.IsCharge = true
	c.Direction = recon.Debit
	c.Amount = amt
	c.BankTxCode = base.BankTxCode
	return c
}

func signed(d recon.Direction, a decimal.Decimal) decimal.Decimal {
	if d == recon.Debit {
		return a.Neg()
	}
	return a
}

func sum(recs []recon.BankTransaction) decimal.Decimal {
	var s decimal.Decimal
	for _, r := range recs {
		s = s.Add(signed(r.Direction, r.Amount))
	}
	return s
}

// head is what an Ntry says about itself, before its details.
type head struct {
	amt      decimal.Decimal
	ccy      string
	dir      recon.Direction
	status   recon.Status
	booking  recon.Date
	value    recon.Date
	ref      string // NtryRef
	bankRef  string // AcctSvcrRef
	reversal bool
	code     string
	charges  *recon.Money
}

func (r *reader) entryHead(n int32) (head, error) {
	t := &r.t
	var e head
	amt, ccy, ok, err := r.amount(n, "Amt")
	if err != nil {
		return e, err
	}
	if !ok {
		return e, r.failAt(n, "Ntry without Amt")
	}
	e.amt, e.ccy = amt, ccy
	if e.dir, err = r.indicator(n); err != nil {
		return e, err
	}
	if e.dir == "" {
		return e, r.failAt(n, "Ntry without CdtDbtInd")
	}
	sts := t.str(n, "Sts")
	if sts == "" {
		sts = t.str(n, "Sts/Cd")
	}
	if sts == "" {
		sts = t.str(n, "Sts/Prtry")
	}
	switch sts {
	case "", "BOOK":
		e.status = recon.Booked
	case "PDNG", "FUTR":
		e.status = recon.Pending
	case "INFO":
		e.status = recon.Info
	default:
		return e, r.failAt(t.at(n, "Sts"), fmt.Sprintf("unknown entry status %q", sts))
	}
	for _, d := range []struct {
		name string
		to   *recon.Date
	}{{"BookgDt", &e.booking}, {"ValDt", &e.value}} {
		if *d.to, err = r.date(t.at(n, d.name)); err != nil {
			return e, err
		}
	}
	e.ref = t.str(n, "NtryRef")
	e.bankRef = t.str(n, "AcctSvcrRef")
	rv := strings.ToLower(t.str(n, "RvslInd"))
	e.reversal = rv == "true" || rv == "1"
	e.code = r.txCode(t.at(n, "BkTxCd"))
	if e.charges, err = r.charges(n, e.ccy); err != nil {
		return e, err
	}
	return e, nil
}

// detail is one TxDtls as a record; its amount is in the entry currency.
func (r *reader) detail(d int32, rec recon.BankTransaction, e head, s *stmt, single bool) (recon.BankTransaction, error) {
	t := &r.t
	dir, err := r.indicator(d)
	if err != nil {
		return rec, err
	}
	if dir != "" {
		rec.Direction = dir
	}
	// Candidates for the amount, best first; the first in the entry currency wins.
	var primary recon.Money
	found, hasPrimary := false, false
	for _, p := range []struct {
		at   int32
		name string
	}{{d, "Amt"}, {t.at(d, "AmtDtls/TxAmt"), "Amt"}, {t.at(d, "AmtDtls/CntrValAmt"), "Amt"}, {t.at(d, "AmtDtls/InstdAmt"), "Amt"}, {t.at(d, "AmtDtls/AnncdPstngAmt"), "Amt"}} {
		if p.at == none {
			continue
		}
		a, c, ok, err := r.amount(p.at, p.name)
		if err != nil {
			return rec, err
		}
		if !ok {
			continue
		}
		if !hasPrimary {
			primary, hasPrimary = recon.Money{Amount: a, Currency: c}, true
		}
		if c == e.ccy {
			rec.Amount, found = a, true
			break
		}
	}
	if ia := t.at(d, "AmtDtls/InstdAmt"); ia != none {
		if a, c, ok, _ := r.amount(ia, "Amt"); ok {
			rec.InstructedAmount = &recon.Money{Amount: a, Currency: c}
		}
	}
	if !found {
		// No amount in the entry currency: a lone detail is the entry;
		// otherwise the remainder record carries it.
		rec.Amount = decimal.Zero
		if single {
			rec.Amount = e.amt
		}
		if hasPrimary && rec.InstructedAmount == nil {
			m := primary
			rec.InstructedAmount = &m
		}
	}
	if rec.Charges, err = r.charges(d, e.ccy); err != nil {
		return rec, err
	}
	rec.BankReference = t.str(d, "Refs/AcctSvcrRef")
	if rec.BankReference == "" && single {
		rec.BankReference = e.bankRef
	}
	if e2e := t.str(d, "Refs/EndToEndId"); !strings.EqualFold(e2e, "NOTPROVIDED") {
		rec.EndToEndID = e2e
	}
	rec.TransactionID = t.str(d, "Refs/TxId")
	rec.MandateID = t.str(d, "Refs/MndtId")
	if c := r.txCode(t.at(d, "BkTxCd")); c != "" {
		rec.BankTxCode = c
	}
	rec.ReturnReason = t.str(d, "RtrInf/Rsn/Cd")
	if rec.ReturnReason == "" {
		rec.ReturnReason = t.str(d, "RtrInf/Rsn/Prtry")
	}
	r.parties(d, &rec, s.iban)
	r.remittance(d, &rec)
	return rec, nil
}

// parties fills the counterparty — the debtor of a credit, the creditor of
// a debit, or the other side when that one is absent (a returned direct
// debit names only its debtor) — and the virtual IBAN: the account on our
// side when it is not the statement's.
func (r *reader) parties(d int32, rec *recon.BankTransaction, account string) {
	t := &r.t
	rp := t.at(d, "RltdPties")
	them, us := "Dbtr", "Cdtr"
	if rec.Direction == recon.Debit {
		them, us = us, them
	}
	// A returned direct debit names only its debtor (the borrower): on a
	// debit, take the other side when ours is all there is. A credit that
	// names only its creditor account names the lender's (virtual) account.
	if rec.Direction == recon.Debit && t.at(rp, them) == none && t.at(rp, them+"Acct") == none && (t.at(rp, us) != none || t.at(rp, us+"Acct") != none) {
		them, us = us, them
	}
	p := t.at(rp, them)
	for _, path := range []string{"Nm", "Pty/Nm", "Agt/FinInstnId/Nm"} {
		if rec.CounterpartyName = t.str(p, path); rec.CounterpartyName != "" {
			break
		}
	}
	rec.CounterpartyIBAN = t.str(rp, them+"Acct/Id/IBAN")
	for _, path := range []string{"FinInstnId/BICFI", "FinInstnId/BIC"} {
		if rec.CounterpartyBIC = t.str(t.at(d, "RltdAgts/"+them+"Agt"), path); rec.CounterpartyBIC != "" {
			break
		}
	}
	if v := t.str(rp, us+"Acct/Id/IBAN"); v != "" && normIBAN(v) != normIBAN(account) {
		rec.VirtualIBAN = v
	}
}

func normIBAN(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }

// remittance joins the unstructured lines and takes the first creditor
// reference; an RF reference with wrong check digits stays in the text only.
func (r *reader) remittance(d int32, rec *recon.BankTransaction) {
	t := &r.t
	ri := t.at(d, "RmtInf")
	parts := make([]string, 0, 4)
	t.each(ri, "Ustrd", func(u int32) {
		if s := strings.TrimSpace(t.nodes[u].text); s != "" {
			parts = append(parts, s)
		}
	})
	t.each(ri, "Strd", func(sd int32) {
		ref := t.str(sd, "CdtrRefInf/Ref")
		if ref == "" {
			return
		}
		if strings.HasPrefix(strings.ToUpper(ref), "RF") && recon.ValidRF(ref) != nil {
			parts = append(parts, ref)
			return
		}
		if rec.CreditorReference == "" {
			rec.CreditorReference = ref
		}
	})
	rec.RemittanceInfo = strings.Join(parts, " ")
}

// charges totals an element's Chrgs in the entry currency: TtlChrgsAndTaxAmt,
// else its Rcrd/Amt (version 04 on), else Chrgs/Amt (version 02).
func (r *reader) charges(n int32, ccy string) (*recon.Money, error) {
	t := &r.t
	var total decimal.Decimal
	var any bool
	var err error
	add := func(at int32) {
		if err != nil {
			return
		}
		a, c, ok, e := r.amount(at, "Amt")
		if e != nil {
			err = e
			return
		}
		if !ok {
			return
		}
		if c == ccy {
			total, any = total.Add(a), true
		}
	}
	t.each(n, "Chrgs", func(c int32) {
		if tt := t.child(c, "TtlChrgsAndTaxAmt"); tt != none {
			a, cc, e := r.amountNode(tt)
			if e != nil {
				err = e
				return
			}
			if cc == ccy {
				total, any = total.Add(a), true
			}
			return
		}
		t.each(c, "Rcrd", add)
		add(c)
	})
	if err != nil || !any || total.IsZero() {
		return nil, err
	}
	return &recon.Money{Amount: total, Currency: ccy}, nil
}

// txCode is a BkTxCd as "PMNT/RCDT/ESCT", else its proprietary code; the
// few codes a file uses are joined once.
func (r *reader) txCode(n int32) string {
	t := &r.t
	if n == none {
		return ""
	}
	var parts [3]string
	k := 0
	for _, p := range [...]string{"Domn/Cd", "Domn/Fmly/Cd", "Domn/Fmly/SubFmlyCd"} {
		if s := t.str(n, p); s != "" {
			parts[k], k = s, k+1
		}
	}
	if k > 0 {
		if c, ok := r.codes[parts]; ok {
			return c
		}
		c := strings.Join(parts[:k], "/")
		if r.codes == nil {
			r.codes = make(map[[3]string]string)
		}
		if len(r.codes) < 1024 {
			r.codes[parts] = c
		}
		return c
	}
	return t.str(n, "Prtry/Cd")
}

// amount reads the single child name of n as an amount with its Ccy; ok
// is false when it is absent, an error when present twice or malformed.
func (r *reader) amount(n int32, name string) (a decimal.Decimal, ccy string, ok bool, err error) {
	t := &r.t
	first := t.child(n, name)
	if first == none {
		return a, "", false, nil
	}
	for second := t.nodes[first].next; second != none; second = t.nodes[second].next {
		if t.nodes[second].name == name {
			return a, "", false, r.failAt(second, name+" appears more than once")
		}
	}
	a, ccy, err = r.amountNode(first)
	return a, ccy, true, err
}

func (r *reader) amountNode(n int32) (decimal.Decimal, string, error) {
	nd := r.t.nodes[n]
	a, err := parseAmount(nd.text, r.lim.MaxAmountDigits)
	if err != nil {
		return a, "", r.failAt(n, err.Error())
	}
	c := strings.TrimSpace(nd.ccy)
	if !validCurrency(c) {
		return a, "", r.failAt(n, fmt.Sprintf("amount without a valid Ccy attribute (%q)", c))
	}
	return a, c, nil
}

// indicator reads n's CdtDbtInd: "" when absent.
func (r *reader) indicator(n int32) (recon.Direction, error) {
	t := &r.t
	if t.count(n, "CdtDbtInd") > 1 {
		return "", r.failAt(n, "CdtDbtInd appears more than once")
	}
	switch v := t.str(n, "CdtDbtInd"); v {
	case "CRDT":
		return recon.Credit, nil
	case "DBIT":
		return recon.Debit, nil
	case "":
		return "", nil
	default:
		return "", r.failAt(t.child(n, "CdtDbtInd"), fmt.Sprintf("CdtDbtInd %q is neither CRDT nor DBIT", v))
	}
}

// date reads a DateAndDateTimeChoice (Dt or DtTm) as a date; "" when n is none.
func (r *reader) date(n int32) (recon.Date, error) {
	t := &r.t
	if n == none {
		return "", nil
	}
	s := t.str(n, "Dt")
	if s == "" {
		s = t.str(n, "DtTm")
	}
	if s == "" {
		return "", nil
	}
	d := datePart(s)
	if !r.validDate(d) {
		return "", r.failAt(n, fmt.Sprintf("invalid date %q", s))
	}
	return d, nil
}

// validDate is d.Valid(), remembering the last valid date: a statement's
// entries mostly share their dates.
func (r *reader) validDate(d recon.Date) bool {
	if d != "" && d == r.lastDate {
		return true
	}
	if !d.Valid() {
		return false
	}
	r.lastDate = d
	return true
}

func datePart(s string) recon.Date {
	if len(s) > 10 {
		s = s[:10]
	}
	return recon.Date(s)
}
