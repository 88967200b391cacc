package matcher

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// Entry kinds in the journal: the vocabulary's (recon.Entry*), named here
// too while the matcher's code says EntryX.
const (
	EntryRepayment     = recon.EntryRepayment
	EntryRematchIn     = recon.EntryRematchIn
	EntryRelease       = recon.EntryRelease
	EntrySuspense      = recon.EntrySuspense
	EntryReversal      = recon.EntryReversal
	EntryCreditApplied = recon.EntryCreditApplied
	EntryRefund        = recon.EntryRefund
	EntryBankFees      = recon.EntryBankFees
	EntryOwnAccount    = recon.EntryOwnAccount
	EntryDisbursement  = recon.EntryDisbursement
	EntryDebitReversal = recon.EntryDebitReversal
	EntryTakeBack      = recon.EntryTakeBack
	EntryUnassign      = recon.EntryUnassign
	EntryRepark        = recon.EntryRepark
	EntryReview        = recon.EntryReview
	EntryReviewClosed  = recon.EntryReviewClosed
)

// Parts of a loan's receivable, in waterfall order.
const (
	partFees = iota
	partInterest
	partPrincipal
)

var partNames = [3]string{"fees", "interest", "principal"}

// Poster books routed transactions for the loans of one journal partition.
// Its whole state is a function of that partition's journal: Post and
// Restore go through the same apply, so a restart that replays the journal
// arrives at the state the crashed instance had. The state lives in a KV
// (state.go): memory holds the hot path only, and Open rebuilds it from the
// KV, so a restart replays only the journal's tail. Hot state is kept in
// minor units of each loan's currency (int64), converted exactly at the
// boundary.
type Poster struct {
	loans  *Loans
	router *Router
	kv     KV
	err    error                 // the first value of kv that did not decode
	state  map[string]*loanState // running totals of the loans used since Open
	items  map[string]*Item      // open suspense items of this partition, by item id
	fresh  []string              // items parked since the last Rematch
	// returns indexes the open items that are outgoing returns by the
	// end-to-end id of what they return, so a repayment finds the return
	// waiting for it without scanning suspense.
	returns  map[string][]string
	credited map[string]bool // loans holding borrower credit
	// currencies holds one copy of each currency code met, so a million
	// loans' totals share a few strings.
	currencies map[string]string
	// borrowers holds the credit of the borrowers used since Open
	// (borrower.go).
	borrowers map[string]*borrowerState
	// Allocation is the policy for money paid to a borrower's virtual
	// IBAN: AllocOldestDue (the default) or AllocProRata.
	Allocation string
	Head       ledger.Head
}

// Item is money parked in suspense, waiting for a loan or a person, or a
// review item (Kind "conflict") that moves no money.
type Item struct {
	ID          string // the transaction id, or the review item's id
	Kind        string // "money" or "conflict"
	Transaction recon.BankTransaction
	Amount      decimal.Decimal // what is parked: the transaction's amount, or a share taken back
	LoanID      string          // set when the loan is known but the money could not be allocated
	Reason      string
	Since       time.Time
	EntryID     string
	Round       int // how many times the item was assigned
}

// Item kinds (the vocabulary's).
const (
	ItemMoney    = recon.ItemMoney
	ItemConflict = recon.ItemConflict
)

type loanState struct {
	currency   string
	paid       [3]int64 // part -> credits minus debits, minor units
	credit     int64    // borrower credit (overpayments)
	disbursed  int64    // principal paid out to the borrower
	creditRuns int      // credit-applied entries not caused by a transaction
	// inexact: the journal holds an amount of this loan finer than its
	// currency allows (booked before amounts were checked); its state is
	// not exact, so what arrives for it is parked for a person.
	inexact bool
}

const inexactReason = "the loan's journal holds amounts finer than its currency allows; resolve by hand"

func orZero(v int64, err error) int64 {
	if err != nil {
		return 0
	}
	return v
}

