package matcher

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

var now = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)

const lender = "DE89370400440532013000"

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// txn is a booked EUR movement on the lender's account; its id is the
// identity key, as ingest derives it.
func txn(dir recon.Direction, amount, viban, e2e string) recon.BankTransaction {
	t := recon.BankTransaction{Type: recon.TypeTransaction, Source: "test", AccountIBAN: lender, VirtualIBAN: viban,
		Direction: dir, Amount: dec(amount), Currency: "EUR", Status: recon.Booked, BookingDate: "2026-03-02",
		EndToEndID: e2e, CounterpartyName: "Jane Borrower", CounterpartyIBAN: "FR7630006000011234567890189"}
	t.ID = recon.IdentityKey(t)
	return t
}

func credit(amount, viban, e2e string) recon.BankTransaction {
	return txn(recon.Credit, amount, viban, e2e)
}

// returned is the pacs.004/camt debit that sends the money of orig back.
func returned(orig recon.BankTransaction, amount string) recon.BankTransaction {
	t := txn(recon.Debit, amount, orig.VirtualIBAN, orig.EndToEndID)
	t.Currency, t.ReturnReason = orig.Currency, "AC04"
	t.ID = recon.IdentityKey(t)
	return t
}

// The loans of the tests.
func testLoans() *Loans {
	l := NewLoans()
	l.Put(recon.Loan{LoanID: "L-1", VirtualIBAN: "DE00 VIBA 0000 0000 01", Currency: "EUR", Principal: dec("1000.00"),
		Schedule: []recon.Instalment{ // out of order on purpose: the oldest is paid first
			{DueDate: "2026-04-01", Principal: dec("80.00"), Interest: dec("15.00"), Fees: dec("5.00")},
			{DueDate: "2026-03-01", Principal: dec("90.00"), Interest: dec("8.50"), Fees: dec("1.50")},
		}})
	l.Put(recon.Loan{LoanID: "L-2", VirtualIBAN: "DE00VIBA0000000002", Currency: "EUR", Principal: dec("500.00"), MandateID: "MNDT-2", DisbursementEndToEndID: "DISB-L-2",
		Borrower: &recon.Borrower{Name: "Jane Borrower", IBAN: "FR7630006000011234567890189"}})
	l.Put(recon.Loan{LoanID: "L-3", VirtualIBAN: "GB00VIBA0000000003", Currency: "GBP", Principal: dec("300.00")})
	l.Put(recon.Loan{LoanID: "L-123", VirtualIBAN: "DE00VIBA0000000123", Currency: "EUR", Principal: dec("200.00")})
	l.Put(recon.Loan{LoanID: "L300", VirtualIBAN: "DE00VIBA0000000300", Currency: "EUR", Principal: dec("200.00")})
	return l
}

// harness runs the Router and one Poster (one journal partition) and checks
// every entry as it is produced: balanced, and chained.
type harness struct {
	t       testing.TB
	loans   *Loans
	router  *Router
	poster  *Poster
	entries []recon.Entry
	chain   ledger.Verifier
	tape    *tape // records what the Poster was given and answered, if set
}

func newHarness(t testing.TB, loans *Loans) *harness {
	h := &harness{t: t, loans: loans, router: NewRouter(loans), poster: NewPoster(loans)}
	h.router.OwnAccounts = map[string]bool{ownIBAN: true}
	h.poster.SetOwnAccounts(h.router.OwnAccounts)
	return h
}

// route runs the Router and remembers the identity, as the service does.
func (h *harness) route(t recon.BankTransaction) (recon.Decision, *Routed) {
	d, rt, seen := h.router.Route(t)
	if rt != nil && (rt.Kind == KindConflict) == (seen != nil) {
		h.t.Fatalf("Route(%s): routed %v but seen %v", t.ID, rt != nil, seen != nil)
	}
	return d, rt
}

// post books r and checks the entries it produced.
func (h *harness) post(r Routed) Result {
	h.t.Helper()
	res := h.poster.Post(now, r)
	h.record(res)
	h.tape.add(tapeStep{routed: &r, res: res})
	return res
}

// put changes the loans table.
func (h *harness) put(l recon.Loan) {
	h.t.Helper()
	if err := h.loans.Put(l); err != nil {
		h.t.Fatal(err)
	}
	h.tape.add(tapeStep{put: &l})
}

func (h *harness) record(res Result) {
	h.t.Helper()
	for _, e := range res.Entries {
		if err := e.Balanced(); err != nil {
			h.t.Fatalf("unbalanced: %v", err)
		}
		if err := h.chain.Next(int64(len(h.entries)), e); err != nil {
			h.t.Fatalf("chain: %v", err)
		}
		if e.Item != nil && (e.Item.CounterpartyName != "" || e.Item.CounterpartyIBAN != "") {
			h.t.Fatalf("entry %s carries personal data in its item", e.ID)
		}
		h.entries = append(h.entries, e)
	}
}

// run routes and posts one sighting, then posts what it routed further
// (nothing for a match), and returns the decision that ends it.
func (h *harness) run(t recon.BankTransaction) (recon.Decision, Result) {
	h.t.Helper()
	d, rt := h.route(t)
	if rt == nil {
		return d, Result{}
	}
	res := h.post(*rt)
	if res.Decision == nil {
		h.t.Fatalf("Post(%s) gave no decision", t.ID)
	}
	return *res.Decision, res
}

// rematch runs Rematch and posts what it releases.
func (h *harness) rematch() (release Result, posted []Result) {
	h.t.Helper()
	release = h.poster.Rematch(now, true)
	h.record(release)
	h.tape.add(tapeStep{rematch: true, res: release})
	for _, r := range release.Routed {
		posted = append(posted, h.post(r))
	}
	return release, posted
}

// balance of an account over the journal so far: debits minus credits.
func (h *harness) balance(account, currency string) decimal.Decimal {
	b := decimal.Zero
	for _, e := range h.entries {
		for _, p := range e.Postings {
			if p.Account != account || p.Currency != currency {
				continue
			}
			if p.Side == recon.DebitSide {
				b = b.Add(p.Amount)
			} else {
				b = b.Sub(p.Amount)
			}
		}
	}
	return b
}

// wantBalances checks accounts' balances (debits minus credits) in EUR.
func (h *harness) wantBalances(want map[string]string) {
	h.t.Helper()
	for acc, w := range want {
		if got := h.balance(acc, "EUR"); !got.Equal(dec(w)) {
			h.t.Errorf("balance of %s = %s, want %s", acc, got, w)
		}
	}
}

func postingsString(ps []recon.Posting) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s %s %s %s; ", p.Side, p.Account, p.Amount.StringFixed(2), p.Currency)
	}
	return b.String()
}

func kinds(es []recon.Entry) string {
	k := make([]string, len(es))
	for i, e := range es {
		k[i] = e.Kind
	}
	return strings.Join(k, ",")
}

