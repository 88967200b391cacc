package matcher

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// Entry kinds in the journal.
const (
	EntryRepayment     = "repayment"
	EntryRematchIn     = "rematch"
	EntryRelease       = "suspense-release"
	EntrySuspense      = "suspense"
	EntryReversal      = "reversal"
	EntryCreditApplied = "credit-applied"
	EntryRefund        = "refund"
	EntryBankFees      = "bank-fees"
	// EntryOwnAccount is a transfer between the lender's own accounts.
	EntryOwnAccount = "own-account"
	// EntryDisbursement pays a loan out: principal receivable against the
	// bank account.
	EntryDisbursement = "disbursement"
	// EntryDebitReversal is an incoming reversal of an earlier outgoing
	// transfer (a disbursement or refund that came back).
	EntryDebitReversal = "debit-reversal"
	// EntryTakeBack books an assigned outgoing suspense item (a return
	// parked for an amount mismatch) or an unassignment against a loan:
	// borrower credit first, then principal, interest and fees (the
	// waterfall backwards).
	EntryTakeBack = "take-back"
	// EntryUnassign takes an assignment back from a loan to transit.
	EntryUnassign = "unassign"
	// EntryRepark puts money taken back from a loan into suspense again.
	EntryRepark = "repark"
	// EntryReview parks a review item that moves no money (an identity
	// conflict): its postings are a debit and a credit of the same amount
	// on the off-balance account memo:conflicts, so the entry balances,
	// nets to zero, and the journal stays the only state.
	EntryReview = "review"
	// EntryReviewClosed closes a review item (same memo postings).
	EntryReviewClosed = "review-closed"
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
// arrives at the state the crashed instance had. Hot state is kept in minor
// units of each loan's currency (int64), converted exactly at the boundary.
type Poster struct {
	loans    *Loans
	router   *Router
	state    map[string]*loanState
	posted   map[string]bool  // transaction ids booked here (the posting key)
	items    map[string]*Item // open suspense items of this partition, by item id
	released map[string]*Item // items released to a loan, by transaction id (for unassign)
	rounds   map[string]int   // txn\x00loan -> rounds of rematch booked here
	reparked map[string]bool  // repark entry ids booked here
	fresh    []string         // items parked since the last Rematch
	// returns indexes parked outgoing items by end-to-end id, so a repayment
	// finds the return waiting for it without scanning suspense. Entries of
	// items no longer open are dropped when met.
	returns map[string][]string
	// borrowers holds each borrower's credit (borrower.go).
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

// Item kinds.
const (
	ItemMoney    = "money"
	ItemConflict = "conflict"
)

type loanState struct {
	accounts   [4]string // fees, interest, principal, credit: built once
	currency   string
	paid       [3]int64 // part -> credits minus debits, minor units
	credit     int64    // borrower credit (overpayments)
	disbursed  int64    // principal paid out to the borrower
	repayments map[string]*alloc
	byE2E      map[string]string   // end-to-end id -> transaction id of a credit booked
	debits     map[string]outgoing // end-to-end id -> outgoing transfer booked
	creditRuns int                 // credit-applied entries not caused by a transaction
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
	from     string
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

// NewPoster returns a Poster for one journal partition.
func NewPoster(loans *Loans) *Poster {
	return &Poster{loans: loans, router: NewRouter(loans), state: map[string]*loanState{}, posted: map[string]bool{},
		items: map[string]*Item{}, released: map[string]*Item{}, rounds: map[string]int{}, reparked: map[string]bool{},
		returns: map[string][]string{}, borrowers: map[string]*borrowerState{}}
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
	p.Head = ledger.Head{Sequence: e.Sequence, Hash: e.Hash}
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
	if p.posted[t.ID] {
		d.Outcome, d.Rule, d.Reason = recon.Duplicate, "posting-key", "already booked in the journal"
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
	case r.Rule == "bank-charge" && r.LoanID == "":
		e := entry(now, t, EntryBankFees, "", ledger.BankFees, bank, t.Amount)
		if t.Direction == recon.Credit { // a fee refunded
			e = entry(now, t, EntryBankFees, "", bank, ledger.BankFees, t.Amount)
		}
		p.emit(&res, e)
	case r.Rule == "own-account" && r.LoanID == "":
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
	p.Head = ledger.Seal(p.Head, &e)
	p.apply(e)
	res.Entries = append(res.Entries, e)
}

func (p *Poster) loan(id string) *loanState {
	s := p.state[id]
	if s == nil {
		id = strings.Clone(id)
		s = &loanState{accounts: [4]string{ledger.Fees(id), ledger.Interest(id), ledger.Principal(id), ledger.Credit(id)}}
		p.state[id] = s
	}
	return s
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
			p.posted[e.TransactionID] = true
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
		p.items[e.TransactionID] = &Item{ID: e.TransactionID, Kind: ItemMoney, Transaction: *e.Item, Amount: e.Postings[0].Amount, LoanID: e.LoanID,
			Reason: e.Note, Since: e.BookedAt, EntryID: e.ID, Round: e.Round}
		p.fresh = append(p.fresh, e.TransactionID)
		p.indexReturn(*e.Item)
	case EntryRepark:
		p.reparked[e.ID] = true
		if it := p.items[e.TransactionID]; it != nil { // another share came back first
			it.Amount = it.Amount.Add(e.Postings[0].Amount)
			break
		}
		p.items[e.TransactionID] = &Item{ID: e.TransactionID, Kind: ItemMoney, Transaction: *e.Item, Amount: e.Postings[0].Amount,
			Reason: e.Note, Since: e.BookedAt, EntryID: e.ID, Round: e.Round}
		p.indexReturn(*e.Item)
	case EntryRelease:
		if it := p.items[e.TransactionID]; it != nil {
			rel := *it
			rel.Round = e.Round + 1
			p.released[e.TransactionID] = &rel
		}
		delete(p.items, e.TransactionID)
	case EntryReversal, EntryTakeBack:
		delete(p.items, e.TransactionID) // a waiting return resolved
	case EntryReview:
		id := ConflictID(*e.Item)
		p.items[id] = &Item{ID: id, Kind: ItemConflict, Transaction: *e.Item, Amount: decimal.Zero, Reason: e.Note, Since: e.BookedAt, EntryID: e.ID}
	case EntryReviewClosed:
		delete(p.items, ConflictID(*e.Item))
	}
}

// indexReturn remembers a parked outgoing return or reversal by the
// end-to-end id of the payment it undoes.
func (p *Poster) indexReturn(t recon.BankTransaction) {
	if t.EndToEndID != "" && t.Direction == recon.Debit && (t.ReturnReason != "" || t.Reversal) {
		p.returns[t.EndToEndID] = append(p.returns[t.EndToEndID], t.ID)
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
			if a.from == "" && ps.Side == recon.DebitSide {
				a.from = ps.Account
			}
			continue
		}
		s.currency = ps.Currency
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
		k := e.TransactionID + "\x00" + e.LoanID
		handled := e.Round
		if e.Kind == EntrySuspense { // parked from transit: numbered for the next round
			handled--
		}
		p.rounds[k] = max(p.rounds[k], handled+1)
	}
	switch e.Kind {
	case EntryRepayment, EntryRematchIn:
		a.total, _ = toMinor(e.Postings[0].Amount, e.Postings[0].Currency)
		a.round, a.rematch, a.e2e = e.Round, e.Kind == EntryRematchIn, e.EndToEndID
		if s.repayments == nil {
			s.repayments = map[string]*alloc{}
		}
		s.repayments[e.TransactionID] = &a
		if e.EndToEndID != "" {
			if s.byE2E == nil {
				s.byE2E = map[string]string{}
			}
			s.byE2E[e.EndToEndID] = e.TransactionID
		}
	case EntryReversal:
		if orig := s.repayments[e.Reverses]; orig != nil {
			orig.reversed = true
		}
		delete(s.byE2E, e.EndToEndID)
	case EntryUnassign:
		if a := s.repayments[e.TransactionID]; a != nil && a.e2e != "" && s.byE2E[a.e2e] == e.TransactionID {
			delete(s.byE2E, a.e2e)
		}
		delete(s.repayments, e.TransactionID)
	case EntryDisbursement, EntryRefund:
		if e.EndToEndID != "" {
			if s.debits == nil {
				s.debits = map[string]outgoing{}
			}
			s.debits[e.EndToEndID] = outgoing{txnID: e.TransactionID, kind: e.Kind, account: e.Postings[0].Account,
				amount: orZero(toMinor(e.Postings[0].Amount, e.Postings[0].Currency))}
		}
	case EntryDebitReversal:
		delete(s.debits, e.EndToEndID)
	case EntryCreditApplied:
		if e.TransactionID == "" {
			s.creditRuns++
		}
	}
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
			e.Postings = append(e.Postings, recon.Posting{Account: s.accounts[part], Side: recon.CreditSide, Amount: exact(a), Currency: cur})
		}
	}
	if left > 0 {
		e.Postings = append(e.Postings, recon.Posting{Account: s.accounts[3], Side: recon.CreditSide, Amount: exact(left), Currency: cur})
	}
	return e
}