// alloc is what one incoming transaction booked on a loan.
type alloc struct {
	total    int64
	parts    [3]int64
	credit   int64
	e2e      string
	round    int
	rematch  bool
	reversed bool
}

type outgoing struct {
	txnID   string
	kind    string
	account string // the account debited
	amount  int64
}

// NewPoster returns a Poster for one journal partition that has booked
// nothing, keeping its state in a MemKV (see Open for another KV).
func NewPoster(loans *Loans) *Poster {
	p := &Poster{loans: loans, router: NewRouter(loans)}
	if err := p.Open(NewMemKV()); err != nil {
		panic("matcher: open an empty MemKV: " + err.Error())
	}
	return p
}

// SetOwnAccounts configures the lender's own IBANs for the Poster's
// re-matching (see Router.OwnAccounts).
func (p *Poster) SetOwnAccounts(own map[string]bool) { p.router.OwnAccounts = own }

// SetLoanReference configures the lender's loan reference format for the
// Poster's re-matching (see Router.LoanReference).
func (p *Poster) SetLoanReference(re *regexp.Regexp) { p.router.LoanReference = re }

// Restore replays one journal entry of this partition (in offset order).
func (p *Poster) Restore(e recon.Entry) {
	p.apply(e)
	p.setHead(ledger.Head{Sequence: e.Sequence, Hash: e.Hash})
}

// Items lists the open suspense items of this partition.
func (p *Poster) Items() []Item {
	out := make([]Item, 0, len(p.items))
	for _, id := range p.itemIDs() {
		out = append(out, *p.items[id])
	}
	return out
}

// Result is what one routed record produces: sealed entries for the
// journal, records to route further (suspense released to loans), and the
// decision to publish, if any.
type Result struct {
	Entries  []recon.Entry
	Routed   []Routed
	Decision *recon.Decision
}

// Post books one routed record at instant now.
func (p *Poster) Post(now time.Time, r Routed) Result {
	switch r.Kind {
	case KindAssign:
		return p.assign(now, r)
	case KindRematch:
		return p.rematchIn(now, r)
	case KindConflict:
		return p.conflict(now, r)
	case KindDismiss:
		return p.dismiss(now, r)
	case KindUnassign:
		return p.unassign(now, r)
	case KindRepark:
		return p.repark(now, r)
	}
	t := r.Transaction
	var res Result
	d := &recon.Decision{TransactionID: t.ID, Amount: t.Amount, Currency: t.Currency, Direction: t.Direction,
		BookingDate: t.BookingDate, Rule: r.Rule, Confidence: r.Confidence, Evidence: r.Evidence, LoanID: r.LoanID, DecidedAt: now}
	res.Decision = d
	if _, booked := p.kv.Get(prefixPosted + t.ID); booked {
		d.Outcome, d.Rule, d.Reason = recon.Duplicate, RulePostingKey, "already booked in the journal"
		return res
	}
	bank := ledger.Bank(t.AccountIBAN)
	off, known := p.loans.find(keyID, r.LoanID)
	var currency string
	if known {
		currency = p.loans.view(off).currency
	}
	_, precise := toMinor(t.Amount, t.Currency)
	switch {
	case precise != nil:
		p.emit(&res, p.suspense(now, t, "", precise.Error()))
	case r.Rule == RuleBankCharge && r.LoanID == "":
		e := entry(now, t, EntryBankFees, "", ledger.BankFees, bank, t.Amount)
		if t.Direction == recon.Credit { // a fee refunded
			e = entry(now, t, EntryBankFees, "", bank, ledger.BankFees, t.Amount)
		}
		p.emit(&res, e)
	case r.Rule == RuleOwnAccount && r.LoanID == "":
		e := entry(now, t, EntryOwnAccount, "", ledger.OwnAccount, bank, t.Amount)
		if t.Direction == recon.Credit {
			e = entry(now, t, EntryOwnAccount, "", bank, ledger.OwnAccount, t.Amount)
		}
		p.emit(&res, e)
	case r.LoanID == "" && r.BorrowerID != "":
		p.borrowerMoney(&res, now, r, bank)
	case r.LoanID == "" || !known:
		p.emit(&res, p.suspense(now, t, "", orDefault(r.Reason, "loan unknown")))
	case currency != t.Currency:
		p.emit(&res, p.suspense(now, t, r.LoanID, "currency "+t.Currency+" differs from the loan's "+currency))
	case p.loan(r.LoanID).inexact:
		p.emit(&res, p.suspense(now, t, r.LoanID, inexactReason))
	case t.Direction == recon.Credit && !t.Reversal:
		p.emit(&res, p.allocate(now, r.LoanID, t, t.Amount, bank, EntryRepayment, r))
		p.resolveWaiting(&res, now, r.LoanID, t)
	case t.Direction == recon.Credit: // a reversal of an earlier outgoing transfer
		p.reverseDebit(&res, now, r.LoanID, t, bank, 0)
	case t.ReturnReason != "" || t.Reversal:
		p.reverse(&res, now, r.LoanID, t, bank, 0)
	default:
		p.payOut(&res, now, r, bank)
	}
	d.Outcome = recon.Posted
	d.EntryIDs = make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		d.EntryIDs = append(d.EntryIDs, e.ID)
		if e.Kind == EntrySuspense && e.TransactionID == t.ID {
			d.Outcome, d.Reason, d.LoanID = recon.Suspense, e.Note, e.LoanID
		}
	}
	return res
}