func TestRoute(t *testing.T) {
	booked := credit("100.00", "DE00VIBA0000000002", "E2E-DUP")
	cases := []struct {
		name       string
		seen       *recon.BankTransaction // remembered before
		threshold  string
		t          recon.BankTransaction
		outcome    recon.Outcome // for sightings the Router ends itself
		rule       string
		loan, key  string
		confidence string
		reason     string // substring
	}{
		{name: "duplicate sighting", seen: &booked, t: booked, outcome: recon.Duplicate, rule: "identity"},
		{name: "same identity other amount", seen: &booked, t: func() recon.BankTransaction {
			t := booked
			t.Amount = dec("100.01")
			return t
		}(), outcome: recon.Suspense, rule: "identity-conflict", reason: "seen before as credit 100"},
		{name: "same identity other currency", seen: &booked, t: func() recon.BankTransaction {
			t := booked
			t.Currency = "GBP"
			return t
		}(), outcome: recon.Suspense, rule: "identity-conflict"},
		{name: "same amount other scale is a duplicate", seen: &booked, t: func() recon.BankTransaction {
			t := booked
			t.Amount = dec("100")
			return t
		}(), outcome: recon.Duplicate, rule: "identity"},
		{name: "pending", t: func() recon.BankTransaction {
			t := credit("10.00", "DE00VIBA0000000002", "E2E-P")
			t.Status = recon.Pending
			return t
		}(), outcome: recon.NotBooked, rule: "status"},
		{name: "info", t: func() recon.BankTransaction {
			t := credit("10.00", "DE00VIBA0000000002", "E2E-I")
			t.Status = recon.Info
			return t
		}(), outcome: recon.NotBooked, rule: "status"},
		{name: "virtual iban, spaces and case ignored", t: credit("10.00", "de00 viba 0000 0000 01", "E2E-V"),
			rule: "virtual_iban", loan: "L-1", key: "L-1", confidence: "1"},
		{name: "virtual iban beats mandate", t: func() recon.BankTransaction {
			t := credit("10.00", "DE00VIBA0000000001", "E2E-VM")
			t.MandateID = "MNDT-2"
			return t
		}(), rule: "virtual_iban", loan: "L-1", key: "L-1", confidence: "1"},
		{name: "mandate", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-M")
			t.MandateID = "MNDT-2"
			return t
		}(), rule: "mandate_id", loan: "L-2", key: "L-2", confidence: "0.95"},
		{name: "creditor reference RF", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RF")
			t.CreditorReference = "rf18 l300"
			return t
		}(), rule: "creditor_reference", loan: "L300", key: "L300", confidence: "0.9"},
		{name: "creditor reference is the loan id", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-CR")
			t.CreditorReference = "L-123"
			return t
		}(), rule: "creditor_reference", loan: "L-123", key: "L-123", confidence: "0.9"},
		{name: "remittance text", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RT")
			t.RemittanceInfo = "March instalment, loan L-123, thanks"
			return t
		}(), rule: "remittance_text", loan: "L-123", key: "L-123", confidence: "0.8"},
		{name: "remittance text below threshold", threshold: "0.85", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RT2")
			t.RemittanceInfo = "loan L-123"
			return t
		}(), rule: "remittance_text", key: "suspense", confidence: "0.8", reason: "below threshold"},
		{name: "remittance names an unknown loan", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RT3")
			t.RemittanceInfo = "loan L-999"
			return t
		}(), rule: "none", key: "suspense", confidence: "0", reason: "no rule matched"},
		{name: "loan id anywhere in the remittance text", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RT4")
			t.RemittanceInfo = "loan number L-123."
			return t
		}(), rule: "remittance_text", loan: "L-123", key: "L-123", confidence: "0.8"},
		{name: "loan id after ref. pret", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RT5")
			t.RemittanceInfo = "ref. pret L300 mars"
			return t
		}(), rule: "remittance_text", loan: "L300", key: "L300", confidence: "0.8"},
		{name: "several loans mentioned", t: func() recon.BankTransaction {
			t := credit("10.00", "", "E2E-RT6")
			t.RemittanceInfo = "L-123 and L300, L-123 again"
			return t
		}(), rule: "remittance_text", key: "suspense", confidence: "0", reason: "several loans mentioned (L-123, L300)"},
		{name: "unknown virtual iban", t: credit("10.00", "DE00VIBA0000009999", "E2E-U"),
			rule: "none", key: "suspense", confidence: "0", reason: "re-matched when the loan arrives"},
		{name: "nothing to match", t: credit("10.00", "", "E2E-N"),
			rule: "none", key: "suspense", confidence: "0", reason: "no rule matched"},
		{name: "bank charge", t: func() recon.BankTransaction {
			t := txn(recon.Debit, "2.50", "", "")
			t.IsCharge, t.BankReference = true, "CHG-1"
			t.ID = recon.IdentityKey(t)
			return t
		}(), rule: "bank-charge", key: "suspense", confidence: "1"},
		{name: "remainder", t: func() recon.BankTransaction {
			t := credit("3.00", "DE00VIBA0000000001", "E2E-REM")
			t.Remainder = true
			return t
		}(), rule: "remainder", key: "suspense", confidence: "0", reason: "do not add up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewRouter(testLoans())
			if c.threshold != "" {
				r.Threshold = dec(c.threshold)
			}
			if c.seen != nil {
				r.Remember(c.seen.ID, Seen{Amount: c.seen.Amount, Currency: c.seen.Currency, Direction: c.seen.Direction})
			}
			d, rt, seen := r.Route(c.t)
			if d.TransactionID != c.t.ID || !d.Amount.Equal(c.t.Amount) || d.Currency != c.t.Currency || d.Direction != c.t.Direction {
				t.Errorf("decision does not describe the sighting: %+v", d)
			}
			if d.Rule != c.rule {
				t.Errorf("rule %q, want %q", d.Rule, c.rule)
			}
			if !strings.Contains(d.Reason+routedReason(rt), c.reason) {
				t.Errorf("reason %q / %q, want it to contain %q", d.Reason, routedReason(rt), c.reason)
			}
			if c.rule == "identity-conflict" { // a review item, no money
				if rt == nil || rt.Kind != KindConflict || rt.Key != "suspense" || seen != nil || rt.ItemID != ConflictID(c.t) {
					t.Fatalf("routed %+v seen %v, want a conflict to suspense and nothing remembered", rt, seen)
				}
				return
			}
			if c.outcome != "" { // the Router ends this sighting
				// a duplicate may teach the movement references (seen)
				if d.Outcome != c.outcome || rt != nil || (seen != nil && d.Outcome != recon.Duplicate) {
					t.Fatalf("outcome %q routed %v seen %v, want %q and nothing routed", d.Outcome, rt, seen, c.outcome)
				}
				return
			}
			if rt == nil || seen == nil {
				t.Fatalf("nothing routed: %+v", d)
			}
			if d.Outcome != "" {
				t.Errorf("the Router decided %q; the Poster decides booked money", d.Outcome)
			}
			if rt.Kind != KindMatch || rt.Rule != c.rule || rt.LoanID != c.loan || rt.Key != c.key || rt.Transaction.ID != c.t.ID {
				t.Errorf("routed kind %q rule %q loan %q key %q, want match %q %q %q", rt.Kind, rt.Rule, rt.LoanID, rt.Key, c.rule, c.loan, c.key)
			}
			if !rt.Confidence.Equal(dec(c.confidence)) {
				t.Errorf("confidence %s, want %s", rt.Confidence, c.confidence)
			}
			if !seen.Amount.Equal(c.t.Amount) || seen.Currency != c.t.Currency || seen.Direction != c.t.Direction {
				t.Errorf("seen %+v does not describe the sighting", seen)
			}
		})
	}
}

func routedReason(rt *Routed) string {
	if rt == nil {
		return ""
	}
	return rt.Reason
}

// A pending sighting is not remembered: the booked one posts later, and
// after a fresh state a redelivery is routed again (the changelog restores it).
func TestRoutePendingThenBooked(t *testing.T) {
	h := newHarness(t, testLoans())
	p := credit("100.00", "DE00VIBA0000000002", "E2E-PB")
	p.Status = recon.Pending
	if d, rt := h.route(p); d.Outcome != recon.NotBooked || rt != nil {
		t.Fatalf("pending: %q", d.Outcome)
	}
	b := p
	b.Status = recon.Booked
	d, res := h.run(b)
	if d.Outcome != recon.Posted || d.LoanID != "L-2" {
		t.Fatalf("booked: %q loan %q reason %q", d.Outcome, d.LoanID, d.Reason)
	}
	if d, _ := h.run(b); d.Outcome != recon.Duplicate {
		t.Fatalf("second booked sighting: %q", d.Outcome)
	}
	h.router.Open(NewMemKV())
	d, rt := h.route(b)
	if rt == nil {
		t.Fatalf("with a fresh state the Router should route again, got %q", d.Outcome)
	}
	// The posting key catches what the Router forgot.
	if res2 := h.post(*rt); res2.Decision.Outcome != recon.Duplicate || len(res2.Entries) != 0 {
		t.Fatalf("posting key: %q with %d entries", res2.Decision.Outcome, len(res2.Entries))
	}
	if len(res.Entries) != 1 {
		t.Fatalf("entries %s", kinds(res.Entries))
	}
}

