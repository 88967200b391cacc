package matcher

import (
	"math"
	"math/bits"
	"sort"
	"strings"
	"time"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// A borrower's virtual IBAN serves all their loans. Money to it goes to
// the loan its reference names (the Router decides that); otherwise the
// Poster allocates it across the borrower's loans by the Allocation
// policy, and what exceeds everything they owe is borrower credit
// (ledger.BorrowerCredit), applied automatically when an amount reopens.
// All of a borrower's loans post in one partition (Loans.PartitionKey), so
// the allocation sees every loan's state.

// Allocation policies for money paid to a borrower.
const (
	// AllocOldestDue pays the borrower's instalments in due-date order
	// across their loans (fees, interest, then principal of each
	// instalment); a loan without schedule comes last.
	AllocOldestDue = "oldest-due-first"
	// AllocProRata splits the payment across the borrower's loans in
	// proportion to what each owes (remainders of a minor unit to the loans
	// due first), then each loan's share in its own due order.
	AllocProRata = "pro-rata"
)

// borrowerState is what the Poster holds of a borrower in memory; the
// credit each transaction booked and the transactions by end-to-end id
// are in its KV (state.go).
type borrowerState struct {
	credit int64 // borrower credit, minor units
}

// applyBorrower keeps the borrower's credit from an entry.
func (p *Poster) applyBorrower(e recon.Entry) {
	b := p.borrower(e.BorrowerID)
	acct := ledger.BorrowerCredit(e.BorrowerID)
	for _, ps := range e.Postings {
		if ps.Account != acct {
			continue
		}
		delta := orZero(toMinor(ps.Amount, ps.Currency))
		if ps.Side == recon.DebitSide {
			delta = -delta
		}
		b.credit += delta
		switch e.Kind {
		case EntryRepayment:
			p.addBorrowerTxnCredit(e.BorrowerID, e.TransactionID, delta)
			if e.EndToEndID != "" {
				p.kv.Set(key2(prefixBorrowerE2E, e.BorrowerID, e.EndToEndID), []byte(e.TransactionID))
			}
		case EntryReversal:
			p.addBorrowerTxnCredit(e.BorrowerID, e.Reverses, delta)
		}
	}
	p.kv.Set(prefixBorrower+e.BorrowerID, writer(nil).int(b.credit))
}

// share is one loan's part of a borrower's payment.
type share struct {
	loanID string
	take   [3]int64
	dues   []int64 // due days of the instalments it pays
}

func (sh share) total() int64 { return sh.take[0] + sh.take[1] + sh.take[2] }

// plan splits amount over what the borrower's loans in currency cur still
// owe, by the Poster's Allocation policy; left is what exceeds it.
func (p *Poster) plan(borrowerID, cur string, amount int64) (shares []share, left int64) {
	type due struct {
		day  int64
		loan int
		rest [3]int64
	}
	var dues []due
	for _, id := range p.loans.LoansOf(borrowerID) {
		off, ok := p.loans.find(keyID, id)
		s := p.loan(id)
		if !ok || p.loans.view(off).currency != cur || s.inexact {
			continue
		}
		shares = append(shares, share{loanID: id})
		covered := s.paid
		it := p.loans.view(off).instalments()
		for it.next() {
			var rest [3]int64
			for part, d := range it.part {
				c := min(d, max(covered[part], 0))
				covered[part] -= c
				rest[part] = d - c
			}
			if rest != [3]int64{} {
				day := it.day
				if it.only {
					day = math.MaxInt64
				}
				dues = append(dues, due{day: day, loan: len(shares) - 1, rest: rest})
			}
		}
	}
	sort.SliceStable(dues, func(i, j int) bool { return dues[i].day < dues[j].day })
	budget := make([]int64, len(shares)) // pro-rata: each loan's part of amount
	if p.Allocation == AllocProRata {
		owed, total := make([]int64, len(shares)), int64(0)
		for _, d := range dues {
			owed[d.loan] += d.rest[0] + d.rest[1] + d.rest[2]
			total += d.rest[0] + d.rest[1] + d.rest[2]
		}
		spend := min(amount, total)
		given := int64(0)
		for i := range shares {
			if total > 0 {
				hi, lo := bits.Mul64(uint64(spend), uint64(owed[i])) // exact: spend·owed/total ≤ spend
				q, _ := bits.Div64(hi, lo, uint64(total))
				budget[i] = int64(q)
				given += budget[i]
			}
		}
		for _, d := range dues { // remainders of a minor unit, loans due first
			if given == spend {
				break
			}
			if budget[d.loan] < owed[d.loan] {
				budget[d.loan]++
				given++
			}
		}
	}
	left = amount
	for _, d := range dues {
		sh := &shares[d.loan]
		before := sh.total()
		for part := range 3 {
			x := min(left, d.rest[part])
			if p.Allocation == AllocProRata {
				x = min(x, budget[d.loan])
				budget[d.loan] -= x
			}
			sh.take[part] += x
			left -= x
		}
		if sh.total() > before {
			sh.dues = append(sh.dues, d.day)
		}
	}
	return shares, left
}

// borrowerMoney books money routed to a borrower (no loan named).
func (p *Poster) borrowerMoney(res *Result, now time.Time, r Routed, from string) {
	t := r.Transaction
	switch {
	case t.Direction == recon.Credit && !t.Reversal:
		p.allocateBorrower(res, now, r.BorrowerID, t, from, r)
	case t.Direction == recon.Debit && (t.ReturnReason != "" || t.Reversal):
		p.reverseBorrower(res, now, r.BorrowerID, t, from, r.Round)
	default:
		p.emit(res, p.park(now, t, "", "outgoing money on borrower "+r.BorrowerID+"'s virtual IBAN: assign it to a loan", from, r.Round))
	}
}

// allocateBorrower books a payment to a borrower across their loans: one
// repayment entry per loan it pays (its note says which policy and which
// instalments), and one for what exceeds what they owe, to their credit.
func (p *Poster) allocateBorrower(res *Result, now time.Time, bid string, t recon.BankTransaction, from string, r Routed) {
	cur := t.Currency
	amount := minor(t.Amount, cur)
	shares, left := p.plan(bid, cur, amount)
	if len(shares) == 0 {
		p.emit(res, p.park(now, t, "", "borrower "+bid+" has no loan in "+cur, from, r.Round))
		return
	}
	policy := orDefault(p.Allocation, AllocOldestDue)
	for _, sh := range shares {
		if sh.total() == 0 {
			continue
		}
		e := recon.Entry{ID: entryID(t.ID, EntryRepayment, sh.loanID, r.Round), Kind: EntryRepayment, LoanID: sh.loanID, BorrowerID: bid,
			TransactionID: t.ID, EndToEndID: t.EndToEndID, EffectiveDate: t.BookingDate, BookedAt: now, Actor: r.Actor, Round: r.Round,
			Note: "borrower " + bid + ", " + policy + "; instalments due " + days(sh.dues)}
		e.Postings = append(e.Postings, recon.Posting{Account: from, Side: recon.DebitSide, Amount: fromMinor(sh.total(), cur), Currency: cur})
		for part, a := range sh.take {
			if a > 0 {
				e.Postings = append(e.Postings, recon.Posting{Account: account(sh.loanID, part), Side: recon.CreditSide, Amount: fromMinor(a, cur), Currency: cur})
			}
		}
		p.emit(res, e)
	}
	if left > 0 {
		key := BorrowerKey(bid)
		e := recon.Entry{ID: entryID(t.ID, EntryRepayment, key, r.Round), Kind: EntryRepayment, BorrowerID: bid,
			TransactionID: t.ID, EndToEndID: t.EndToEndID, EffectiveDate: t.BookingDate, BookedAt: now, Actor: r.Actor, Round: r.Round,
			Note: "borrower " + bid + ": beyond what all their loans owe, borrower credit"}
		e.Postings = []recon.Posting{
			{Account: from, Side: recon.DebitSide, Amount: fromMinor(left, cur), Currency: cur},
			{Account: ledger.BorrowerCredit(bid), Side: recon.CreditSide, Amount: fromMinor(left, cur), Currency: cur},
		}
		p.emit(res, e)
	}
}

func days(ds []int64) string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d == math.MaxInt64 {
			out = append(out, "(no schedule)")
			continue
		}
		out = append(out, string(dateOfDay(d)))
	}
	return strings.Join(out, ", ")
}