// emit seals e into the partition's chain and applies it to the state at
// once, so what follows in the same record sees it.
func (p *Poster) emit(res *Result, e recon.Entry) {
	h := ledger.Seal(p.Head, &e)
	p.apply(e)
	p.setHead(h)
	res.Entries = append(res.Entries, e)
}

// minor converts an amount of the journal; the journal holds only amounts
// recon converted itself, so a failure is a bug.
func minor(d decimal.Decimal, currency string) int64 {
	v, err := toMinor(d, currency)
	if err != nil {
		panic("matcher: journal amount: " + err.Error())
	}
	return v
}

// apply is the one state transition, shared by Post and Restore.
func (p *Poster) apply(e recon.Entry) {
	switch e.Kind {
	case EntryRepayment, EntrySuspense, EntryReversal, EntryRefund, EntryBankFees, EntryOwnAccount, EntryDisbursement, EntryDebitReversal:
		if e.Round == 0 && !hasAccount(e, ledger.Transit) {
			p.kv.Set(prefixPosted+e.TransactionID, nil)
		}
	}
	if e.LoanID != "" {
		p.applyLoan(e)
	}
	if e.BorrowerID != "" {
		p.applyBorrower(e)
	}
	switch e.Kind {
	case EntrySuspense:
		p.openItem(&Item{ID: e.TransactionID, Kind: ItemMoney, Transaction: *e.Item, Amount: e.Postings[0].Amount, LoanID: e.LoanID,
			Reason: e.Note, Since: e.BookedAt, EntryID: e.ID, Round: e.Round})
		p.fresh = append(p.fresh, e.TransactionID)
	case EntryRepark:
		p.kv.Set(prefixReparked+e.ID, nil)
		if it := p.items[e.TransactionID]; it != nil { // another share came back first
			it.Amount = it.Amount.Add(e.Postings[0].Amount)
			p.saveItem(it)
			break
		}
		p.openItem(&Item{ID: e.TransactionID, Kind: ItemMoney, Transaction: *e.Item, Amount: e.Postings[0].Amount,
			Reason: e.Note, Since: e.BookedAt, EntryID: e.ID, Round: e.Round})
	case EntryRelease:
		if it := p.items[e.TransactionID]; it != nil {
			rel := *it
			rel.Round = e.Round + 1
			v, err := json.Marshal(&rel)
			if err != nil {
				panic("matcher: encode item " + rel.ID + ": " + err.Error())
			}
			p.kv.Set(prefixReleased+e.TransactionID, v)
		}
		p.closeItem(e.TransactionID)
	case EntryReversal, EntryTakeBack:
		p.closeItem(e.TransactionID) // a waiting return resolved
	case EntryReview:
		id := ConflictID(*e.Item)
		p.openItem(&Item{ID: id, Kind: ItemConflict, Transaction: *e.Item, Amount: decimal.Zero, Reason: e.Note, Since: e.BookedAt, EntryID: e.ID})
	case EntryReviewClosed:
		p.closeItem(ConflictID(*e.Item))
	}
}