func TestPostRepayment(t *testing.T) {
	type want struct {
		outcome  recon.Outcome
		loan     string
		kinds    string
		postings string // of the first entry
		reason   string
	}
	cases := []struct {
		name  string
		prior []recon.BankTransaction
		t     recon.BankTransaction
		want  want
		bal   map[string]string
	}{
		{name: "fees, interest, principal, oldest instalment first",
			t: credit("130.00", "DE00VIBA0000000001", "E2E-A"),
			want: want{outcome: recon.Posted, loan: "L-1", kinds: "repayment",
				postings: "debit bank:" + lender + " 130.00 EUR; credit loan:L-1:fees 6.50 EUR; credit loan:L-1:interest 23.50 EUR; credit loan:L-1:principal 100.00 EUR; "},
			bal: map[string]string{"bank:" + lender: "130.00", "loan:L-1:fees": "-6.50", "loan:L-1:interest": "-23.50", "loan:L-1:principal": "-100.00", "loan:L-1:credit": "0"}},
		{name: "partial payment stops inside the oldest instalment",
			t: credit("5.00", "DE00VIBA0000000001", "E2E-B"),
			want: want{outcome: recon.Posted, loan: "L-1", kinds: "repayment",
				postings: "debit bank:" + lender + " 5.00 EUR; credit loan:L-1:fees 1.50 EUR; credit loan:L-1:interest 3.50 EUR; "}},
		{name: "second payment continues where the first stopped, overpayment is credit",
			prior: []recon.BankTransaction{credit("130.00", "DE00VIBA0000000001", "E2E-C1")},
			t:     credit("100.00", "DE00VIBA0000000001", "E2E-C2"),
			want: want{outcome: recon.Posted, loan: "L-1", kinds: "repayment",
				postings: "debit bank:" + lender + " 100.00 EUR; credit loan:L-1:principal 70.00 EUR; credit loan:L-1:credit 30.00 EUR; "},
			bal: map[string]string{"loan:L-1:principal": "-170.00", "loan:L-1:credit": "-30.00", "bank:" + lender: "230.00"}},
		{name: "loan without schedule owes its principal",
			t: credit("200.00", "DE00VIBA0000000002", "E2E-D"),
			want: want{outcome: recon.Posted, loan: "L-2", kinds: "repayment",
				postings: "debit bank:" + lender + " 200.00 EUR; credit loan:L-2:principal 200.00 EUR; "}},
		{name: "overpayment goes to the borrower's credit",
			t: credit("600.01", "DE00VIBA0000000002", "E2E-E"),
			want: want{outcome: recon.Posted, loan: "L-2", kinds: "repayment",
				postings: "debit bank:" + lender + " 600.01 EUR; credit loan:L-2:principal 500.00 EUR; credit loan:L-2:credit 100.01 EUR; "}},
		{name: "currency mismatch is parked",
			t: credit("10.00", "GB00VIBA0000000003", "E2E-F"),
			want: want{outcome: recon.Suspense, loan: "L-3", kinds: "suspense", reason: "currency EUR differs from the loan's GBP",
				postings: "debit bank:" + lender + " 10.00 EUR; credit suspense 10.00 EUR; "}},
		{name: "unknown loan is parked",
			t: credit("10.00", "DE00VIBA0000009999", "E2E-G"),
			want: want{outcome: recon.Suspense, kinds: "suspense", reason: "virtual IBAN not (yet) assigned",
				postings: "debit bank:" + lender + " 10.00 EUR; credit suspense 10.00 EUR; "}},
		{name: "bank charge is an expense",
			t: func() recon.BankTransaction {
				t := txn(recon.Debit, "2.50", "", "")
				t.IsCharge, t.BankReference = true, "CHG-1"
				t.ID = recon.IdentityKey(t)
				return t
			}(),
			want: want{outcome: recon.Posted, kinds: "bank-fees",
				postings: "debit expense:bank-fees 2.50 EUR; credit bank:" + lender + " 2.50 EUR; "}},
		{name: "refund against the borrower's credit",
			prior: []recon.BankTransaction{credit("600.00", "DE00VIBA0000000002", "E2E-H1")},
			t:     txn(recon.Debit, "40.00", "DE00VIBA0000000002", "E2E-H2"),
			want: want{outcome: recon.Posted, loan: "L-2", kinds: "refund",
				postings: "debit loan:L-2:credit 40.00 EUR; credit bank:" + lender + " 40.00 EUR; "},
			bal: map[string]string{"loan:L-2:credit": "-60.00", "bank:" + lender: "560.00"}},
		{name: "refund larger than the credit is parked",
			prior: []recon.BankTransaction{credit("600.00", "DE00VIBA0000000002", "E2E-I1")},
			t:     txn(recon.Debit, "100.01", "DE00VIBA0000000002", "E2E-I2"),
			want: want{outcome: recon.Suspense, loan: "L-2", kinds: "suspense", reason: "without enough borrower credit",
				postings: "debit suspense 100.01 EUR; credit bank:" + lender + " 100.01 EUR; "}},
		{name: "remainder of an entry is parked",
			t: func() recon.BankTransaction {
				t := credit("3.00", "DE00VIBA0000000001", "E2E-REM")
				t.Remainder = true
				return t
			}(),
			want: want{outcome: recon.Suspense, kinds: "suspense", reason: "entry details do not add up",
				postings: "debit bank:" + lender + " 3.00 EUR; credit suspense 3.00 EUR; "}},
		{name: "more fraction digits than the currency has is parked, never rounded",
			t: credit("10.001", "DE00VIBA0000000002", "E2E-PREC"),
			want: want{outcome: recon.Suspense, kinds: "suspense", reason: "more fraction digits than EUR allows",
				postings: "debit bank:" + lender + " 10.00 EUR; credit suspense 10.00 EUR; "}}, // display rounds; the entry holds 10.001
		{name: "disbursement makes principal receivable",
			t: txn(recon.Debit, "500.00", "", "DISB-L-2"),
			want: want{outcome: recon.Posted, loan: "L-2", kinds: "disbursement",
				postings: "debit loan:L-2:principal 500.00 EUR; credit bank:" + lender + " 500.00 EUR; "}},
		{name: "repayment after a disbursement is allocated as without",
			prior: []recon.BankTransaction{txn(recon.Debit, "500.00", "", "DISB-L-2")},
			t:     credit("200.00", "DE00VIBA0000000002", "E2E-AD"),
			want: want{outcome: recon.Posted, loan: "L-2", kinds: "repayment",
				postings: "debit bank:" + lender + " 200.00 EUR; credit loan:L-2:principal 200.00 EUR; "},
			bal: map[string]string{"loan:L-2:principal": "300.00", "bank:" + lender: "-300.00"}},
		{name: "disbursement that comes back reverses it",
			prior: []recon.BankTransaction{txn(recon.Debit, "500.00", "", "DISB-L-2")},
			t: func() recon.BankTransaction {
				t := credit("500.00", "DE00VIBA0000000002", "DISB-L-2")
				t.Reversal = true
				t.ID = recon.IdentityKey(t)
				return t
			}(),
			want: want{outcome: recon.Posted, loan: "L-2", kinds: "debit-reversal",
				postings: "debit bank:" + lender + " 500.00 EUR; credit loan:L-2:principal 500.00 EUR; "},
			bal: map[string]string{"loan:L-2:principal": "0", "bank:" + lender: "0"}},
		{name: "incoming reversal without its outgoing original is parked",
			t: func() recon.BankTransaction {
				t := credit("50.00", "DE00VIBA0000000002", "E2E-NOORIG")
				t.Reversal = true
				t.ID = recon.IdentityKey(t)
				return t
			}(),
			want: want{outcome: recon.Suspense, loan: "L-2", kinds: "suspense", reason: "incoming reversal of an outgoing transfer not booked",
				postings: "debit bank:" + lender + " 50.00 EUR; credit suspense 50.00 EUR; "}},
		{name: "charge by bank transaction code family",
			t: func() recon.BankTransaction {
				t := txn(recon.Debit, "7.00", "", "")
				t.BankTxCode, t.BankReference = "PMNT/CHRG/OTHR", "CHG-7"
				t.ID = recon.IdentityKey(t)
				return t
			}(),
			want: want{outcome: recon.Posted, kinds: "bank-fees",
				postings: "debit expense:bank-fees 7.00 EUR; credit bank:" + lender + " 7.00 EUR; "}},
		{name: "transfer from the lender's own account is neutral",
			t: func() recon.BankTransaction {
				t := credit("1000.00", "", "OWN-1")
				t.CounterpartyIBAN = "de02 1001 0010 0006 8201 01"
				t.ID = recon.IdentityKey(t)
				return t
			}(),
			want: want{outcome: recon.Posted, kinds: "own-account",
				postings: "debit bank:" + lender + " 1000.00 EUR; credit transit:own-accounts 1000.00 EUR; "}},
		{name: "unknown outgoing transfer is parked",
			t: txn(recon.Debit, "70.00", "", "E2E-WHAT"),
			want: want{outcome: recon.Suspense, kinds: "suspense", reason: "no rule matched",
				postings: "debit suspense 70.00 EUR; credit bank:" + lender + " 70.00 EUR; "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testLoans())
			for _, p := range c.prior {
				if d, _ := h.run(p); d.Outcome != recon.Posted {
					t.Fatalf("prior %s: %q %s", p.EndToEndID, d.Outcome, d.Reason)
				}
			}
			d, res := h.run(c.t)
			if d.Outcome != c.want.outcome || d.LoanID != c.want.loan || !strings.Contains(d.Reason, c.want.reason) {
				t.Errorf("decision %q loan %q reason %q, want %q %q %q", d.Outcome, d.LoanID, d.Reason, c.want.outcome, c.want.loan, c.want.reason)
			}
			if !d.DecidedAt.Equal(now) || d.TransactionID != c.t.ID {
				t.Errorf("decision at %v for %s", d.DecidedAt, d.TransactionID)
			}
			if got := kinds(res.Entries); got != c.want.kinds {
				t.Fatalf("entries %s, want %s", got, c.want.kinds)
			}
			if got := postingsString(res.Entries[0].Postings); got != c.want.postings {
				t.Errorf("postings\n got %s\nwant %s", got, c.want.postings)
			}
			if len(d.EntryIDs) != len(res.Entries) || d.EntryIDs[0] != res.Entries[0].ID {
				t.Errorf("decision names entries %v", d.EntryIDs)
			}
			h.wantBalances(c.bal)
		})
	}
}

