package matcher

import (
	"fmt"
	"sort"
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
)

// Poster books routed transactions for the loans of one journal partition.
// Its whole state is a function of that partition's journal: Post and
// Restore go through the same apply, so a restart that replays the journal
// arrives at the state the crashed instance had.
type Poster struct {
	loans  *Loans
	router *Router
	state  map[string]*loanState
	posted map[string]bool  // transaction ids booked here (the posting key)
	items  map[string]*Item // open suspense items of this partition
	fresh  []string         // items parked since the last Rematch
	Head   ledger.Head
}

// Item is money parked in suspense, waiting for a loan or a person.
type Item struct {
	Transaction recon.BankTransaction
	LoanID      string // set when the loan is known but the money could not be allocated
	Reason      string
	Since       time.Time
	EntryID     string
}

type loanState struct {
	paid       map[string]decimal.Decimal // part -> credits minus debits
	credit     decimal.Decimal            // borrower credit (overpayments)
	repayments map[string][]recon.Posting // transaction id -> its allocation
	byE2E      map[string]string          // end-to-end id -> transaction id
}

// NewPoster returns a Poster for one journal partition.
func NewPoster(loans *Loans) *Poster {
	return &Poster{loans: loans, router: NewRouter(loans), state: map[string]*loanState{}, posted: map[string]bool{}, items: map[string]*Item{}}
}

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
	t := r.Transaction
	var res Result
	switch r.Kind {
	case KindAssign:
		return p.assign(now, r)
	case KindRematch:
		if _, done := p.loan(r.LoanID).repayments[t.ID]; done {
			return res // a redelivered share: booked already
		}
		p.emit(&res, p.allocate(now, r.LoanID, t, *r.Amount, ledger.Transit, EntryRematchIn, r))
		p.applyCredit(&res, now, r.LoanID, t)
		return res
	}
	d := &recon.Decision{TransactionID: t.ID, Amount: t.Amount, Currency: t.Currency, Direction: t.Direction,
		BookingDate: t.BookingDate, Rule: r.Rule, Confidence: r.Confidence, Evidence: r.Evidence, LoanID: r.LoanID, DecidedAt: now}
	res.Decision = d
	if p.posted[t.ID] {
		d.Outcome, d.Rule, d.Reason = recon.Duplicate, "posting-key", "already booked in the journal"
		return res
	}
	loan, known := p.loans.Get(r.LoanID)
	switch {
	case r.LoanID == "" && r.Rule == "bank-charge" && t.Direction == recon.Debit:
		p.emit(&res, entry(now, t, EntryBankFees, "", ledger.BankFees, ledger.Bank(t.AccountIBAN), t.Amount))
	case r.LoanID == "" || !known:
		p.emit(&res, p.suspense(now, t, "", orDefault(r.Reason, "loan unknown")))
	case loan.Currency != t.Currency:
		p.emit(&res, p.suspense(now, t, loan.LoanID, "currency "+t.Currency+" differs from the loan's "+loan.Currency))
	case t.Direction == recon.Credit && !t.Reversal:
		p.emit(&res, p.allocate(now, loan.LoanID, t, t.Amount, ledger.Bank(t.AccountIBAN), EntryRepayment, r))
		p.resolveWaiting(&res, now, loan.LoanID, t)
	case t.ReturnReason != "" || t.Reversal:
		p.reverse(&res, now, loan.LoanID, t, ledger.Bank(t.AccountIBAN))
	default:
		p.refund(&res, now, loan.LoanID, t)
	}
	d.Outcome = recon.Posted
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
		s = &loanState{paid: map[string]decimal.Decimal{}, repayments: map[string][]recon.Posting{}, byE2E: map[string]string{}}
		p.state[id] = s
	}
	return s
}