func hasAccount(e recon.Entry, account string) bool {
	for _, ps := range e.Postings {
		if ps.Account == account {
			return true
		}
	}
	return false
}

func (p *Poster) applyLoan(e recon.Entry) {
	s := p.loan(e.LoanID)
	prefix := "loan:" + e.LoanID + ":"
	var a alloc
	for _, ps := range e.Postings {
		rest, ok := strings.CutPrefix(ps.Account, prefix)
		if !ok {
			continue
		}
		if s.currency != ps.Currency {
			s.currency = p.intern(ps.Currency)
		}
		delta, err := toMinor(ps.Amount, ps.Currency)
		if err != nil { // a journal written before amounts were checked
			s.inexact = true
			continue
		}
		if ps.Side == recon.DebitSide {
			delta = -delta
		}
		switch rest {
		case "credit":
			s.credit += delta
			a.credit += delta
		case "principal":
			if e.Kind == EntryDisbursement || e.Kind == EntryDebitReversal {
				s.disbursed -= delta
				break
			}
			s.paid[partPrincipal] += delta
			a.parts[partPrincipal] += delta
		case "interest":
			s.paid[partInterest] += delta
			a.parts[partInterest] += delta
		case "fees":
			s.paid[partFees] += delta
			a.parts[partFees] += delta
		}
	}
	inbound := hasAccount(e, ledger.Transit) && e.Kind != EntryUnassign
	if inbound {
		handled := e.Round
		if e.Kind == EntrySuspense { // parked from transit: numbered for the next round
			handled--
		}
		if n := p.rounds(e.TransactionID, e.LoanID); handled+1 > n {
			p.kv.Set(key2(prefixRounds, e.TransactionID, e.LoanID), writer(nil).int(int64(handled+1)))
		}
	}
	switch e.Kind {
	case EntryRepayment, EntryRematchIn:
		a.total, _ = toMinor(e.Postings[0].Amount, e.Postings[0].Currency)
		a.round, a.rematch, a.e2e = e.Round, e.Kind == EntryRematchIn, e.EndToEndID
		p.setRepayment(e.LoanID, e.TransactionID, a)
		if e.EndToEndID != "" {
			p.kv.Set(key2(prefixLoanE2E, e.LoanID, e.EndToEndID), []byte(e.TransactionID))
		}
	case EntryReversal:
		if orig, ok := p.repayment(e.LoanID, e.Reverses); ok {
			orig.reversed = true
			p.setRepayment(e.LoanID, e.Reverses, orig)
		}
		if e.EndToEndID != "" {
			p.kv.Delete(key2(prefixLoanE2E, e.LoanID, e.EndToEndID))
		}
	case EntryUnassign:
		if a, ok := p.repayment(e.LoanID, e.TransactionID); ok {
			if txn, _ := p.creditByE2E(e.LoanID, a.e2e); txn == e.TransactionID {
				p.kv.Delete(key2(prefixLoanE2E, e.LoanID, a.e2e))
			}
			p.kv.Delete(key2(prefixRepayment, e.LoanID, e.TransactionID))
		}
	case EntryDisbursement, EntryRefund:
		if e.EndToEndID != "" {
			p.setDebit(e.LoanID, e.EndToEndID, outgoing{txnID: e.TransactionID, kind: e.Kind, account: e.Postings[0].Account,
				amount: orZero(toMinor(e.Postings[0].Amount, e.Postings[0].Currency))})
		}
	case EntryDebitReversal:
		if e.EndToEndID != "" {
			p.kv.Delete(key2(prefixDebit, e.LoanID, e.EndToEndID))
		}
	case EntryCreditApplied:
		if e.TransactionID == "" {
			s.creditRuns++
		}
	}
	p.saveLoan(e.LoanID, s)
}