// A return reverses its original exactly; the borrower's credit is then
// applied to what the loan owes again.
func TestPostReturn(t *testing.T) {
	h := newHarness(t, testLoans())
	a := credit("300.00", "DE00VIBA0000000002", "E2E-RA")
	b := credit("300.00", "DE00VIBA0000000002", "E2E-RB")
	_, resA := h.run(a)
	h.run(b)
	h.wantBalances(map[string]string{"loan:L-2:principal": "-500.00", "loan:L-2:credit": "-100.00"})

	r := returned(a, "300.00")
	r.BankReference = "RET-1"
	r.ID = recon.IdentityKey(r)
	d, res := h.run(r)
	if d.Outcome != recon.Posted || d.LoanID != "L-2" {
		t.Fatalf("return: %q %q %s", d.Outcome, d.LoanID, d.Reason)
	}
	if got := kinds(res.Entries); got != "reversal,credit-applied" {
		t.Fatalf("entries %s", got)
	}
	rev := res.Entries[0]
	if rev.Reverses != a.ID || rev.TransactionID != r.ID || rev.EndToEndID != a.EndToEndID {
		t.Errorf("reversal reverses %q tx %q e2e %q", rev.Reverses, rev.TransactionID, rev.EndToEndID)
	}
	orig := resA.Entries[0].Postings
	if len(rev.Postings) != len(orig) {
		t.Fatalf("reversal %s of %s", postingsString(rev.Postings), postingsString(orig))
	}
	for i, p := range rev.Postings {
		o := orig[i]
		if p.Account != o.Account || p.Side == o.Side || !p.Amount.Equal(o.Amount) || p.Currency != o.Currency {
			t.Errorf("posting %d: %s does not mirror %s", i, postingsString(rev.Postings[i:i+1]), postingsString(orig[i:i+1]))
		}
	}
	if got, want := postingsString(res.Entries[1].Postings), "debit loan:L-2:credit 100.00 EUR; credit loan:L-2:principal 100.00 EUR; "; got != want {
		t.Errorf("credit applied\n got %s\nwant %s", got, want)
	}
	h.wantBalances(map[string]string{"bank:" + lender: "300.00", "loan:L-2:principal": "-300.00", "loan:L-2:credit": "0"})

	// The same return seen again is a duplicate; a second return of the
	// same money (another bank reference: other money) finds nothing left
	// to reverse.
	if d, _ := h.run(r); d.Outcome != recon.Duplicate {
		t.Errorf("redelivered return: %q", d.Outcome)
	}
	r2 := r
	r2.BankReference = "OTHER-REF"
	r2.ID = recon.IdentityKey(r2)
	if d, _ := h.run(r2); d.Outcome != recon.Suspense {
		t.Errorf("second return of the same money: %q, want suspense", d.Outcome)
	}
}

// A return of a repayment split over parts mirrors every part.
func TestPostReturnOfSplitRepayment(t *testing.T) {
	h := newHarness(t, testLoans())
	a := credit("130.00", "DE00VIBA0000000001", "E2E-SA")
	h.run(a)
	d, res := h.run(returned(a, "130.00"))
	if d.Outcome != recon.Posted || kinds(res.Entries) != "reversal" {
		t.Fatalf("return: %q %s", d.Outcome, kinds(res.Entries))
	}
	want := "credit bank:" + lender + " 130.00 EUR; debit loan:L-1:fees 6.50 EUR; debit loan:L-1:interest 23.50 EUR; debit loan:L-1:principal 100.00 EUR; "
	if got := postingsString(res.Entries[0].Postings); got != want {
		t.Errorf("reversal\n got %s\nwant %s", got, want)
	}
	h.wantBalances(map[string]string{"bank:" + lender: "0", "loan:L-1:fees": "0", "loan:L-1:interest": "0", "loan:L-1:principal": "0"})
	// The loan owes the whole schedule again: a new payment starts at the oldest fees.
	_, res = h.run(credit("1.50", "DE00VIBA0000000001", "E2E-SB"))
	if got := postingsString(res.Entries[0].Postings); got != "debit bank:"+lender+" 1.50 EUR; credit loan:L-1:fees 1.50 EUR; " {
		t.Errorf("after the return: %s", got)
	}
}

// A return that arrives before its original waits in suspense and is
// resolved when the original is booked; suspense nets to zero.
func TestPostReturnBeforeOriginal(t *testing.T) {
	h := newHarness(t, testLoans())
	a := credit("300.00", "DE00VIBA0000000002", "E2E-EARLY")
	r := returned(a, "300.00")
	d, res := h.run(r)
	if d.Outcome != recon.Suspense || d.LoanID != "L-2" || !strings.Contains(d.Reason, "awaiting its original") {
		t.Fatalf("early return: %q %q %q", d.Outcome, d.LoanID, d.Reason)
	}
	if got := postingsString(res.Entries[0].Postings); got != "debit suspense 300.00 EUR; credit bank:"+lender+" 300.00 EUR; " {
		t.Errorf("parked return: %s", got)
	}
	if n := len(h.poster.Items()); n != 1 {
		t.Fatalf("%d items", n)
	}
	d, res = h.run(a)
	if d.Outcome != recon.Posted || kinds(res.Entries) != "repayment,reversal" {
		t.Fatalf("original: %q %s", d.Outcome, kinds(res.Entries))
	}
	if res.Entries[1].Reverses != a.ID || res.Entries[1].TransactionID != r.ID {
		t.Errorf("reversal %+v", res.Entries[1])
	}
	h.wantBalances(map[string]string{"suspense": "0", "bank:" + lender: "0", "loan:L-2:principal": "0", "loan:L-2:credit": "0"})
	if n := len(h.poster.Items()); n != 0 {
		t.Errorf("%d items left", n)
	}
}

// Regression: an early return whose amount differs from the original it
// waits for stays in suspense; it used to be parked a second time when the
// original arrived, booking the returned money out of the bank twice.
func TestPostReturnBeforeOriginalOtherAmount(t *testing.T) {
	h := newHarness(t, testLoans())
	a := credit("300.00", "DE00VIBA0000000002", "E2E-EARLY2")
	r := returned(a, "299.99")
	h.run(r)
	d, res := h.run(a)
	if d.Outcome != recon.Posted || kinds(res.Entries) != "repayment" {
		t.Fatalf("original: %q %s", d.Outcome, kinds(res.Entries))
	}
	h.wantBalances(map[string]string{"suspense": "299.99", "bank:" + lender: "0.01", "loan:L-2:principal": "-300.00"})
	if n := len(h.poster.Items()); n != 1 {
		t.Errorf("%d items, want the return still waiting", n)
	}
	seen := map[string]bool{}
	for _, e := range h.entries {
		if seen[e.ID] {
			t.Errorf("entry id %s booked twice", e.ID)
		}
		seen[e.ID] = true
	}
}

