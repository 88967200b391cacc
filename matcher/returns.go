package matcher

// Returns and reversals: what undoes a booked movement, found by its
// end-to-end id, and borrower credit applied to what reopens.

import (
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// reverse undoes the original allocation of a returned or reversed
// transaction exactly. A return whose original is not booked yet waits in
// suspense and is resolved when the original arrives. from is where the
// money leaves: the bank, suspense (a waiting return) or transit (a return
// that followed its original out of suspense).
func (p *Poster) reverse(res *Result, now time.Time, loanID string, t recon.BankTransaction, from string, round int) {
	s := p.loan(loanID)
	origID, ok := p.creditByE2E(loanID, t.EndToEndID)
	var orig alloc
	if ok {
		orig, ok = p.repayment(loanID, origID)
	}
	if !ok {
		p.emit(res, p.park(now, t, loanID, "return awaiting its original (end-to-end id "+orDefault(t.EndToEndID, "missing")+")", from, round))
		return
	}
	cur := t.Currency
	amount, _ := toMinor(t.Amount, cur)
	if orig.total != amount || s.currency != cur {
		p.emit(res, p.park(now, t, loanID, "return of "+t.Amount.String()+" does not equal original "+fromMinor(orig.total, s.currency).String(), from, round))
		return
	}
	take, ok := reversalTake(s, orig)
	if !ok {
		p.emit(res, p.park(now, t, loanID, "return of "+t.Amount.String()+" exceeds what the loan still holds of its original", from, round))
		return
	}
	p.emit(res, reversal(now, loanID, t, origID, t.Amount, take, from, round))
	p.applyCredit(res, now, loanID, t.ID)
}

// reversalTake is what reversing an original allocation takes from the loan:
// the original's shares, as far as the loan still holds them (credit may
// have been applied since, an assignment taken back); the rest backwards
// through the waterfall. False when the loan no longer holds that much.
func reversalTake(s *loanState, orig alloc) (take [4]int64, ok bool) {
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
	out, ok := p.debit(loanID, t.EndToEndID)
	amount, _ := toMinor(t.Amount, t.Currency)
	switch {
	case !ok:
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
	for _, id := range p.waitingReturns(orig.EndToEndID) {
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
	if r.Rule == RuleDisbursement {
		kind, debit = EntryDisbursement, ledger.Principal(loanID)
	} else if amount, _ := toMinor(t.Amount, t.Currency); p.loan(loanID).credit < amount {
		p.emit(res, p.park(now, t, loanID, "debit on a loan without enough borrower credit (not a return, a disbursement or a covered refund)", from, r.Round))
		return
	}
	e := entry(now, t, kind, loanID, debit, from, t.Amount)
	e.ID, e.Round, e.Note, e.Actor = entryID(t.ID, kind, loanID, r.Round), r.Round, r.Note, r.Actor
	p.emit(res, e)
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
