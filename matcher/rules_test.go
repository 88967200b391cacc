package matcher

import (
	"strings"
	"testing"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// restored rebuilds a Poster from the harness's journal alone.
func (h *harness) restored() *Poster {
	p := NewPoster(h.loans)
	for _, e := range h.entries {
		p.Restore(e)
	}
	return p
}

// An identity seen again with another amount books nothing but parks a
// review item a person can see and dismiss; the journal alone restores it.
func TestIdentityConflictIsAReviewItem(t *testing.T) {
	h := newHarness(t, testLoans())
	orig := credit("100.00", "DE00VIBA0000000002", "E2E-CF")
	h.run(orig)
	other := orig
	other.Amount = dec("100.01")
	d, res := h.run(other)
	if d.Outcome != recon.Suspense || d.Rule != "identity-conflict" || kinds(res.Entries) != EntryReview {
		t.Fatalf("conflict: %q %q %s", d.Outcome, d.Rule, kinds(res.Entries))
	}
	h.wantBalances(map[string]string{"memo:conflicts": "0", "suspense": "0", "bank:" + lender: "100.00", "loan:L-2:principal": "-100.00"})
	items := h.poster.Items()
	if len(items) != 1 || items[0].Kind != ItemConflict || items[0].ID != ConflictID(other) || !items[0].Transaction.Amount.Equal(dec("100.01")) ||
		!strings.Contains(items[0].Reason, "seen before as credit 100") {
		t.Fatalf("items %+v", items)
	}
	if n := len(h.restored().Items()); n != 1 {
		t.Fatalf("restored %d items", n)
	}
	// The same conflicting sighting again is the same item.
	if _, res := h.run(other); len(res.Entries) != 0 || len(h.poster.Items()) != 1 {
		t.Fatalf("second conflicting sighting: %s, %d items", kinds(res.Entries), len(h.poster.Items()))
	}
	if res := h.post(Routed{Kind: KindAssign, ItemID: items[0].ID, Allocations: []Allocation{{"L-2", dec("100.01")}}}); res.Decision.Outcome != recon.Rejected {
		t.Fatalf("assigning a review item: %q", res.Decision.Outcome)
	}
	res = h.post(Routed{Kind: KindDismiss, Key: "suspense", ItemID: items[0].ID, Note: "bank corrected the amount", Actor: "ops"})
	if kinds(res.Entries) != EntryReviewClosed || res.Entries[0].Actor != "ops" || len(h.poster.Items()) != 0 || len(h.restored().Items()) != 0 {
		t.Fatalf("dismiss: %s, %d items", kinds(res.Entries), len(h.poster.Items()))
	}
	if res := h.post(Routed{Kind: KindDismiss, ItemID: items[0].ID}); res.Decision.Outcome != recon.Rejected || len(res.Entries) != 0 {
		t.Fatalf("dismissed twice: %q", res.Decision.Outcome)
	}
}

// A return whose loan was unknown waits in suspense and follows its
// original when the original is re-matched to a loan.
func TestReturnFollowsRematchedOriginal(t *testing.T) {
	loans := testLoans()
	h := newHarness(t, loans)
	orig := credit("80.00", "DE00VIBA0000000777", "E2E-FOLLOW")
	ret := returned(orig, "80.00")
	if d, _ := h.run(orig); d.Outcome != recon.Suspense {
		t.Fatalf("original: %q", d.Outcome)
	}
	if d, _ := h.run(ret); d.Outcome != recon.Suspense {
		t.Fatalf("return: %q", d.Outcome)
	}
	loans.Put(recon.Loan{LoanID: "L-777", VirtualIBAN: "DE00VIBA0000000777", Currency: "EUR", Principal: dec("300.00")})
	release, posted := h.rematch()
	if kinds(release.Entries) != "suspense-release,suspense-release" || len(posted) != 2 {
		t.Fatalf("release %s, %d posted", kinds(release.Entries), len(posted))
	}
	if kinds(posted[0].Entries) != "rematch" || kinds(posted[1].Entries) != "reversal" {
		t.Fatalf("posted %s then %s", kinds(posted[0].Entries), kinds(posted[1].Entries))
	}
	h.wantBalances(map[string]string{"suspense": "0", "transit:rematch": "0", "loan:L-777:principal": "0", "bank:" + lender: "0"})
	if n := len(h.poster.Items()); n != 0 {
		t.Fatalf("%d items open", n)
	}
}

// A return parked because its amount differs from its original can be
// assigned to the loan by a person: it is taken back from what the loan
// was paid, credit first, then principal, interest, fees.
func TestAssignOutgoingItem(t *testing.T) {
	h := newHarness(t, testLoans())
	orig := credit("130.00", "DE00VIBA0000000001", "E2E-PART")
	h.run(orig)
	ret := returned(orig, "30.00")
	if d, _ := h.run(ret); d.Outcome != recon.Suspense || !strings.Contains(d.Reason, "does not equal original") {
		t.Fatalf("return: %q %s", d.Outcome, d.Reason)
	}
	res := h.post(Routed{Kind: KindAssign, Key: "suspense", Transaction: recon.BankTransaction{ID: ret.ID}, Actor: "ops", Note: "partial return",
		Allocations: []Allocation{{"L-1", dec("30.00")}}})
	if res.Decision.Outcome != recon.Posted || len(res.Routed) != 1 {
		t.Fatalf("assign: %q %s", res.Decision.Outcome, res.Decision.Reason)
	}
	pr := h.post(res.Routed[0])
	if kinds(pr.Entries) != EntryTakeBack {
		t.Fatalf("booked %s", kinds(pr.Entries))
	}
	if got, want := postingsString(pr.Entries[0].Postings), "debit loan:L-1:principal 30.00 EUR; credit transit:rematch 30.00 EUR; "; got != want {
		t.Errorf("postings\n got %s\nwant %s", got, want)
	}
	h.wantBalances(map[string]string{"suspense": "0", "transit:rematch": "0", "loan:L-1:principal": "-70.00", "bank:" + lender: "100.00"})
	// Redelivered: booked once.
	if again := h.post(res.Routed[0]); len(again.Entries) != 0 {
		t.Fatalf("redelivery booked %s", kinds(again.Entries))
	}
}

// A loan's schedule grows while it holds borrower credit: the next
// Rematch of all items applies the credit, with an entry id of its own.
func TestCreditAppliedWhenScheduleGrows(t *testing.T) {
	loans := testLoans()
	h := newHarness(t, loans)
	h.run(credit("650.00", "DE00VIBA0000000002", "E2E-OVER"))
	h.wantBalances(map[string]string{"loan:L-2:credit": "-150.00"})
	l, _ := loans.Get("L-2")
	l.Principal = dec("600.00")
	loans.Put(l)
	release, _ := h.rematch()
	if kinds(release.Entries) != EntryCreditApplied || release.Entries[0].ID != "e_credit-applied_L-2_1" {
		t.Fatalf("rematch: %s %v", kinds(release.Entries), release.Entries)
	}
	h.wantBalances(map[string]string{"loan:L-2:credit": "-50.00", "loan:L-2:principal": "-600.00"})
	if again, _ := h.rematch(); len(again.Entries) != 0 {
		t.Fatalf("applied twice: %s", kinds(again.Entries))
	}
	l.Principal = dec("700.00")
	loans.Put(l)
	release, _ = h.rematch()
	if kinds(release.Entries) != EntryCreditApplied || release.Entries[0].ID != "e_credit-applied_L-2_2" {
		t.Fatalf("second growth: %v", release.Entries)
	}
	h.wantBalances(map[string]string{"loan:L-2:credit": "0", "loan:L-2:principal": "-650.00"})
}

// An assignment is taken back to suspense, audited, and assigned anew to
// another loan — then to the first loan again, with entries of its own.
func TestUnassignAndReassign(t *testing.T) {
	h := newHarness(t, testLoans())
	parked := credit("50.00", "", "E2E-UN")
	h.run(parked)
	assign := func(loan string) {
		t.Helper()
		res := h.post(Routed{Kind: KindAssign, Key: "suspense", Transaction: recon.BankTransaction{ID: parked.ID}, Actor: "ops", Note: "to " + loan,
			Allocations: []Allocation{{loan, dec("50.00")}}})
		if res.Decision.Outcome != recon.Posted {
			t.Fatalf("assign to %s: %s", loan, res.Decision.Reason)
		}
		for _, r := range res.Routed {
			h.post(r)
		}
	}
	unassign := func(loan string) Result {
		t.Helper()
		res := h.post(Routed{Kind: KindUnassign, Key: loan, LoanID: loan, Transaction: recon.BankTransaction{ID: parked.ID}, Actor: "auditor", Note: "wrong borrower"})
		for _, r := range res.Routed {
			h.post(r)
		}
		return res
	}
	assign("L-2")
	res := unassign("L-2")
	if res.Decision.Outcome != recon.Suspense || kinds(res.Entries) != EntryUnassign || res.Entries[0].Actor != "auditor" || res.Entries[0].Note != "wrong borrower" {
		t.Fatalf("unassign: %q %s", res.Decision.Outcome, kinds(res.Entries))
	}
	h.wantBalances(map[string]string{"suspense": "-50.00", "transit:rematch": "0", "loan:L-2:principal": "0"})
	items := h.poster.Items()
	if len(items) != 1 || items[0].Round != 1 || !items[0].Amount.Equal(dec("50")) {
		t.Fatalf("items %+v", items)
	}
	if again, _ := h.rematch(); len(again.Entries) != 0 {
		t.Fatalf("an unassigned item was re-matched automatically: %s", kinds(again.Entries))
	}
	if res := unassign("L-2"); res.Decision.Outcome != recon.Rejected {
		t.Fatalf("unassigned twice: %q", res.Decision.Outcome)
	}
	assign("L-123")
	h.wantBalances(map[string]string{"suspense": "0", "loan:L-123:principal": "-50.00"})
	unassign("L-123")
	assign("L-2")
	h.wantBalances(map[string]string{"suspense": "0", "transit:rematch": "0", "loan:L-2:principal": "-50.00", "loan:L-123:principal": "0"})
	ids := map[string]bool{}
	for _, e := range h.entries {
		if ids[e.ID] {
			t.Fatalf("entry id %s twice", e.ID)
		}
		ids[e.ID] = true
	}
	if !ids["e_"+parked.ID+"_rematch_L-2_r2"] {
		t.Errorf("the third assignment has no round-2 entry: %v", ids)
	}
	fresh := h.restored()
	if len(fresh.Items()) != 0 || fresh.Head != h.poster.Head {
		t.Fatalf("restore: %d items", len(fresh.Items()))
	}
}

func TestCanonicalHashCoversTheReviewMemo(t *testing.T) {
	h := newHarness(t, testLoans())
	orig := credit("10.00", "DE00VIBA0000000002", "E2E-M")
	h.run(orig)
	other := orig
	other.Direction = recon.Debit
	h.run(other)
	e := h.entries[len(h.entries)-1]
	if e.Kind != EntryReview || e.Postings[0].Account != ledger.Memo {
		t.Fatalf("entry %+v", e)
	}
	e.Item.Amount = dec("99")
	var v ledger.Verifier
	for i, x := range h.entries[:len(h.entries)-1] {
		if err := v.Next(int64(i), x); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Next(int64(len(h.entries)), e); err == nil {
		t.Fatal("an altered review item verifies")
	}
}