// apply is the one state transition, shared by Post and Restore.
func (p *Poster) apply(e recon.Entry) {
	switch e.Kind {
	case EntryRepayment, EntrySuspense, EntryReversal, EntryRefund, EntryBankFees:
		p.posted[e.TransactionID] = true
	}
	if e.LoanID != "" {
		s := p.loan(e.LoanID)
		for _, ps := range e.Postings {
			part, ok := strings.CutPrefix(ps.Account, "loan:"+e.LoanID+":")
			if !ok {
				continue
			}
			delta := ps.Amount
			if ps.Side == recon.DebitSide {
				delta = delta.Neg()
			}
			if part == "credit" {
				s.credit = s.credit.Add(delta)
			} else {
				s.paid[part] = s.paid[part].Add(delta)
			}
		}
		switch e.Kind {
		case EntryRepayment, EntryRematchIn:
			s.repayments[e.TransactionID] = e.Postings
			if e.EndToEndID != "" {
				s.byE2E[e.EndToEndID] = e.TransactionID
			}
		case EntryReversal:
			delete(s.byE2E, e.EndToEndID)
		}
	}
	switch e.Kind {
	case EntrySuspense:
		p.items[e.TransactionID] = &Item{Transaction: *e.Item, LoanID: e.LoanID, Reason: e.Note, Since: e.BookedAt, EntryID: e.ID}
		p.fresh = append(p.fresh, e.TransactionID)
	case EntryRelease, EntryReversal:
		delete(p.items, e.TransactionID) // released, or a waiting return resolved
	}
}

type gap struct {
	part   string
	amount decimal.Decimal
}

// gaps is what each instalment still owes, part by part, oldest first:
// fees, then interest, then principal. A loan without a schedule owes its
// principal.
func (p *Poster) gaps(loan recon.Loan) []gap {
	sched := loan.Schedule
	if len(sched) == 0 {
		sched = []recon.Instalment{{Principal: loan.Principal}}
	} else {
		sched = append([]recon.Instalment(nil), sched...)
		sort.SliceStable(sched, func(i, j int) bool { return sched[i].DueDate < sched[j].DueDate })
	}
	s := p.loan(loan.LoanID)
	left := map[string]decimal.Decimal{"fees": s.paid["fees"], "interest": s.paid["interest"], "principal": s.paid["principal"]}
	var out []gap
	for _, in := range sched {
		for _, g := range []gap{{"fees", in.Fees}, {"interest", in.Interest}, {"principal", in.Principal}} {
			covered := decimal.Min(g.amount, decimal.Max(left[g.part], decimal.Zero))
			left[g.part] = left[g.part].Sub(covered)
			if rest := g.amount.Sub(covered); rest.IsPositive() {
				out = append(out, gap{g.part, rest})
			}
		}
	}
	return out
}

// allocate books amount from the funding account to the loan's parts in
// waterfall order; what exceeds the amount owed becomes borrower credit.
func (p *Poster) allocate(now time.Time, loanID string, t recon.BankTransaction, amount decimal.Decimal, from, kind string, r Routed) recon.Entry {
	loan, _ := p.loans.Get(loanID)
	e := recon.Entry{ID: entryID(t.ID, kind, loanID), Kind: kind, LoanID: loanID, TransactionID: t.ID, EndToEndID: t.EndToEndID,
		EffectiveDate: t.BookingDate, BookedAt: now, Note: r.Note, Actor: r.Actor}
	e.Postings = append(e.Postings, recon.Posting{Account: from, Side: recon.DebitSide, Amount: amount, Currency: t.Currency})
	left := amount
	byPart := map[string]decimal.Decimal{}
	for _, g := range p.gaps(loan) {
		if !left.IsPositive() {
			break
		}
		take := decimal.Min(left, g.amount)
		byPart[g.part] = byPart[g.part].Add(take)
		left = left.Sub(take)
	}
	for _, part := range []string{"fees", "interest", "principal"} {
		if a := byPart[part]; a.IsPositive() {
			e.Postings = append(e.Postings, recon.Posting{Account: account(loanID, part), Side: recon.CreditSide, Amount: a, Currency: t.Currency})
		}
	}
	if left.IsPositive() {
		e.Postings = append(e.Postings, recon.Posting{Account: ledger.Credit(loanID), Side: recon.CreditSide, Amount: left, Currency: t.Currency})
	}
	return e
}

func account(loanID, part string) string { return "loan:" + loanID + ":" + part }