func account(loanID string, part int) string { return "loan:" + loanID + ":" + partNames[part] }

// reverse undoes the original allocation of a returned or reversed
// transaction exactly. A return whose original is not booked yet waits in
// suspense and is resolved when the original arrives. from is where the
// money leaves: the bank, suspense (a waiting return) or transit (a return
// that followed its original out of suspense).
func (p *Poster) reverse(res *Result, now time.Time, loanID string, t recon.BankTransaction, from string, round int) {
	s := p.loan(loanID)
	origID, ok := s.byE2E[t.EndToEndID]
	if !ok || t.EndToEndID == "" {
		p.emit(res, p.park(now, t, loanID, "return awaiting its original (end-to-end id "+orDefault(t.EndToEndID, "missing")+")", from, round))
		return
	}
	orig := s.repayments[origID]
	cur := t.Currency
	amount, _ := toMinor(t.Amount, cur)
	if orig.total != amount || s.currency != cur {
		p.emit(res, p.park(now, t, loanID, "return of "+t.Amount.String()+" does not equal original "+fromMinor(orig.total, s.currency).String(), from, round))
		return
	}
	take, ok := takeBack(s, orig)
	if !ok {
		p.emit(res, p.park(now, t, loanID, "return of "+t.Amount.String()+" exceeds what the loan still holds of its original", from, round))
		return
	}
	p.emit(res, reversal(now, loanID, t, origID, t.Amount, take, from, round))
	p.applyCredit(res, now, loanID, t.ID)
}

