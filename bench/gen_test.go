package bench

import (
	"testing"
	"time"

	"github.com/reconhq/recon"
)

func TestGenerateIsSeededAndConsistent(t *testing.T) {
	cfg := GenConfig{Seed: 7, Run: "T1", Loans: 500, Events: 20000}
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(cfg)
	if len(a.Events) != cfg.Events || len(b.Events) != cfg.Events {
		t.Fatalf("events: %d and %d, want %d", len(a.Events), len(b.Events), cfg.Events)
	}
	for i := range a.Events {
		if a.Events[i].Txn.ID != b.Events[i].Txn.ID || !a.Events[i].Txn.Amount.Equal(b.Events[i].Txn.Amount) {
			t.Fatalf("event %d differs between two runs of the same seed", i)
		}
	}
	ex := a.Expect
	if ex.Transactions+ex.Duplicates != cfg.Events {
		t.Errorf("transactions %d + duplicates %d != events %d", ex.Transactions, ex.Duplicates, cfg.Events)
	}
	ids := map[string]bool{}
	var bank int64
	for _, e := range a.Events {
		c := e.Txn.Amount.Shift(2).IntPart()
		if e.Txn.Direction == recon.Debit {
			c = -c
		}
		if ids[e.Txn.ID] {
			if e.Kind != KindDuplicate {
				t.Errorf("%s: id %s repeated by a %s", e.Txn.ID, e.Txn.ID, e.Kind)
			}
			continue
		}
		ids[e.Txn.ID] = true
		bank += c
	}
	if bank != ex.Bank {
		t.Errorf("bank: events sum to %d cents, expectation says %d", bank, ex.Bank)
	}
	var paid, credit int64
	for _, v := range ex.Paid {
		paid += v
	}
	for _, v := range ex.Credit {
		credit += v
	}
	var charges int64
	for _, e := range a.Events {
		if e.Kind == KindCharge {
			charges += e.Txn.Amount.Shift(2).IntPart()
		}
	}
	if got := paid + credit + ex.SuspenseSum - charges; got != ex.Bank {
		t.Errorf("loans %d + credit %d + suspense %d - charges %d = %d, bank %d", paid, credit, ex.SuspenseSum, charges, got, ex.Bank)
	}
}

func TestGenerateMix(t *testing.T) {
	w, err := Generate(GenConfig{Seed: 1, Run: "T2", Loans: 10000, Events: 100000})
	if err != nil {
		t.Fatal(err)
	}
	share := func(kinds ...string) float64 {
		n := 0
		for _, k := range kinds {
			n += w.Expect.Kinds[k]
		}
		return float64(n) / float64(len(w.Events))
	}
	for _, c := range []struct {
		name     string
		kinds    []string
		min, max float64
	}{
		{"virtual IBAN transfers are most", []string{KindVirtualIBAN, KindLarge}, 0.75, 0.85},
		{"direct debits", []string{KindCollection}, 0.08, 0.12},
		{"returns", []string{KindReturn}, 0.005, 0.015},
		{"other rules or suspense: 5-8 %", []string{KindRemittance, KindCreditorRef, KindUnknown, KindCharge}, 0.05, 0.08},
		{"duplicates across sources: 2 %", []string{KindDuplicate}, 0.015, 0.025},
	} {
		t.Run(c.name, func(t *testing.T) {
			if s := share(c.kinds...); s < c.min || s > c.max {
				t.Errorf("share %.4f outside %.3f..%.3f", s, c.min, c.max)
			}
		})
	}
	if len(w.Expect.LargeCredits) == 0 || w.Expect.Suspense == 0 {
		t.Errorf("large credits %d, suspense %d: want some of each", len(w.Expect.LargeCredits), w.Expect.Suspense)
	}
}

func TestGenerateRefusesEmpty(t *testing.T) {
	for _, cfg := range []GenConfig{{Run: "X", Loans: 0, Events: 1}, {Run: "X", Loans: 1, Events: 0}, {Loans: 1, Events: 1}, {Run: "B12345678", Loans: 1, Events: 1}} {
		if _, err := Generate(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestLoanScheduleSumsToOwed(t *testing.T) {
	w := &Workload{Cfg: GenConfig{Seed: 3, Run: "T3"}}
	for i := 0; i < 50; i++ {
		l := w.Loan(i)
		var sum, principal int64
		for _, in := range l.Schedule {
			sum += in.Principal.Add(in.Interest).Add(in.Fees).Shift(2).IntPart()
			principal += in.Principal.Shift(2).IntPart()
		}
		if sum != owed(3, i) || principal != l.Principal.Shift(2).IntPart() {
			t.Fatalf("loan %d: schedule sums to %d (principal %d), owed %d, principal %s", i, sum, principal, owed(3, i), l.Principal)
		}
	}
}

// The workload's IBANs are ones ingest accepts (the bench's front door may
// go through it), and the lender's account is no loan's virtual IBAN.
func TestGeneratedIBANsAreValid(t *testing.T) {
	for _, run := range []string{"X", "T1", RunID(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))} {
		w, err := Generate(GenConfig{Seed: 11, Run: run, Loans: 200, Events: 5000})
		if err != nil {
			t.Fatal(err)
		}
		check := func(what, iban string) {
			if err := recon.ValidIBAN(iban); iban != "" && err != nil {
				t.Fatalf("run %s: %s %s: %v", run, what, iban, err)
			}
		}
		check("account", w.Account)
		for i := range 200 {
			l := w.Loan(i)
			check("virtual IBAN", l.VirtualIBAN)
			check("borrower IBAN", l.Borrower.IBAN)
			if l.VirtualIBAN == w.Account {
				t.Fatalf("run %s: loan %d's virtual IBAN is the lender's account", run, i)
			}
		}
		for _, e := range w.Events {
			check("event account", e.Txn.AccountIBAN)
			check("event virtual IBAN", e.Txn.VirtualIBAN)
			check("event counterparty", e.Txn.CounterpartyIBAN)
		}
	}
}