// reverseBorrower books the return of a payment that was allocated across
// a borrower's loans: every loan's share and the credit it booked are
// taken back, or, when that is no longer possible exactly, the return is
// parked for a person.
func (p *Poster) reverseBorrower(res *Result, now time.Time, bid string, t recon.BankTransaction, from string, round int) {
	b := p.borrower(bid)
	var origID string
	if t.EndToEndID != "" {
		v, _ := p.kv.Get(key2(prefixBorrowerE2E, bid, t.EndToEndID))
		origID = string(v)
	}
	type part struct {
		loanID string
		orig   alloc
		take   [4]int64
	}
	var parts []part
	for _, id := range p.loans.LoansOf(bid) {
		oid, ok := p.creditByE2E(id, t.EndToEndID) // none on a loan never used
		if !ok || origID != "" && oid != origID {
			continue
		}
		origID = oid
		if orig, ok := p.repayment(id, oid); ok && !orig.reversed {
			s := p.loan(id)
			take, ok := reversalTake(s, orig)
			if !ok {
				p.emit(res, p.park(now, t, "", "return of "+t.Amount.String()+": loan "+id+" no longer holds its share of the original", from, round))
				return
			}
			parts = append(parts, part{loanID: id, orig: orig, take: take})
		}
	}
	if origID == "" {
		p.emit(res, p.park(now, t, "", "return awaiting its original on borrower "+bid+" (end-to-end id "+orDefault(t.EndToEndID, "missing")+")", from, round))
		return
	}
	cur := t.Currency
	credit := p.borrowerTxnCredit(bid, origID)
	total := credit
	for _, pt := range parts {
		total += pt.orig.total
	}
	if amount := minor(t.Amount, cur); total != amount || credit > b.credit {
		p.emit(res, p.park(now, t, "", "return of "+t.Amount.String()+" does not equal what borrower "+bid+"'s loans and credit still hold of the original ("+fromMinor(total, cur).String()+")", from, round))
		return
	}
	for _, pt := range parts {
		e := reversal(now, pt.loanID, t, origID, fromMinor(pt.orig.total, cur), pt.take, from, round)
		e.BorrowerID = bid
		p.emit(res, e)
	}
	if credit > 0 {
		e := recon.Entry{ID: entryID(t.ID, EntryReversal, BorrowerKey(bid), round), Kind: EntryReversal, BorrowerID: bid, TransactionID: t.ID,
			EndToEndID: t.EndToEndID, Reverses: origID, EffectiveDate: t.BookingDate, BookedAt: now, Note: "return " + t.ReturnReason, Round: round}
		e.Postings = []recon.Posting{
			{Account: from, Side: recon.CreditSide, Amount: fromMinor(credit, cur), Currency: cur},
			{Account: ledger.BorrowerCredit(bid), Side: recon.DebitSide, Amount: fromMinor(credit, cur), Currency: cur},
		}
		p.emit(res, e)
	}
	p.applyBorrowerCredit(res, now, bid, cur, t.ID)
}

// applyBorrowerCredit uses a borrower's credit on what their loans owe
// again (an amount reopened by a return), by the same policy as a payment.
func (p *Poster) applyBorrowerCredit(res *Result, now time.Time, bid, cur, txnID string) {
	b := p.borrower(bid)
	if b.credit <= 0 {
		return
	}
	shares, _ := p.plan(bid, cur, b.credit)
	for _, sh := range shares {
		if sh.total() == 0 {
			continue
		}
		e := recon.Entry{ID: entryID(txnID, EntryCreditApplied, sh.loanID, 0), Kind: EntryCreditApplied, LoanID: sh.loanID, BorrowerID: bid,
			TransactionID: txnID, BookedAt: now, Note: "borrower " + bid + " credit applied; instalments due " + days(sh.dues)}
		e.Postings = append(e.Postings, recon.Posting{Account: ledger.BorrowerCredit(bid), Side: recon.DebitSide, Amount: fromMinor(sh.total(), cur), Currency: cur})
		for part, a := range sh.take {
			if a > 0 {
				e.Postings = append(e.Postings, recon.Posting{Account: account(sh.loanID, part), Side: recon.CreditSide, Amount: fromMinor(a, cur), Currency: cur})
			}
		}
		p.emit(res, e)
	}
}