// Money for an unknown loan waits in suspense; when the loan arrives,
// Rematch releases it (suspense → transit) and Post books it (transit →
// loan).
func TestRematchWhenLoanArrives(t *testing.T) {
	loans := testLoans()
	h := newHarness(t, loans)
	x := credit("250.00", "DE00 VIBA 0000 0000 77", "E2E-X")
	d, _ := h.run(x)
	if d.Outcome != recon.Suspense || d.LoanID != "" {
		t.Fatalf("unknown loan: %q %q", d.Outcome, d.LoanID)
	}
	if rel, _ := h.rematch(); len(rel.Entries)+len(rel.Routed) != 0 {
		t.Fatalf("rematch before the loan exists: %s", kinds(rel.Entries))
	}
	loans.Put(recon.Loan{LoanID: "L-77", VirtualIBAN: "DE00VIBA0000000077", Currency: "EUR", Principal: dec("200.00")})
	rel, posted := h.rematch()
	if kinds(rel.Entries) != "suspense-release" || len(rel.Routed) != 1 {
		t.Fatalf("release: %s, %d routed", kinds(rel.Entries), len(rel.Routed))
	}
	if got := postingsString(rel.Entries[0].Postings); got != "debit suspense 250.00 EUR; credit transit:rematch 250.00 EUR; " {
		t.Errorf("release: %s", got)
	}
	rt := rel.Routed[0]
	if rt.Kind != KindRematch || rt.Key != "L-77" || rt.LoanID != "L-77" || rt.Rule != "virtual_iban" || !rt.Amount.Equal(dec("250.00")) {
		t.Errorf("routed %+v", rt)
	}
	if kinds(posted[0].Entries) != "rematch" {
		t.Fatalf("posted %s", kinds(posted[0].Entries))
	}
	if got := postingsString(posted[0].Entries[0].Postings); got != "debit transit:rematch 250.00 EUR; credit loan:L-77:principal 200.00 EUR; credit loan:L-77:credit 50.00 EUR; " {
		t.Errorf("rematch: %s", got)
	}
	h.wantBalances(map[string]string{"suspense": "0", "transit:rematch": "0", "bank:" + lender: "250.00"})
	if n := len(h.poster.Items()); n != 0 {
		t.Errorf("%d items left", n)
	}
	if rel, _ := h.rematch(); len(rel.Entries) != 0 {
		t.Errorf("second rematch released again: %s", kinds(rel.Entries))
	}
	// Redelivery of the routed rematch books nothing.
	if res := h.post(rt); len(res.Entries) != 0 {
		t.Errorf("redelivered rematch booked %s", kinds(res.Entries))
	}
	// A return of the rematched money reverses the rematch allocation.
	d, res := h.run(returned(x, "250.00"))
	if d.Outcome != recon.Posted || kinds(res.Entries) != "reversal" {
		t.Fatalf("return after rematch: %q %s %s", d.Outcome, kinds(res.Entries), d.Reason)
	}
	h.wantBalances(map[string]string{"bank:" + lender: "0", "loan:L-77:principal": "0", "loan:L-77:credit": "0", "transit:rematch": "0"})
}

func TestAssign(t *testing.T) {
	parked := credit("150.00", "", "E2E-Q")
	debit := txn(recon.Debit, "20.00", "", "E2E-QD")
	assign := func(actor string, allocs ...Allocation) Routed {
		return Routed{Kind: KindAssign, Key: "suspense", Transaction: recon.BankTransaction{ID: parked.ID}, Note: "phoned the borrower", Actor: actor, Allocations: allocs}
	}
	cases := []struct {
		name   string
		r      Routed
		reject string // substring of the reason, "" when accepted
	}{
		{name: "split summing exactly", r: assign("ops@lender", Allocation{"L-2", dec("100.00")}, Allocation{"L-123", dec("50")})},
		{name: "sum short by a cent", r: assign("ops@lender", Allocation{"L-2", dec("100.00")}, Allocation{"L-123", dec("49.99")}), reject: "sum to 149.99"},
		{name: "sum over", r: assign("ops@lender", Allocation{"L-2", dec("150.01")}), reject: "sum to 150.01"},
		{name: "no allocations", r: assign("ops@lender"), reject: "sum to 0"},
		{name: "unknown loan", r: assign("ops@lender", Allocation{"L-404", dec("150.00")}), reject: "unknown loan L-404"},
		{name: "other currency", r: assign("ops@lender", Allocation{"L-3", dec("150.00")}), reject: "is in GBP"},
		{name: "negative share", r: assign("ops@lender", Allocation{"L-2", dec("160.00")}, Allocation{"L-123", dec("-10.00")}), reject: "not positive"},
		{name: "same loan twice", r: assign("ops@lender", Allocation{"L-2", dec("100.00")}, Allocation{"L-2", dec("50.00")}), reject: "more than once"},
		{name: "no such item", r: Routed{Kind: KindAssign, Transaction: recon.BankTransaction{ID: "bt_nope"}, Allocations: []Allocation{{"L-2", dec("1")}}}, reject: "no open suspense item"},
		{name: "outgoing money split", r: Routed{Kind: KindAssign, Transaction: recon.BankTransaction{ID: debit.ID},
			Allocations: []Allocation{{"L-2", dec("10.00")}, {"L-123", dec("10.00")}}}, reject: "whole to one loan"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testLoans())
			h.run(parked)
			h.run(debit)
			before := len(h.entries)
			res := h.post(c.r)
			d := res.Decision
			if c.reject != "" {
				if d.Outcome != recon.Rejected || !strings.Contains(d.Reason, c.reject) || len(res.Entries)+len(res.Routed) != 0 {
					t.Fatalf("decision %q %q with %d entries, want rejected %q", d.Outcome, d.Reason, len(res.Entries), c.reject)
				}
				if n := len(h.poster.Items()); n != 2 {
					t.Errorf("%d items open after a rejected assignment", n)
				}
				return
			}
			if d.Outcome != recon.Posted || d.Rule != "manual" || d.TransactionID != parked.ID || !d.Amount.Equal(parked.Amount) {
				t.Fatalf("decision %+v", d)
			}
			if kinds(res.Entries) != "suspense-release" || len(res.Routed) != 2 || res.Entries[0].Actor != "ops@lender" {
				t.Fatalf("assign: %s, %d routed", kinds(res.Entries), len(res.Routed))
			}
			for _, rt := range res.Routed {
				pr := h.post(rt)
				if kinds(pr.Entries) != "rematch" || pr.Entries[0].Actor != "ops@lender" || pr.Entries[0].Note != "phoned the borrower" {
					t.Fatalf("rematch to %s: %s", rt.LoanID, kinds(pr.Entries))
				}
			}
			h.wantBalances(map[string]string{"suspense": "20.00", "transit:rematch": "0", "loan:L-2:principal": "-100.00", "loan:L-123:principal": "-50.00"})
			if len(h.entries) != before+3 {
				t.Errorf("%d entries", len(h.entries)-before)
			}
			if res := h.post(c.r); res.Decision.Outcome != recon.Rejected {
				t.Errorf("assigning a released item again: %q", res.Decision.Outcome)
			}
		})
	}
}

func TestPostTwiceIsDuplicate(t *testing.T) {
	for _, x := range []recon.BankTransaction{
		credit("100.00", "DE00VIBA0000000002", "E2E-T1"), // posted
		credit("100.00", "DE00VIBA0000009999", "E2E-T2"), // suspense
	} {
		h := newHarness(t, testLoans())
		_, rt := h.route(x)
		first := h.post(*rt)
		if len(first.Entries) != 1 {
			t.Fatalf("first: %s", kinds(first.Entries))
		}
		second := h.post(*rt)
		if second.Decision.Outcome != recon.Duplicate || second.Decision.Rule != "posting-key" || len(second.Entries)+len(second.Routed) != 0 {
			t.Errorf("second Post: %q rule %q, %d entries", second.Decision.Outcome, second.Decision.Rule, len(second.Entries))
		}
	}
}