// takeBack is what reversing an original allocation takes from the loan:
// the original's shares, as far as the loan still holds them (credit may
// have been applied since, an assignment taken back); the rest backwards
// through the waterfall. False when the loan no longer holds that much.
func takeBack(s *loanState, orig *alloc) (take [4]int64, ok bool) {
	avail := backwards(s)
	want := [4]int64{orig.credit, orig.parts[partPrincipal], orig.parts[partInterest], orig.parts[partFees]}
	left := orig.total
	for i := range take {
		take[i] = min(want[i], max(avail[i], 0))
		avail[i] -= take[i]
		left -= take[i]
	}
	for i := range take {
		x := min(left, max(avail[i], 0))
		take[i] += x
		left -= x
	}
	return take, left <= 0
}

// reversal is the entry that returns amount of origID's allocation on a
// loan to from.
func reversal(now time.Time, loanID string, t recon.BankTransaction, origID string, amount decimal.Decimal, take [4]int64, from string, round int) recon.Entry {
	e := recon.Entry{ID: entryID(t.ID, EntryReversal, loanID, round), Kind: EntryReversal, LoanID: loanID, TransactionID: t.ID,
		EndToEndID: t.EndToEndID, Reverses: origID, EffectiveDate: t.BookingDate, BookedAt: now, Note: "return " + t.ReturnReason, Round: round}
	e.Postings = append(e.Postings, recon.Posting{Account: from, Side: recon.CreditSide, Amount: amount, Currency: t.Currency})
	e.Postings = appendTakeBack(e.Postings, loanID, take, t.Currency)
	return e
}

// reverseDebit books an incoming reversal of an earlier outgoing transfer
// of the loan (a disbursement or a refund that came back), found by its
// end-to-end id; anything else is parked. from is where the money comes
// from: the bank, or transit when it was re-matched out of suspense.
func (p *Poster) reverseDebit(res *Result, now time.Time, loanID string, t recon.BankTransaction, from string, round int) {
	s := p.loan(loanID)
	out, ok := s.debits[t.EndToEndID]
	amount, _ := toMinor(t.Amount, t.Currency)
	switch {
	case !ok || t.EndToEndID == "":
		p.emit(res, p.park(now, t, loanID, "incoming reversal of an outgoing transfer not booked (end-to-end id "+orDefault(t.EndToEndID, "missing")+")", from, round))
	case out.amount != amount:
		p.emit(res, p.park(now, t, loanID, "incoming reversal of "+t.Amount.String()+" does not equal the "+out.kind+" of "+fromMinor(out.amount, t.Currency).String(), from, round))
	default:
		e := entry(now, t, EntryDebitReversal, loanID, from, out.account, t.Amount)
		e.ID, e.Round = entryID(t.ID, EntryDebitReversal, loanID, round), round
		e.Reverses, e.Note = out.txnID, out.kind+" reversed"
		p.emit(res, e)
		p.applyCredit(res, now, loanID, t.ID)
	}
}

