package matcher

import (
	"strconv"
	"strings"
	"testing"

	"github.com/reconhq/recon"
)

// Regression: an outgoing transfer (a disbursement, a refund) that arrived
// before its loan was parked in suspense for good: Rematch released only
// credits. Now every whole item parked for want of a loan is routed by the
// cascade when the loans change and booked on the loan by the rule the live
// path would have used; returns included (they follow a parked original,
// else take the return rule on the loan the cascade finds).
func TestRematchOutgoingWhenLoanArrives(t *testing.T) {
	loan := recon.Loan{LoanID: "L-88", VirtualIBAN: "DE00VIBA0000000088", Currency: "EUR", Principal: dec("500.00"), DisbursementEndToEndID: "DISB-L-88"}
	const viban = "DE00VIBA0000000088"
	bank := "bank:" + lender
	disb := txn(recon.Debit, "500.00", "", "DISB-L-88")
	back := credit("500.00", viban, "DISB-L-88") // the disbursement came back
	back.Reversal = true
	back.ID = recon.IdentityKey(back)
	gbp := disb
	gbp.Currency = "GBP"
	gbp.ID = recon.IdentityKey(gbp)
	refund := txn(recon.Debit, "20.00", viban, "E2E-RF")
	over := credit("520.00", viban, "E2E-OV")
	orig := credit("100.00", viban, "E2E-RT")
	// Ids sorted against the order money moves: Rematch must order by
	// phase, not by id.
	back = sortedBefore(back, disb)
	refund = sortedBefore(refund, over)
	ret := sortedBefore(returned(orig, "100.00"), orig)
	parked := credit("100.00", viban, "E2E-RP")
	retParked := sortedBefore(returned(parked, "100.00"), parked)

	cases := []struct {
		name    string
		before  []recon.BankTransaction // sighted before the loan is known: all parked
		release string                  // kinds of the entries Rematch books
		posted  string                  // kinds booked by each released share, "|" between shares
		note    string                  // the note of the rematch, when checked
		after   []recon.BankTransaction // sighted once the loan is known
		last    string                  // kinds booked by the last of after
		items   int
		bal     map[string]string
	}{
		{name: "disbursement before its loan", before: []recon.BankTransaction{disb},
			release: "suspense-release", posted: "disbursement", note: "re-matched automatically by disbursement: disbursement end-to-end id DISB-L-88",
			bal: map[string]string{"suspense": "0", "transit:rematch": "0", bank: "-500.00", "loan:L-88:principal": "500.00"}},
		{name: "rematched disbursement comes back", before: []recon.BankTransaction{disb}, release: "suspense-release", posted: "disbursement",
			after: []recon.BankTransaction{back}, last: "debit-reversal",
			bal: map[string]string{"suspense": "0", "transit:rematch": "0", bank: "0", "loan:L-88:principal": "0"}},
		{name: "disbursement and its reversal before the loan", before: []recon.BankTransaction{back, disb},
			release: "suspense-release,suspense-release", posted: "disbursement|debit-reversal",
			bal: map[string]string{"suspense": "0", "transit:rematch": "0", bank: "0", "loan:L-88:principal": "0"}},
		{name: "debit matching no loan stays", before: []recon.BankTransaction{txn(recon.Debit, "500.00", "", "DISB-NOPE")}, items: 1,
			bal: map[string]string{"suspense": "500.00", bank: "-500.00", "loan:L-88:principal": "0"}},
		{name: "debit in another currency than its loan stays", before: []recon.BankTransaction{gbp}, items: 1,
			bal: map[string]string{"suspense": "0", "loan:L-88:principal": "0"}},
		{name: "refund without borrower credit parks on its loan", before: []recon.BankTransaction{refund},
			release: "suspense-release", posted: "suspense", items: 1,
			bal: map[string]string{"suspense": "20.00", "transit:rematch": "0", bank: "-20.00", "loan:L-88:credit": "0"}},
		{name: "refund covered by a parked overpayment", before: []recon.BankTransaction{refund, over},
			release: "suspense-release,suspense-release", posted: "rematch|refund",
			bal: map[string]string{"suspense": "0", "transit:rematch": "0", bank: "500.00", "loan:L-88:principal": "-500.00", "loan:L-88:credit": "0"}},
		{name: "return follows its parked original", before: []recon.BankTransaction{retParked, parked},
			release: "suspense-release,suspense-release", posted: "rematch|reversal",
			bal: map[string]string{"suspense": "0", "transit:rematch": "0", bank: "0", "loan:L-88:principal": "0"}},
		{name: "return before the loan waits on it for its original", before: []recon.BankTransaction{ret},
			release: "suspense-release", posted: "suspense", after: []recon.BankTransaction{orig}, last: "repayment,reversal",
			bal: map[string]string{"suspense": "0", "transit:rematch": "0", bank: "0", "loan:L-88:principal": "0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loans := testLoans()
			h := newHarness(t, loans)
			for _, x := range c.before {
				if d, _ := h.run(x); d.Outcome != recon.Suspense || d.LoanID != "" {
					t.Fatalf("%s before its loan: %q on %q (%s)", x.ID, d.Outcome, d.LoanID, d.Reason)
				}
			}
			if rel, _ := h.rematch(); len(rel.Entries)+len(rel.Routed) != 0 {
				t.Fatalf("rematch before the loan exists: %s", kinds(rel.Entries))
			}
			if err := loans.Put(loan); err != nil {
				t.Fatal(err)
			}
			rel, posted := h.rematch()
			var got []string
			for _, p := range posted {
				got = append(got, kinds(p.Entries))
			}
			if kinds(rel.Entries) != c.release || strings.Join(got, "|") != c.posted {
				t.Fatalf("rematch released %q and posted %q, want %q and %q", kinds(rel.Entries), strings.Join(got, "|"), c.release, c.posted)
			}
			if c.note != "" {
				for _, es := range [][]recon.Entry{rel.Entries, posted[0].Entries} {
					if es[0].Note != c.note || es[0].Actor != "recon" {
						t.Errorf("entry %s: note %q by %q, want %q by recon", es[0].ID, es[0].Note, es[0].Actor, c.note)
					}
				}
			}
			// Booked exactly once: another Rematch releases nothing, a
			// redelivered share books nothing.
			if again, _ := h.rematch(); len(again.Entries)+len(again.Routed) != 0 {
				t.Fatalf("second rematch: %s", kinds(again.Entries))
			}
			for _, rt := range rel.Routed {
				if res := h.post(rt); len(res.Entries) != 0 {
					t.Fatalf("redelivered share to %s booked %s", rt.LoanID, kinds(res.Entries))
				}
			}
			for i, x := range c.after {
				d, res := h.run(x)
				if i == len(c.after)-1 && (d.Outcome != recon.Posted || kinds(res.Entries) != c.last) {
					t.Fatalf("after the rematch: %q %s (%s), want posted %s", d.Outcome, kinds(res.Entries), d.Reason, c.last)
				}
			}
			h.wantBalances(c.bal)
			if n := len(h.poster.Items()); n != c.items {
				t.Errorf("%d items open, want %d: %+v", n, c.items, h.poster.Items())
			}
			ids := map[string]bool{}
			for _, e := range h.entries {
				if ids[e.ID] {
					t.Fatalf("entry id %s twice", e.ID)
				}
				ids[e.ID] = true
			}
			fresh := h.restored()
			if fresh.Head != h.poster.Head || len(fresh.Items()) != c.items {
				t.Fatalf("restore: %d items", len(fresh.Items()))
			}
			if again := fresh.Rematch(now, true); len(again.Entries)+len(again.Routed) != 0 {
				t.Fatalf("rematch after restore: %s", kinds(again.Entries))
			}
		})
	}
}