// Restore rebuilds the Poster's state from its journal alone: the next
// records give the same result as on the poster that wrote the journal.
func TestRestore(t *testing.T) {
	loans := testLoans()
	h := newHarness(t, loans)
	a := credit("130.00", "DE00VIBA0000000001", "E2E-R1")
	b := credit("600.00", "DE00VIBA0000000002", "E2E-R2")
	early := returned(credit("50.00", "DE00VIBA0000000123", "E2E-R3"), "50.00")
	for _, x := range []recon.BankTransaction{a, b, early, credit("75.00", "", "E2E-R4"), credit("10.00", "DE00VIBA0000000055", "E2E-R5")} {
		h.run(x)
	}
	loans.Put(recon.Loan{LoanID: "L-55", VirtualIBAN: "DE00VIBA0000000055", Currency: "EUR", Principal: dec("5.00")})
	h.rematch()

	// The journal as the service reads it back: JSON from Kafka.
	fresh := NewPoster(loans)
	for _, e := range h.entries {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back recon.Entry
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		fresh.Restore(back)
	}
	if fresh.Head != h.poster.Head {
		t.Fatalf("head %+v, want %+v", fresh.Head, h.poster.Head)
	}
	same := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s differs after Restore\n got %s\nwant %s", what, g, w)
		}
	}
	same("items", fresh.Items(), h.poster.Items())
	parked := credit("75.00", "", "E2E-R4")
	next := []Routed{
		{Kind: KindMatch, Key: "L-1", LoanID: "L-1", Rule: "virtual_iban", Transaction: credit("100.00", "DE00VIBA0000000001", "E2E-R6")},
		{Kind: KindMatch, Key: "L-1", LoanID: "L-1", Rule: "virtual_iban", Transaction: returned(a, "130.00")},
		{Kind: KindMatch, Key: "L-2", LoanID: "L-2", Rule: "virtual_iban", Transaction: txn(recon.Debit, "100.00", "DE00VIBA0000000002", "E2E-R7")},
		{Kind: KindMatch, Key: "L-123", LoanID: "L-123", Rule: "virtual_iban", Transaction: credit("50.00", "DE00VIBA0000000123", "E2E-R3")},
		{Kind: KindMatch, Key: "L-2", LoanID: "L-2", Rule: "virtual_iban", Transaction: b}, // already booked
		{Kind: KindAssign, Transaction: recon.BankTransaction{ID: parked.ID}, Allocations: []Allocation{{"L-2", dec("75.00")}}, Actor: "ops"},
	}
	for i, r := range next {
		want := h.poster.Post(now, r)
		got := fresh.Post(now, r)
		same("result of next record "+strconv.Itoa(i), got, want)
		if len(want.Entries) == 0 && r.Kind != KindAssign && want.Decision.Outcome != recon.Duplicate {
			t.Errorf("next record %d booked nothing: the comparison proves little", i)
		}
		h.record(want)
	}
	same("items at the end", fresh.Items(), h.poster.Items())
}

// --- property test -------------------------------------------------------

// world is a random sequence's ground truth, kept independently of the
// matcher: the loans it knows, the bank movements that happened.
type world struct {
	rng      *rand.Rand
	loans    *Loans
	h        *harness
	defs     map[string]recon.Loan
	future   []recon.Loan // loans whose IBAN is paid before they are registered
	credits  []recon.BankTransaction
	sighted  []recon.BankTransaction
	later    []recon.BankTransaction // originals whose return was sent first
	outcomes map[recon.Outcome]int
	// bank is the lender's account as the bank sees it: booked movements.
	bank map[string]decimal.Decimal
	n    int
	// byAcc is every account's balance per currency (debits minus
	// credits) over the first checked entries of the journal.
	byAcc   map[[2]string]decimal.Decimal
	disb    map[[2]string]decimal.Decimal // loan, currency -> principal paid out
	checked int
}

func (w *world) amount() decimal.Decimal {
	cents := w.rng.IntN(40000) + 1
	if w.rng.IntN(8) == 0 {
		cents = w.rng.IntN(300) + 1
	}
	return decimal.New(int64(cents), -2)
}

func (w *world) newLoan() recon.Loan {
	w.n++
	id := "L-" + strconv.Itoa(w.n)
	cur := "EUR"
	if w.rng.IntN(5) == 0 {
		cur = "GBP"
	}
	l := recon.Loan{LoanID: id, VirtualIBAN: fmt.Sprintf("DE00VIBA%010d", w.n), Currency: cur, Principal: w.amount()}
	if w.rng.IntN(3) == 0 {
		l.MandateID = "MNDT-" + id
	}
	for i := range w.rng.IntN(4) {
		l.Schedule = append(l.Schedule, recon.Instalment{DueDate: recon.Date(fmt.Sprintf("2026-%02d-01", 12-i)),
			Principal: w.amount(), Interest: decimal.New(int64(w.rng.IntN(2000)), -2), Fees: decimal.New(int64(w.rng.IntN(3)*150), -2)})
	}
	return l
}

func (w *world) pick(xs []recon.BankTransaction) recon.BankTransaction {
	return xs[w.rng.IntN(len(xs))]
}

func (w *world) anyLoan() (recon.Loan, bool) {
	if len(w.defs) == 0 {
		return recon.Loan{}, false
	}
	ids := make([]string, 0, len(w.defs))
	for id := range w.defs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return w.defs[ids[w.rng.IntN(len(ids))]], true
}

// sight sends one sighting through Router and Poster and checks it ends in
// exactly one outcome.
func (w *world) sight(t recon.BankTransaction) {
	w.h.t.Helper()
	w.sighted = append(w.sighted, t)
	d, rt := w.h.route(t)
	if rt == nil {
		switch d.Outcome {
		case recon.Duplicate, recon.NotBooked, recon.Suspense: // suspense: identity conflict, not booked
		default:
			w.h.t.Fatalf("Router ended %s with %q", t.ID, d.Outcome)
		}
		w.outcomes[d.Outcome]++
		return
	}
	res := w.h.post(*rt)
	if rt.Kind == KindConflict { // a review item: no money moves
		if res.Decision.Outcome != recon.Suspense || len(res.Entries) > 1 {
			w.h.t.Fatalf("conflict %s: %q with %d entries", t.ID, res.Decision.Outcome, len(res.Entries))
		}
		w.outcomes[res.Decision.Outcome]++
		return
	}
	switch res.Decision.Outcome {
	case recon.Posted, recon.Suspense:
	default:
		w.h.t.Fatalf("Poster ended a new identity %s with %q (%s)", t.ID, res.Decision.Outcome, res.Decision.Reason)
	}
	w.outcomes[res.Decision.Outcome]++
	// Booked money moved on the bank account, whatever the ledger makes of it.
	amt := t.Amount
	if t.Direction == recon.Debit {
		amt = amt.Neg()
	}
	w.bank[t.Currency] = w.bank[t.Currency].Add(amt)
}