// waterfall splits amount over what the loan still owes — instalment by
// instalment, oldest first, fees then interest then principal — without
// allocating; what exceeds the amount owed is returned as left.
func (p *Poster) waterfall(off uint32, s *loanState, amount int64) (take [3]int64, left int64) {
	covered := s.paid
	left = amount
	it := p.loans.view(off).instalments()
	for left > 0 && it.next() {
		for part, due := range it.part {
			c := min(due, max(covered[part], 0))
			covered[part] -= c
			if rest := due - c; rest > 0 {
				x := min(left, rest)
				take[part] += x
				left -= x
			}
		}
	}
	return take, left
}

// owed is what the loan still owes in total.
func (p *Poster) owed(off uint32, s *loanState) int64 {
	var due [3]int64
	it := p.loans.view(off).instalments()
	for it.next() {
		for part, a := range it.part {
			due[part] += a
		}
	}
	var owed int64
	for part := range due {
		owed += max(due[part]-max(s.paid[part], 0), 0)
	}
	return owed
}

// allocate books amount from the funding account to the loan's parts in
// waterfall order; what exceeds the amount owed becomes borrower credit.
func (p *Poster) allocate(now time.Time, loanID string, t recon.BankTransaction, amount decimal.Decimal, from, kind string, r Routed) recon.Entry {
	off, _ := p.loans.find(keyID, loanID)
	cur := t.Currency
	e := recon.Entry{ID: entryID(t.ID, kind, loanID, r.Round), Kind: kind, LoanID: loanID, TransactionID: t.ID, EndToEndID: t.EndToEndID,
		EffectiveDate: t.BookingDate, BookedAt: now, Note: r.Note, Actor: r.Actor, Round: r.Round}
	e.Postings = make([]recon.Posting, 1, 5)
	e.Postings[0] = recon.Posting{Account: from, Side: recon.DebitSide, Amount: amount, Currency: cur}
	s := p.loan(loanID)
	total := minor(amount, cur)
	take, left := p.waterfall(off, s, total)
	exact := func(a int64) decimal.Decimal {
		if a == total {
			return amount // one share takes it all: no new decimal
		}
		return fromMinor(a, cur)
	}
	for part, a := range take {
		if a > 0 {
			e.Postings = append(e.Postings, recon.Posting{Account: account(loanID, part), Side: recon.CreditSide, Amount: exact(a), Currency: cur})
		}
	}
	if left > 0 {
		e.Postings = append(e.Postings, recon.Posting{Account: ledger.Credit(loanID), Side: recon.CreditSide, Amount: exact(left), Currency: cur})
	}
	return e
}

func account(loanID string, part int) string { return "loan:" + loanID + ":" + partNames[part] }

func entry(now time.Time, t recon.BankTransaction, kind, loanID, debit, credit string, amount decimal.Decimal) recon.Entry {
	return recon.Entry{ID: entryID(t.ID, kind, loanID, 0), Kind: kind, LoanID: loanID, TransactionID: t.ID, EndToEndID: t.EndToEndID,
		EffectiveDate: t.BookingDate, BookedAt: now, Postings: []recon.Posting{
			{Account: debit, Side: recon.DebitSide, Amount: amount, Currency: t.Currency},
			{Account: credit, Side: recon.CreditSide, Amount: amount, Currency: t.Currency},
		}}
}

// entryID is derived from the bank identity: a redelivery gets the same id.
// round > 0 marks entries of a re-assignment.
func entryID(txnID, kind, loanID string, round int) string {
	id := "e_" + txnID + "_" + kind
	if loanID != "" {
		id += "_" + loanID
	}
	if round > 0 {
		id += "_r" + strconv.Itoa(round)
	}
	return id
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