// resolveWaiting books a waiting return once its original has been booked.
func (p *Poster) resolveWaiting(res *Result, now time.Time, loanID string, orig recon.BankTransaction) {
	if orig.EndToEndID == "" {
		return
	}
	ids := p.returns[orig.EndToEndID]
	open := ids[:0]
	for _, id := range ids {
		if _, ok := p.items[id]; ok {
			open = append(open, id)
		}
	}
	if len(open) == 0 {
		delete(p.returns, orig.EndToEndID)
		return
	}
	p.returns[orig.EndToEndID] = open
	sort.Strings(open)
	for _, id := range open {
		it := p.items[id]
		rt := it.Transaction
		if it.Kind == ItemMoney && it.LoanID == loanID && rt.EndToEndID == orig.EndToEndID && rt.Direction == recon.Debit && (rt.ReturnReason != "" || rt.Reversal) &&
			it.Amount.Equal(orig.Amount) && rt.Currency == orig.Currency { // else it stays parked, not parked twice
			p.reverse(res, now, loanID, rt, ledger.Suspense, it.Round)
			return
		}
	}
}

// applyCredit uses the borrower's credit on what the loan owes, so at most
// one of outstanding and overpaid is non-zero. txnID is the transaction
// that reopened an amount; "" when the schedule grew.
func (p *Poster) applyCredit(res *Result, now time.Time, loanID, txnID string) {
	s := p.loan(loanID)
	if s.credit <= 0 {
		return
	}
	off, ok := p.loans.find(keyID, loanID)
	if !ok {
		return
	}
	use := min(s.credit, p.owed(off, s))
	if use <= 0 {
		return
	}
	cur := p.loans.view(off).currency
	t := recon.BankTransaction{ID: txnID, Currency: cur}
	r := Routed{Note: "borrower credit applied"}
	e := p.allocate(now, loanID, t, fromMinor(use, cur), ledger.Credit(loanID), EntryCreditApplied, r)
	if txnID == "" {
		e.ID = "e_" + EntryCreditApplied + "_" + loanID + "_" + strconv.Itoa(s.creditRuns+1)
		e.Note = "borrower credit applied: the loan's schedule grew"
	}
	p.emit(res, e)
}

// payOut books an outgoing transfer (not a return) routed to a loan: a
// disbursement (matched by the loan's disbursement end-to-end id) on its
// principal, anything else as a refund against the borrower's credit. from
// is where the money leaves: the bank, or transit when the transfer was
// re-matched out of suspense (then r carries the rematch's round, note and
// actor). The live path and the re-match book through here alike.
func (p *Poster) payOut(res *Result, now time.Time, r Routed, from string) {
	t, loanID := r.Transaction, r.LoanID
	kind, debit := EntryRefund, ledger.Credit(loanID)
	if r.Rule == "disbursement" {
		kind, debit = EntryDisbursement, ledger.Principal(loanID)
	} else if amount, _ := toMinor(t.Amount, t.Currency); p.loan(loanID).credit < amount {
		p.emit(res, p.park(now, t, loanID, "debit on a loan without enough borrower credit (not a return, a disbursement or a covered refund)", from, r.Round))
		return
	}
	e := entry(now, t, kind, loanID, debit, from, t.Amount)
	e.ID, e.Round, e.Note, e.Actor = entryID(t.ID, kind, loanID, r.Round), r.Round, r.Note, r.Actor
	p.emit(res, e)
}

// suspense parks t: a credit moves bank→suspense, a debit suspense→bank.
func (p *Poster) suspense(now time.Time, t recon.BankTransaction, loanID, reason string) recon.Entry {
	return p.park(now, t, loanID, reason, ledger.Bank(t.AccountIBAN), 0)
}

// park parks t's money coming from account from (the bank, or transit when
// a routed share cannot be booked on its loan).
func (p *Poster) park(now time.Time, t recon.BankTransaction, loanID, reason, from string, round int) recon.Entry {
	if from == ledger.Transit {
		round++ // the item's next assignment is another round
	}
	var e recon.Entry
	if t.Direction == recon.Credit {
		e = entry(now, t, EntrySuspense, loanID, from, ledger.Suspense, t.Amount)
	} else {
		e = entry(now, t, EntrySuspense, loanID, ledger.Suspense, from, t.Amount)
	}
	e.ID, e.Round = entryID(t.ID, EntrySuspense, loanID, round), round
	e.Note = reason
	item := t
	item.CounterpartyName, item.CounterpartyIBAN = "", "" // personal data stays out of the chain
	e.Item = &item
	return e
}