func (w *world) step() {
	switch op := w.rng.IntN(124); {
	case op < 8: // a loan is registered, maybe one already paid to
		l := w.newLoan()
		if len(w.future) > 0 && w.rng.IntN(2) == 0 {
			l, w.future = w.future[0], w.future[1:]
		}
		w.defs[l.LoanID] = l
		w.h.put(l)
		w.h.rematch()
	case op < 45: // a repayment, sometimes in the wrong currency or pending first
		l, ok := w.anyLoan()
		if !ok {
			return
		}
		t := credit(w.amount().String(), l.VirtualIBAN, "E2E-"+strconv.Itoa(len(w.sighted)))
		t.Currency = l.Currency
		if w.rng.IntN(15) == 0 {
			t.Currency = "CHF"
		}
		t.ID = recon.IdentityKey(t)
		if w.rng.IntN(8) == 0 {
			p := t
			p.Status = recon.Pending
			w.sight(p)
		}
		w.credits = append(w.credits, t)
		w.sight(t)
	case op < 55: // money for an IBAN with no loan yet, maybe after the loan was paid out
		l := w.newLoan()
		if w.rng.IntN(3) == 0 {
			l.DisbursementEndToEndID = "DISB-" + l.LoanID
			d := txn(recon.Debit, l.Principal.String(), "", l.DisbursementEndToEndID)
			d.Currency = l.Currency
			d.ID = recon.IdentityKey(d)
			w.sight(d)
		}
		w.future = append(w.future, l)
		t := credit(w.amount().String(), l.VirtualIBAN, "E2E-"+strconv.Itoa(len(w.sighted)))
		t.Currency = l.Currency
		t.ID = recon.IdentityKey(t)
		w.credits = append(w.credits, t)
		w.sight(t)
	case op < 65: // another sighting of something seen, sometimes with another amount
		if len(w.sighted) == 0 {
			return
		}
		t := w.pick(w.sighted)
		if w.rng.IntN(5) == 0 {
			t.Amount = t.Amount.Add(decimal.New(1, -2))
		}
		w.sight(t)
	case op < 75: // a return, of the whole amount or (rarely) not
		if len(w.credits) == 0 {
			return
		}
		orig := w.pick(w.credits)
		amount := orig.Amount
		if w.rng.IntN(10) == 0 && amount.GreaterThan(decimal.New(1, -2)) { // the bank never books zero
			amount = amount.Sub(decimal.New(1, -2))
		}
		w.sight(returned(orig, amount.StringFixed(2)))
	case op < 80: // a return that arrives before its original
		l, ok := w.anyLoan()
		if !ok {
			return
		}
		t := credit(w.amount().String(), l.VirtualIBAN, "E2E-"+strconv.Itoa(len(w.sighted)))
		t.Currency = l.Currency
		t.ID = recon.IdentityKey(t)
		amount := t.Amount
		if w.rng.IntN(5) == 0 {
			amount = amount.Add(decimal.New(1, -2))
		}
		w.sight(returned(t, amount.StringFixed(2)))
		w.later = append(w.later, t)
	case op < 85: // the original of an early return
		if len(w.later) == 0 {
			return
		}
		t := w.later[0]
		w.later = w.later[1:]
		w.credits = append(w.credits, t)
		w.sight(t)
	case op < 90: // a refund or a bank charge
		if l, ok := w.anyLoan(); ok && w.rng.IntN(2) == 0 {
			t := txn(recon.Debit, w.amount().String(), l.VirtualIBAN, "E2E-"+strconv.Itoa(len(w.sighted)))
			t.Currency = l.Currency
			t.ID = recon.IdentityKey(t)
			w.sight(t)
			return
		}
		t := txn(recon.Debit, "1.25", "", "")
		t.IsCharge, t.BankReference = true, "CHG-"+strconv.Itoa(len(w.sighted))
		t.ID = recon.IdentityKey(t)
		w.sight(t)
	case op < 100:
		w.assignCredit()
	case op < 104: // a person dismisses a review item
		for _, it := range w.h.poster.Items() {
			if it.Kind == ItemConflict {
				res := w.h.post(Routed{Kind: KindDismiss, Key: "suspense", ItemID: it.ID, Note: "checked", Actor: "ops"})
				if res.Decision.Outcome == recon.Rejected || len(res.Entries) != 1 {
					w.h.t.Fatalf("dismiss %s: %q %s", it.ID, res.Decision.Outcome, res.Decision.Reason)
				}
				return
			}
		}
	case op < 110: // a person takes an assignment back to suspense
		var rematched []recon.Entry
		for _, e := range w.h.entries {
			if e.Kind == EntryRematchIn {
				rematched = append(rematched, e)
			}
		}
		if len(rematched) == 0 {
			return
		}
		e := rematched[w.rng.IntN(len(rematched))]
		res := w.h.post(Routed{Kind: KindUnassign, Key: e.LoanID, LoanID: e.LoanID, Transaction: recon.BankTransaction{ID: e.TransactionID}, Note: "wrong loan", Actor: "ops"})
		for _, r := range res.Routed {
			w.h.post(r)
		}
	case op < 114: // a loan is paid out
		l, ok := w.anyLoan()
		if !ok {
			return
		}
		if l.DisbursementEndToEndID == "" {
			l.DisbursementEndToEndID = "DISB-" + l.LoanID
			w.defs[l.LoanID] = l
			w.h.put(l)
			w.h.rematch()
		}
		t := txn(recon.Debit, l.Principal.String(), "", l.DisbursementEndToEndID)
		t.Currency = l.Currency
		t.ID = recon.IdentityKey(t)
		w.sight(t)
		if w.rng.IntN(3) == 0 { // and the transfer comes back
			back := txn(recon.Credit, l.Principal.String(), "", l.DisbursementEndToEndID)
			back.Currency, back.Reversal, back.VirtualIBAN = l.Currency, true, l.VirtualIBAN
			back.ID = recon.IdentityKey(back)
			w.sight(back)
		}
	case op < 118: // money moves between the lender's own accounts
		t := txn(recon.Direction([]string{"credit", "debit"}[w.rng.IntN(2)]), w.amount().String(), "", "OWN-"+strconv.Itoa(len(w.sighted)))
		t.CounterpartyIBAN = ownIBAN
		t.ID = recon.IdentityKey(t)
		w.sight(t)
	default: // a person assigns a parked outgoing item to a loan
		var open []Item
		for _, it := range w.h.poster.Items() {
			if it.Kind == ItemMoney && it.Transaction.Direction == recon.Debit {
				open = append(open, it)
			}
		}
		l, ok := w.anyLoan()
		if len(open) == 0 || !ok {
			return
		}
		it := open[w.rng.IntN(len(open))]
		res := w.h.post(Routed{Kind: KindAssign, Key: "suspense", ItemID: it.ID, Transaction: recon.BankTransaction{ID: it.Transaction.ID}, Actor: "ops",
			Allocations: []Allocation{{LoanID: l.LoanID, Amount: it.Amount}}})
		for _, r := range res.Routed {
			w.h.post(r)
		}
	}
}

const ownIBAN = "DE02100100100006820101"

// assignCredit: a person assigns a parked credit, split or not, right or wrong.
func (w *world) assignCredit() {
	{
		var open []Item
		for _, it := range w.h.poster.Items() {
			if it.Kind == ItemMoney && it.Transaction.Direction == recon.Credit {
				open = append(open, it)
			}
		}
		if len(open) == 0 {
			return
		}
		it := open[w.rng.IntN(len(open))]
		var allocs []Allocation
		left := it.Amount
		for _, id := range w.sortedLoanIDs() {
			l := w.defs[id]
			if l.Currency != it.Transaction.Currency || !left.IsPositive() || w.rng.IntN(3) == 0 {
				continue
			}
			share := left
			if left.GreaterThan(decimal.New(1, -2)) && w.rng.IntN(2) == 0 {
				share = left.Div(decimal.NewFromInt(2)).Truncate(2)
			}
			allocs = append(allocs, Allocation{LoanID: id, Amount: share})
			left = left.Sub(share)
		}
		wrong := w.rng.IntN(5) == 0
		if wrong && len(allocs) > 0 {
			allocs[0].Amount = allocs[0].Amount.Add(decimal.New(1, -2))
		}
		res := w.h.post(Routed{Kind: KindAssign, Key: "suspense", ItemID: it.ID, Transaction: recon.BankTransaction{ID: it.Transaction.ID}, Actor: "ops", Allocations: allocs})
		accepted := res.Decision.Outcome == recon.Posted
		if exact := len(allocs) > 0 && left.IsZero() && !wrong; accepted != exact {
			w.h.t.Fatalf("assign %v of %s: %q (%s)", allocs, it.Amount, res.Decision.Outcome, res.Decision.Reason)
		}
		for _, r := range res.Routed {
			w.h.post(r)
		}
	}
}