// reverse undoes the original allocation of a returned or reversed
// transaction exactly. A return whose original is not booked yet waits in
// suspense and is resolved when the original arrives.
func (p *Poster) reverse(res *Result, now time.Time, loanID string, t recon.BankTransaction, from string) {
	s := p.loan(loanID)
	origID, ok := s.byE2E[t.EndToEndID]
	if !ok || t.EndToEndID == "" {
		p.emit(res, p.suspense(now, t, loanID, "return awaiting its original (end-to-end id "+orDefault(t.EndToEndID, "missing")+")"))
		return
	}
	orig := s.repayments[origID]
	if !orig[0].Amount.Equal(t.Amount) || orig[0].Currency != t.Currency {
		p.emit(res, p.suspense(now, t, loanID, "return of "+t.Amount.String()+" does not equal original "+orig[0].Amount.String()))
		return
	}
	e := recon.Entry{ID: entryID(t.ID, EntryReversal, loanID), Kind: EntryReversal, LoanID: loanID, TransactionID: t.ID,
		EndToEndID: t.EndToEndID, Reverses: origID, EffectiveDate: t.BookingDate, BookedAt: now, Note: "return " + t.ReturnReason}
	for i, ps := range orig {
		rev := ps
		rev.Side = recon.CreditSide
		if ps.Side == recon.CreditSide {
			rev.Side = recon.DebitSide
		}
		if i == 0 {
			rev.Account = from // the money leaves where the return is booked
		}
		e.Postings = append(e.Postings, rev)
	}
	p.emit(res, e)
	p.applyCredit(res, now, loanID, t)
}

// resolveWaiting books a waiting return once its original has been booked.
func (p *Poster) resolveWaiting(res *Result, now time.Time, loanID string, orig recon.BankTransaction) {
	if orig.EndToEndID == "" {
		return
	}
	for _, id := range p.itemIDs() {
		it := p.items[id]
		rt := it.Transaction
		if it.LoanID == loanID && rt.EndToEndID == orig.EndToEndID && rt.Direction == recon.Debit && (rt.ReturnReason != "" || rt.Reversal) &&
			rt.Amount.Equal(orig.Amount) && rt.Currency == orig.Currency { // else it stays parked, not parked twice
			p.reverse(res, now, loanID, rt, ledger.Suspense)
			return
		}
	}
}

// applyCredit uses the borrower's credit on what the loan owes, so at most
// one of outstanding and overpaid is non-zero.
func (p *Poster) applyCredit(res *Result, now time.Time, loanID string, t recon.BankTransaction) {
	s := p.loan(loanID)
	loan, _ := p.loans.Get(loanID)
	owed := decimal.Zero
	for _, g := range p.gaps(loan) {
		owed = owed.Add(g.amount)
	}
	use := decimal.Min(s.credit, owed)
	if !use.IsPositive() {
		return
	}
	p.emit(res, p.allocate(now, loanID, t, use, ledger.Credit(loanID), EntryCreditApplied, Routed{Note: "borrower credit applied"}))
}

// refund books an outgoing transfer to the borrower against its credit.
func (p *Poster) refund(res *Result, now time.Time, loanID string, t recon.BankTransaction) {
	if p.loan(loanID).credit.LessThan(t.Amount) {
		p.emit(res, p.suspense(now, t, loanID, "debit on a loan without enough borrower credit"))
		return
	}
	p.emit(res, entry(now, t, EntryRefund, loanID, ledger.Credit(loanID), ledger.Bank(t.AccountIBAN), t.Amount))
}

// suspense parks t: a credit moves bank→suspense, a debit suspense→bank.
func (p *Poster) suspense(now time.Time, t recon.BankTransaction, loanID, reason string) recon.Entry {
	var e recon.Entry
	if t.Direction == recon.Credit {
		e = entry(now, t, EntrySuspense, loanID, ledger.Bank(t.AccountIBAN), ledger.Suspense, t.Amount)
	} else {
		e = entry(now, t, EntrySuspense, loanID, ledger.Suspense, ledger.Bank(t.AccountIBAN), t.Amount)
	}
	e.Note = reason
	item := t
	item.CounterpartyName, item.CounterpartyIBAN = "", "" // personal data stays out of the chain
	e.Item = &item
	return e
}