// Rematch releases the suspense items whose loan has become known: every
// item when the loans table changed (all), else only the items parked since
// the last call (their loan may have arrived while they were in flight).
// Credits and outgoing transfers alike are routed by the cascade and booked
// on the loan's partition by the rule the live path would have used (see
// rematchIn). Only whole items parked for want of a loan (never assigned)
// are re-matched. When the loans table changed it also applies borrower
// credit to loans whose schedule grew.
func (p *Poster) Rematch(now time.Time, all bool) Result {
	var res Result
	ids := p.fresh
	if all {
		ids = p.itemIDs()
	}
	p.fresh = nil
	var phases [nPhases][]*Routed
	for _, id := range ids {
		it, ok := p.items[id]
		if !ok {
			continue
		}
		t := it.Transaction
		if it.Kind != ItemMoney || it.LoanID != "" || it.Round > 0 || t.Remainder || IsCharge(t) || !it.Amount.Equal(t.Amount) {
			continue
		}
		if _, err := toMinor(t.Amount, t.Currency); err != nil {
			continue
		}
		rt := p.router.cascade(t)
		if rt.LoanID == "" || p.loanCurrency(rt.LoanID) != t.Currency {
			continue
		}
		rt.ItemID = id
		ph := rematchPhase(t, rt.Rule)
		phases[ph] = append(phases[ph], rt)
	}
	for _, rts := range phases {
		for _, rt := range rts {
			it, ok := p.items[rt.ItemID]
			if !ok { // a return that followed its original already, or an id met twice
				continue
			}
			p.release(&res, now, it, []Allocation{{LoanID: rt.LoanID, Amount: it.Amount}}, rt.Rule,
				"re-matched automatically by "+rt.Rule+": "+rt.Evidence, "recon")
		}
	}
	if all {
		ids := make([]string, 0)
		for id, s := range p.state {
			if s.credit > 0 {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			p.applyCredit(&res, now, id, "")
		}
	}
	return res
}

// The phases of one Rematch, in the order money moves: released shares of
// one loan reach its partition in this order, so what undoes or draws on
// an earlier movement finds it booked.
const (
	phaseDisbursement  = iota // money paid out before it is repaid or comes back
	phaseCredit               // repayments; returns parked for them follow them (see release)
	phaseOutgoing             // refunds, after the credits that may cover them
	phaseDebitReversal        // an outgoing transfer that came back, after the transfer
	phaseReturn               // returns whose original is not parked here
	nPhases
)

func rematchPhase(t recon.BankTransaction, rule string) int {
	switch {
	case t.Direction == recon.Credit && t.Reversal:
		return phaseDebitReversal
	case t.Direction == recon.Credit:
		return phaseCredit
	case t.ReturnReason != "" || t.Reversal:
		return phaseReturn
	case rule == "disbursement":
		return phaseDisbursement
	}
	return phaseOutgoing
}

// assign moves a suspense item to one or more loans on a person's request.
// An outgoing item (a return parked because its amount does not equal its
// original's) goes to one loan whole and is booked there against the
// original it names when the amounts agree, else taken back from the loan
// (see EntryTakeBack).
func (p *Poster) assign(now time.Time, r Routed) Result {
	d := &recon.Decision{TransactionID: r.Transaction.ID, Rule: "manual", Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note}
	reject := func(why string) Result {
		d.Outcome, d.Reason = recon.Rejected, why
		return Result{Decision: d}
	}
	it, ok := p.items[orDefault(r.ItemID, r.Transaction.ID)]
	if !ok {
		return reject("no open suspense item " + orDefault(r.ItemID, r.Transaction.ID))
	}
	t := it.Transaction
	d.TransactionID, d.Amount, d.Currency, d.Direction, d.BookingDate = t.ID, it.Amount, t.Currency, t.Direction, t.BookingDate
	if it.Kind != ItemMoney {
		return reject("a review item moves no money: dismiss it once checked")
	}
	if _, err := toMinor(it.Amount, t.Currency); err != nil {
		return reject(err.Error())
	}
	if t.Direction != recon.Credit && len(r.Allocations) != 1 {
		return reject("outgoing money is assigned whole to one loan")
	}
	sum := decimal.Zero
	shares := map[string]bool{}
	for _, a := range r.Allocations {
		off, known := p.loans.find(keyID, a.LoanID)
		switch {
		case shares[a.LoanID]: // one share per loan: entry and record ids derive from the loan
			return reject("loan " + a.LoanID + " is allocated more than once")
		case !known:
			return reject("unknown loan " + a.LoanID)
		case p.loans.view(off).currency != t.Currency:
			return reject("loan " + a.LoanID + " is in " + p.loans.view(off).currency)
		case !a.Amount.IsPositive():
			return reject(fmt.Sprintf("allocation to %s is not positive", a.LoanID))
		}
		if _, err := toMinor(a.Amount, t.Currency); err != nil {
			return reject(fmt.Sprintf("allocation to %s: %v", a.LoanID, err))
		}
		shares[a.LoanID] = true
		sum = sum.Add(a.Amount)
	}
	if len(r.Allocations) == 0 || !sum.Equal(it.Amount) {
		return reject("allocations sum to " + sum.String() + ", the item is " + it.Amount.String())
	}
	var res Result
	p.release(&res, now, it, r.Allocations, "manual", r.Note, r.Actor)
	d.Outcome = recon.Posted
	for _, e := range res.Entries {
		d.EntryIDs = append(d.EntryIDs, e.ID)
	}
	if len(r.Allocations) == 1 {
		d.LoanID = r.Allocations[0].LoanID
	}
	res.Decision = d
	return res
}

// release moves an item's money from suspense to transit and routes each
// share to its loan's partition, where a rematch entry books it. Returns
// waiting in suspense for the released credit (same end-to-end id, loan
// unknown when they arrived) follow it to the same loan.
func (p *Poster) release(res *Result, now time.Time, it *Item, allocs []Allocation, rule, note, actor string) {
	t := it.Transaction
	round := it.Round
	e := entry(now, t, EntryRelease, "", ledger.Suspense, ledger.Transit, it.Amount)
	if t.Direction == recon.Debit {
		e = entry(now, t, EntryRelease, "", ledger.Transit, ledger.Suspense, it.Amount)
	}
	e.ID, e.Round, e.Note, e.Actor = entryID(t.ID, EntryRelease, "", round), round, note, actor
	p.emit(res, e)
	for _, a := range allocs {
		amt := a.Amount
		res.Routed = append(res.Routed, Routed{Kind: KindRematch, Key: p.loans.PartitionKey(a.LoanID), Transaction: t, LoanID: a.LoanID,
			Rule: rule, Confidence: decimal.NewFromInt(1), Amount: &amt, Note: note, Actor: actor, Round: round})
	}
	if t.Direction != recon.Credit || t.EndToEndID == "" || len(allocs) != 1 {
		return
	}
	candidates := append([]string(nil), p.returns[t.EndToEndID]...)
	sort.Strings(candidates)
	for _, id := range candidates {
		w, ok := p.items[id]
		if !ok {
			continue
		}
		wt := w.Transaction
		if w.Kind == ItemMoney && w.LoanID == "" && wt.Direction == recon.Debit && wt.EndToEndID == t.EndToEndID &&
			(wt.ReturnReason != "" || wt.Reversal) && wt.Currency == t.Currency && w.Amount.Equal(wt.Amount) {
			p.release(res, now, w, []Allocation{{LoanID: allocs[0].LoanID, Amount: w.Amount}}, "return-follows-original",
				"return follows its original "+t.ID, "recon")
		}
	}
}

// rematchIn books a share released from suspense on its loan. What a
// person assigned is allocated (a credit), reverses its original or is
// taken back (an outgoing item). What Rematch released is booked by the
// rule the live path would have used: a repayment is allocated, an
// incoming reversal reverses its outgoing transfer, a return its
// original, an outgoing transfer is paid out (a disbursement or a refund).
func (p *Poster) rematchIn(now time.Time, r Routed) Result {
	var res Result
	t := r.Transaction
	if p.rounds[t.ID+"\x00"+r.LoanID] > r.Round {
		return res // a redelivered share: booked already
	}
	if _, err := toMinor(*r.Amount, t.Currency); err != nil || p.loan(r.LoanID).inexact || t.Currency != p.loanCurrency(r.LoanID) {
		reason := inexactReason
		if err != nil {
			reason = err.Error()
		} else if !p.loan(r.LoanID).inexact {
			reason = "loan " + r.LoanID + " is not in " + t.Currency + " (or unknown)"
		}
		t.Amount = *r.Amount
		p.emit(&res, p.park(now, t, r.LoanID, reason, ledger.Transit, r.Round))
		return res
	}
	auto := r.Rule != "manual"
	if auto {
		t.Amount = *r.Amount // whole items only: the same amount
	}
	switch {
	case t.Direction == recon.Credit && t.Reversal && auto:
		p.reverseDebit(&res, now, r.LoanID, t, ledger.Transit, r.Round)
		return res
	case t.Direction == recon.Credit:
		p.emit(&res, p.allocate(now, r.LoanID, t, *r.Amount, ledger.Transit, EntryRematchIn, r))
		p.resolveWaiting(&res, now, r.LoanID, t)
		p.applyCredit(&res, now, r.LoanID, t.ID)
		return res
	case t.ReturnReason == "" && !t.Reversal && auto:
		r.Transaction = t
		p.payOut(&res, now, r, ledger.Transit)
		return res
	}
	s := p.loan(r.LoanID)
	if orig, ok := s.byE2E[t.EndToEndID]; ok && t.EndToEndID != "" && s.repayments[orig].total == minor(*r.Amount, t.Currency) || r.Rule != "manual" {
		p.reverse(&res, now, r.LoanID, t, ledger.Transit, r.Round)
		return res
	}
	p.takeBack(&res, now, r.LoanID, t, *r.Amount, EntryTakeBack, r)
	return res
}

// loanCurrency is the currency of a known loan, "" for an unknown one.
func (p *Poster) loanCurrency(id string) string {
	off, ok := p.loans.find(keyID, id)
	if !ok {
		return ""
	}
	return p.loans.view(off).currency
}

// takeBack books amount back from a loan to transit, undoing the waterfall
// from its end: borrower credit, then principal, interest, fees. What the
// loan has not been paid cannot be taken back: then the share is parked
// on the loan's partition.
func (p *Poster) takeBack(res *Result, now time.Time, loanID string, t recon.BankTransaction, amount decimal.Decimal, kind string, r Routed) bool {
	s := p.loan(loanID)
	cur := t.Currency
	left := minor(amount, cur)
	var take [4]int64
	for i, a := range backwards(s) {
		x := min(left, max(a, 0))
		take[i] += x
		left -= x
	}
	if left > 0 {
		if kind == EntryTakeBack {
			p.emit(res, p.park(now, t, loanID, "assigned outgoing "+amount.String()+" exceeds what the loan has been paid", ledger.Transit, r.Round))
		}
		return false
	}
	e := recon.Entry{ID: entryID(t.ID, kind, loanID, r.Round), Kind: kind, LoanID: loanID, TransactionID: t.ID, EndToEndID: t.EndToEndID,
		EffectiveDate: t.BookingDate, BookedAt: now, Note: r.Note, Actor: r.Actor, Round: r.Round}
	e.Postings = appendTakeBack(e.Postings, loanID, take, cur)
	e.Postings = append(e.Postings, recon.Posting{Account: ledger.Transit, Side: recon.CreditSide, Amount: amount, Currency: cur})
	p.emit(res, e)
	return true
}

// backwards is what a loan holds in the order it is taken back: borrower
// credit, principal, interest, fees.
func backwards(s *loanState) [4]int64 {
	return [4]int64{s.credit, s.paid[partPrincipal], s.paid[partInterest], s.paid[partFees]}
}

// appendTakeBack debits what is taken back, in backwards order.
func appendTakeBack(ps []recon.Posting, loanID string, take [4]int64, cur string) []recon.Posting {
	accounts := [4]string{ledger.Credit(loanID), ledger.Principal(loanID), ledger.Interest(loanID), ledger.Fees(loanID)}
	for i := 3; i >= 0; i-- { // postings in the waterfall's order
		if a := take[i]; a > 0 {
			ps = append(ps, recon.Posting{Account: accounts[i], Side: recon.DebitSide, Amount: fromMinor(a, cur), Currency: cur})
		}
	}
	return ps
}

// conflict parks a review item for a sighting whose identity was seen
// with another amount: no money moves.
func (p *Poster) conflict(now time.Time, r Routed) Result {
	t := r.Transaction
	id := ConflictID(t)
	d := &recon.Decision{TransactionID: t.ID, Amount: t.Amount, Currency: t.Currency, Direction: t.Direction, BookingDate: t.BookingDate,
		Outcome: recon.Suspense, Rule: r.Rule, Reason: r.Reason, Confidence: decimal.Zero, DecidedAt: now}
	res := Result{Decision: d}
	if _, open := p.items[id]; open {
		return res
	}
	e := memo(now, t, EntryReview, "e_"+id+"_"+EntryReview, r.Reason, "")
	p.emit(&res, e)
	d.EntryIDs = []string{e.ID}
	return res
}

// memo is an entry that moves no money: a debit and a credit of the same
// amount on memo:conflicts.
func memo(now time.Time, t recon.BankTransaction, kind, id, note, actor string) recon.Entry {
	amount := t.Amount
	if !amount.IsPositive() || t.Currency == "" {
		amount, t.Currency = decimal.New(1, -2), orDefault(t.Currency, "XXX")
	}
	item := t
	item.CounterpartyName, item.CounterpartyIBAN = "", ""
	return recon.Entry{ID: id, Kind: kind, TransactionID: t.ID, EffectiveDate: t.BookingDate, BookedAt: now, Note: note, Actor: actor, Item: &item,
		Postings: []recon.Posting{
			{Account: ledger.Memo, Side: recon.DebitSide, Amount: amount, Currency: t.Currency},
			{Account: ledger.Memo, Side: recon.CreditSide, Amount: amount, Currency: t.Currency},
		}}
}

// dismiss closes a review item on a person's request.
func (p *Poster) dismiss(now time.Time, r Routed) Result {
	d := &recon.Decision{TransactionID: r.Transaction.ID, Rule: "manual", Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note}
	it, ok := p.items[r.ItemID]
	if !ok || it.Kind != ItemConflict {
		d.Outcome, d.Reason = recon.Rejected, "no open review item "+r.ItemID
		return Result{Decision: d}
	}
	t := it.Transaction
	d.TransactionID, d.Amount, d.Currency, d.Direction, d.Outcome = t.ID, t.Amount, t.Currency, t.Direction, recon.Duplicate
	d.Reason = "identity conflict dismissed: " + r.Note
	res := Result{Decision: d}
	p.emit(&res, memo(now, t, EntryReviewClosed, "e_"+r.ItemID+"_"+EntryReviewClosed, r.Note, r.Actor))
	d.EntryIDs = []string{res.Entries[0].ID}
	return res
}

// unassign takes back, on the loan's partition, what an assignment (or an
// automatic re-match) of a suspense item booked, and routes the money back
// to suspense (KindRepark). Only a whole assignment to one loan can be
// taken back; what the loan has since used of it is taken back borrower
// credit first, then principal, interest, fees.
func (p *Poster) unassign(now time.Time, r Routed) Result {
	t := r.Transaction
	d := &recon.Decision{TransactionID: t.ID, Rule: "manual-unassign", Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note, LoanID: r.LoanID}
	reject := func(why string) Result {
		d.Outcome, d.Reason = recon.Rejected, why
		return Result{Decision: d}
	}
	s := p.loan(r.LoanID)
	a := s.repayments[t.ID]
	switch {
	case a == nil || !a.rematch:
		return reject("no assignment of " + t.ID + " booked on loan " + r.LoanID)
	case a.reversed:
		return reject("the assignment of " + t.ID + " was returned since")
	}
	cur := s.currency
	amount := fromMinor(a.total, cur)
	it := recon.BankTransaction{ID: t.ID, Direction: recon.Credit, Currency: cur}
	rr := Routed{Note: r.Note, Actor: r.Actor, Round: a.round}
	var res Result
	if !p.takeBack(&res, now, r.LoanID, it, amount, EntryUnassign, rr) {
		return reject("loan " + r.LoanID + " no longer holds " + amount.String() + " of it")
	}
	d.Outcome, d.Amount, d.Currency, d.Direction = recon.Suspense, amount, cur, it.Direction
	d.Reason = "unassigned from loan " + r.LoanID + ": " + r.Note
	d.EntryIDs = []string{res.Entries[0].ID}
	res.Decision = d
	res.Routed = append(res.Routed, Routed{Kind: KindRepark, Key: suspenseKey, Transaction: recon.BankTransaction{ID: t.ID}, LoanID: r.LoanID,
		Amount: &amount, Note: r.Note, Actor: r.Actor, Round: a.round, Rule: "manual-unassign"})
	return res
}

// repark puts money taken back from a loan into suspense again, as an
// item a person can assign anew (never re-matched automatically). Shares
// of a split assignment coming back join the open item.
func (p *Poster) repark(now time.Time, r Routed) Result {
	var res Result
	id := entryID(r.Transaction.ID, EntryRepark, "", 0) + "_" + r.LoanID + "_r" + strconv.Itoa(r.Round)
	rel, ok := p.released[r.Transaction.ID]
	if !ok || p.reparked[id] {
		return res // redelivered
	}
	t := rel.Transaction
	e := entry(now, t, EntryRepark, "", ledger.Transit, ledger.Suspense, *r.Amount)
	if t.Direction == recon.Debit {
		e = entry(now, t, EntryRepark, "", ledger.Suspense, ledger.Transit, *r.Amount)
	}
	e.ID, e.Round = id, rel.Round
	if it := p.items[t.ID]; it != nil {
		e.Round = it.Round
	}
	e.Note, e.Actor = "unassigned from loan "+r.LoanID+": "+r.Note, r.Actor
	item := t
	e.Item = &item
	p.emit(&res, e)
	return res
}

func (p *Poster) itemIDs() []string {
	ids := make([]string, 0, len(p.items))
	for id := range p.items {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

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
