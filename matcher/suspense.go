package matcher

// Suspense: money parked for a loan or a person, review items, and what
// people do with them (assign, split, unassign, dismiss).

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

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

// assign moves a suspense item to one or more loans on a person's request.
// An outgoing item (a return parked because its amount does not equal its
// original's) goes to one loan whole and is booked there against the
// original it names when the amounts agree, else taken back from the loan
// (see EntryTakeBack).
func (p *Poster) assign(now time.Time, r Routed) Result {
	d := &recon.Decision{TransactionID: r.Transaction.ID, Rule: RuleManual, Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note}
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
	p.release(&res, now, it, r.Allocations, RuleManual, r.Note, r.Actor)
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
	for _, id := range p.waitingReturns(t.EndToEndID) {
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
	d := &recon.Decision{TransactionID: r.Transaction.ID, Rule: RuleManual, Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note}
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
	d := &recon.Decision{TransactionID: t.ID, Rule: RuleManualUnassign, Confidence: decimal.NewFromInt(1), DecidedAt: now, Evidence: r.Note, LoanID: r.LoanID}
	reject := func(why string) Result {
		d.Outcome, d.Reason = recon.Rejected, why
		return Result{Decision: d}
	}
	s := p.loan(r.LoanID)
	a, booked := p.repayment(r.LoanID, t.ID)
	switch {
	case !booked || !a.rematch:
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
		Amount: &amount, Note: r.Note, Actor: r.Actor, Round: a.round, Rule: RuleManualUnassign})
	return res
}

// repark puts money taken back from a loan into suspense again, as an
// item a person can assign anew (never re-matched automatically). Shares
// of a split assignment coming back join the open item.
func (p *Poster) repark(now time.Time, r Routed) Result {
	var res Result
	id := entryID(r.Transaction.ID, EntryRepark, "", 0) + "_" + r.LoanID + "_r" + strconv.Itoa(r.Round)
	rel, ok := p.released(r.Transaction.ID)
	if _, done := p.kv.Get(prefixReparked + id); !ok || done {
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
