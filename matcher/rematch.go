package matcher

// Re-matching: money parked before its loan was known, booked through
// the live path when the loan arrives.

import (
	"time"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

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
		for _, id := range p.creditedLoans() { // loans not loaded included
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
	case rule == RuleDisbursement:
		return phaseDisbursement
	}
	return phaseOutgoing
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
	if p.rounds(t.ID, r.LoanID) > r.Round {
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
	auto := r.Rule != RuleManual
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
	// A return: re-matched automatically, or assigned by a person to the
	// loan holding its whole original, it reverses that original; a person
	// assigning it otherwise takes the amount back through the waterfall.
	wholeOriginal := false
	if orig, found := p.creditByE2E(r.LoanID, t.EndToEndID); found {
		a, booked := p.repayment(r.LoanID, orig)
		wholeOriginal = booked && a.total == minor(*r.Amount, t.Currency)
	}
	if auto || wholeOriginal {
		p.reverse(&res, now, r.LoanID, t, ledger.Transit, r.Round)
		return res
	}
	p.takeBack(&res, now, r.LoanID, t, *r.Amount, EntryTakeBack, r)
	return res
}