func (w *world) sortedLoanIDs() []string {
	ids := make([]string, 0, len(w.defs))
	for id := range w.defs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// check holds after every step: the ledger mirrors the bank, nets to zero,
// and no loan is both owed money and owing credit.
func (w *world) check(step int) {
	t := w.h.t
	t.Helper()
	byAcc := w.byAcc
	for _, e := range w.h.entries[w.checked:] {
		for _, p := range e.Postings {
			if (e.Kind == EntryDisbursement || e.Kind == EntryDebitReversal) && p.Account == ledger.Principal(e.LoanID) {
				k := [2]string{e.LoanID, p.Currency}
				if p.Side == recon.DebitSide {
					w.disb[k] = w.disb[k].Add(p.Amount)
				} else {
					w.disb[k] = w.disb[k].Sub(p.Amount)
				}
			}
			a := p.Amount
			if p.Side == recon.CreditSide {
				a = a.Neg()
			}
			byAcc[[2]string{p.Account, p.Currency}] = byAcc[[2]string{p.Account, p.Currency}].Add(a)
		}
	}
	w.checked = len(w.h.entries)
	sums := map[string]decimal.Decimal{}
	for k, v := range byAcc {
		sums[k[1]] = sums[k[1]].Add(v)
	}
	for cur, s := range sums {
		if !s.IsZero() {
			t.Fatalf("step %d: trial balance in %s is %s", step, cur, s)
		}
	}
	bankAcc := ledger.Bank(lender)
	for _, cur := range []string{"EUR", "GBP", "CHF"} {
		if got := byAcc[[2]string{bankAcc, cur}]; !got.Equal(w.bank[cur]) {
			t.Fatalf("step %d: ledger bank %s %s, the bank says %s", step, got, cur, w.bank[cur])
		}
		// The bank is the loans, credits, suspense, transit and fees.
		other := decimal.Zero
		for k, v := range byAcc {
			if k[1] == cur && k[0] != bankAcc {
				other = other.Add(v)
			}
		}
		if !other.Neg().Equal(w.bank[cur]) {
			t.Fatalf("step %d: bank %s %s but the other accounts hold %s", step, w.bank[cur], cur, other.Neg())
		}
		// Suspense holds exactly the open items.
		var items decimal.Decimal
		for _, it := range w.h.poster.Items() {
			if it.Transaction.Currency != cur || it.Kind != ItemMoney {
				continue
			}
			if it.Transaction.Direction == recon.Credit {
				items = items.Sub(it.Amount)
			} else {
				items = items.Add(it.Amount)
			}
		}
		if got := byAcc[[2]string{ledger.Suspense, cur}]; !got.Equal(items) {
			t.Fatalf("step %d: suspense %s %s, open items %s", step, got, cur, items)
		}
		if got := byAcc[[2]string{ledger.Transit, cur}]; !got.IsZero() {
			t.Fatalf("step %d: transit %s %s after every routed record was posted", step, got, cur)
		}
	}
	for id, l := range w.defs {
		owed := map[string]decimal.Decimal{"principal": l.Principal}
		if len(l.Schedule) > 0 {
			owed = map[string]decimal.Decimal{}
			for _, in := range l.Schedule {
				owed["fees"] = owed["fees"].Add(in.Fees)
				owed["interest"] = owed["interest"].Add(in.Interest)
				owed["principal"] = owed["principal"].Add(in.Principal)
			}
		}
		outstanding := decimal.Zero
		for i, part := range partNames {
			paid := byAcc[[2]string{account(id, i), l.Currency}].Neg()
			if part == "principal" {
				paid = paid.Add(w.disbursed(id, l.Currency))
			}
			if paid.IsNegative() || paid.GreaterThan(owed[part]) {
				t.Fatalf("step %d: loan %s %s paid %s of %s", step, id, part, paid, owed[part])
			}
			outstanding = outstanding.Add(owed[part].Sub(paid))
		}
		credit := byAcc[[2]string{ledger.Credit(id), l.Currency}].Neg()
		if outstanding.IsPositive() && credit.IsPositive() {
			t.Fatalf("step %d: loan %s owes %s and holds credit %s", step, id, outstanding, credit)
		}
	}
}

// disbursed is what the journal paid out on a loan's principal (checked
// entries only).
func (w *world) disbursed(id, currency string) decimal.Decimal {
	return w.disb[[2]string{id, currency}]
}

func newWorld(t testing.TB, seed uint64) *world {
	loans := NewLoans()
	return &world{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), loans: loans, h: newHarness(t, loans),
		defs: map[string]recon.Loan{}, outcomes: map[recon.Outcome]int{}, bank: map[string]decimal.Decimal{}, byAcc: map[[2]string]decimal.Decimal{}, disb: map[[2]string]decimal.Decimal{}}
}

func runWorld(t testing.TB, seed uint64, steps int) *world {
	w := newWorld(t, seed)
	for i := range steps {
		w.step()
		w.check(i)
	}
	total := 0
	for _, n := range w.outcomes {
		total += n
	}
	if total != len(w.sighted) {
		t.Fatalf("%d sightings, %d outcomes", len(w.sighted), total)
	}
	// The journal alone rebuilds the open items.
	fresh := NewPoster(w.loans)
	for _, e := range w.h.entries {
		fresh.Restore(e)
	}
	g, _ := json.Marshal(fresh.Items())
	x, _ := json.Marshal(w.h.poster.Items())
	if string(g) != string(x) {
		t.Fatalf("restored items differ\n got %s\nwant %s", g, x)
	}
	return w
}

func FuzzConservation(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42, 1234, 99991, 7, 2026} {
		f.Add(s, uint16(400))
	}
	f.Fuzz(func(t *testing.T, seed uint64, steps uint16) {
		w := runWorld(t, seed, int(steps%2000))
		t.Logf("seed %d: %d sightings, %d entries, outcomes %v, %d items open", seed, len(w.sighted), len(w.h.entries), w.outcomes, len(w.h.poster.Items()))
		if steps >= 400 && (w.outcomes[recon.Posted] == 0 || w.outcomes[recon.Suspense] == 0 || w.outcomes[recon.Duplicate] == 0) {
			t.Errorf("seed %d exercised too little: %v", seed, w.outcomes)
		}
	})
}

// --- benchmarks -----------------------------------------------------------

// BenchmarkRouteAndPost measures decisions per second on one core: a new
// booked repayment each time, routed by virtual IBAN and booked.
func BenchmarkRouteAndPost(b *testing.B) {
	loans := NewLoans()
	const nLoans = 10000
	for i := range nLoans {
		loans.Put(recon.Loan{LoanID: "L-" + strconv.Itoa(i), VirtualIBAN: fmt.Sprintf("DE00VIBA%010d", i), Currency: "EUR",
			Principal: dec("1000000.00"), Schedule: schedule12(i)})
	}
	r, p := NewRouter(loans), NewPoster(loans)
	txns := make([]recon.BankTransaction, 4096)
	for i := range txns {
		txns[i] = credit("12.34", fmt.Sprintf("DE00VIBA%010d", i%nLoans), "")
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuSeconds()
	for i := range b.N {
		t := txns[i%len(txns)]
		t.ID = "bt_" + strconv.Itoa(i)
		d, rt, seen := r.Route(t)
		if rt == nil {
			b.Fatalf("not routed: %q", d.Outcome)
		}
		r.Remember(t.ID, *seen)
		if res := p.Post(now, *rt); res.Decision.Outcome != recon.Posted {
			b.Fatalf("%q %s", res.Decision.Outcome, res.Decision.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	// On a shared machine wall time overstates the cost: this is per
	// second of the process's CPU time (GC included), i.e. per core.
	b.ReportMetric(float64(b.N)/(cpuSeconds()-cpu), "decisions/cpu-s")
}

// cpuSeconds is the CPU time (user and system) the process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkRoute is the Router alone (dedup and cascade).
func BenchmarkRoute(b *testing.B) {
	loans := NewLoans()
	for i := range 10000 {
		loans.Put(recon.Loan{LoanID: "L-" + strconv.Itoa(i), VirtualIBAN: fmt.Sprintf("DE00VIBA%010d", i), Currency: "EUR", Principal: dec("1000.00")})
	}
	r := NewRouter(loans)
	t := credit("12.34", "DE00VIBA0000000042", "")
	b.ReportAllocs()
	for i := range b.N {
		t.ID = "bt_" + strconv.Itoa(i)
		_, _, seen := r.Route(t)
		r.Remember(t.ID, *seen)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

func schedule12(i int) []recon.Instalment {
	s := make([]recon.Instalment, 12)
	for m := range s {
		// Each amount parsed from its own string, as when decoded from JSON.
		s[m] = recon.Instalment{DueDate: recon.Date(fmt.Sprintf("2027-%02d-05", m+1)),
			Principal: dec(strconv.Itoa(800+i%97) + "." + strconv.Itoa(10+m)),
			Interest:  dec(strconv.Itoa(40+i%13) + ".5" + strconv.Itoa(m%10)),
			Fees:      dec("1." + strconv.Itoa(10+m))}
	}
	return s
}

// BenchmarkLoansMemory puts a million loans with a 12-instalment schedule
// into the table every matcher instance holds and reports the heap it
// takes per million loans; schedule=0 shows what the schedules cost.
func BenchmarkLoansMemory(b *testing.B) {
	for _, instalments := range []int{12, 0} {
		b.Run("schedule="+strconv.Itoa(instalments), func(b *testing.B) {
			const n = 1000000
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				l := NewLoans()
				for i := range n {
					id := "L-" + strconv.Itoa(i)
					loan := recon.Loan{LoanID: id, VirtualIBAN: fmt.Sprintf("DE%02dVIBA%014d", i%100, i), Currency: "EUR",
						Principal: dec(strconv.Itoa(10000+i%5000) + ".00"), MandateID: "MNDT-" + id}
					if instalments > 0 {
						loan.Schedule = schedule12(i)
					}
					l.Put(loan)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if l.Len() != n {
					b.Fatalf("%d loans", l.Len())
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20)*(1e6/n), "MiB/1M-loans")
				runtime.KeepAlive(l)
			}
		})
	}
}