// A refund parked on its loan by the rematch (no borrower credit) is never
// re-matched again: it waits for a person, with the loan and the reason.
func TestRematchedRefundWaitsForAPerson(t *testing.T) {
	loans := testLoans()
	h := newHarness(t, loans)
	refund := txn(recon.Debit, "20.00", "DE00VIBA0000000088", "E2E-RF2")
	h.run(refund)
	loans.Put(recon.Loan{LoanID: "L-88", VirtualIBAN: "DE00VIBA0000000088", Currency: "EUR", Principal: dec("500.00")})
	h.rematch()
	items := h.poster.Items()
	if len(items) != 1 || items[0].LoanID != "L-88" || items[0].Round != 1 || !strings.Contains(items[0].Reason, "without enough borrower credit") {
		t.Fatalf("items %+v", items)
	}
	h.run(credit("600.00", "DE00VIBA0000000088", "E2E-OV2")) // credit now, but the item is a person's
	if again, _ := h.rematch(); len(again.Entries)+len(again.Routed) != 0 {
		t.Fatalf("an item parked on its loan was re-matched: %s", kinds(again.Entries))
	}
}

// sortedBefore gives a another bank reference (so another identity) until
// its id sorts before b's.
func sortedBefore(a, b recon.BankTransaction) recon.BankTransaction {
	for i := 0; a.ID >= b.ID; i++ {
		a.BankReference = "REF-" + strconv.Itoa(i)
		a.ID = recon.IdentityKey(a)
	}
	return a
}