// Rematch releases the suspense items whose loan has become known: every
// item when the loans table changed (all), else only the items parked since
// the last call (their loan may have arrived while they were in flight).
func (p *Poster) Rematch(now time.Time, all bool) Result {
	var res Result
	ids := p.fresh
	if all {
		ids = p.itemIDs()
	}
	p.fresh = nil
	for _, id := range ids {
		it, ok := p.items[id]
		if !ok {
			continue
		}
		t := it.Transaction
		if it.LoanID != "" || t.Direction != recon.Credit || t.Remainder || t.IsCharge {
			continue
		}
		rt := p.router.cascade(t)
		if rt.LoanID == "" {
			continue
		}
		if loan, _ := p.loans.Get(rt.LoanID); loan.Currency != t.Currency {
			continue
		}
		p.release(&res, now, it, []Allocation{{LoanID: rt.LoanID, Amount: t.Amount}}, rt.Rule, "re-matched automatically by "+rt.Rule, "recon")
	}
	return res
}

// assign moves a suspense item to one or more loans on a person's request.
func (p *Poster) assign(now time.Time, r Routed) Result {
	d := &recon.Decision{TransactionID: r.Transaction.ID, Rule: "manual", Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note}
	reject := func(why string) Result {
		d.Outcome, d.Reason = recon.Rejected, why
		return Result{Decision: d}
	}
	it, ok := p.items[r.Transaction.ID]
	if !ok {
		return reject("no open suspense item " + r.Transaction.ID)
	}
	t := it.Transaction
	d.Amount, d.Currency, d.Direction, d.BookingDate = t.Amount, t.Currency, t.Direction, t.BookingDate
	if t.Direction != recon.Credit {
		return reject("only incoming money can be assigned to loans")
	}
	sum := decimal.Zero
	shares := map[string]bool{}
	for _, a := range r.Allocations {
		loan, known := p.loans.Get(a.LoanID)
		switch {
		case shares[a.LoanID]: // one share per loan: entry and record ids derive from the loan
			return reject("loan " + a.LoanID + " is allocated more than once")
		case !known:
			return reject("unknown loan " + a.LoanID)
		case loan.Currency != t.Currency:
			return reject("loan " + a.LoanID + " is in " + loan.Currency)
		case !a.Amount.IsPositive():
			return reject(fmt.Sprintf("allocation to %s is not positive", a.LoanID))
		}
		shares[a.LoanID] = true
		sum = sum.Add(a.Amount)
	}
	if len(r.Allocations) == 0 || !sum.Equal(t.Amount) {
		return reject("allocations sum to " + sum.String() + ", the item is " + t.Amount.String())
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
// share to its loan's partition, where a rematch entry books it.
func (p *Poster) release(res *Result, now time.Time, it *Item, allocs []Allocation, rule, note, actor string) {
	t := it.Transaction
	e := entry(now, t, EntryRelease, "", ledger.Suspense, ledger.Transit, t.Amount)
	e.Note, e.Actor = note, actor
	p.emit(res, e)
	for _, a := range allocs {
		amt := a.Amount
		res.Routed = append(res.Routed, Routed{Kind: KindRematch, Key: a.LoanID, Transaction: t, LoanID: a.LoanID,
			Rule: rule, Confidence: decimal.NewFromInt(1), Amount: &amt, Note: note, Actor: actor})
	}
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
	return recon.Entry{ID: entryID(t.ID, kind, loanID), Kind: kind, LoanID: loanID, TransactionID: t.ID, EndToEndID: t.EndToEndID,
		EffectiveDate: t.BookingDate, BookedAt: now, Postings: []recon.Posting{
			{Account: debit, Side: recon.DebitSide, Amount: amount, Currency: t.Currency},
			{Account: credit, Side: recon.CreditSide, Amount: amount, Currency: t.Currency},
		}}
}

// entryID is derived from the bank identity: a redelivery gets the same id.
func entryID(txnID, kind, loanID string) string {
	id := "e_" + txnID + "_" + kind
	if loanID != "" {
		id += "_" + loanID
	}
	return id
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
