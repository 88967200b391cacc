package matcher

import (
	"strconv"
	"strings"
	"testing"

	"github.com/reconhq/recon"
)

func TestLoansTable(t *testing.T) {
	l := NewLoans()
	loan := recon.Loan{LoanID: "L-9", VirtualIBAN: "de00 viba 9", Currency: "EUR", Principal: dec("100.5"), MandateID: "M-9", DisbursementEndToEndID: "D-9",
		Schedule: []recon.Instalment{
			{DueDate: "2026-02-01", Principal: dec("60"), Interest: dec("1.25"), Fees: dec("0")},
			{DueDate: "2026-01-01", Principal: dec("40.50"), Interest: dec("2"), Fees: dec("0.10")},
		}}
	if err := l.Put(loan); err != nil {
		t.Fatal(err)
	}
	got, ok := l.Get("L-9")
	if !ok || got.VirtualIBAN != "DE00VIBA9" || !got.Principal.Equal(dec("100.50")) || got.MandateID != "M-9" || got.DisbursementEndToEndID != "D-9" || len(got.Schedule) != 2 ||
		!got.Schedule[0].Principal.Equal(dec("40.5")) || !got.Schedule[0].Fees.Equal(dec("0.1")) || !got.Schedule[1].Interest.Equal(dec("1.25")) {
		t.Fatalf("got %+v", got)
	}
	r := NewRouter(l)
	if rt := r.cascade(credit("1", "DE00 VIBA 9", "")); rt.LoanID != "L-9" {
		t.Fatalf("by vIBAN: %q", rt.LoanID)
	}
	// Replacing moves the keys.
	loan.VirtualIBAN, loan.MandateID = "DE00VIBA10", ""
	if err := l.Put(loan); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.find(keyVIBAN, "DE00VIBA9"); ok {
		t.Fatal("old vIBAN still found")
	}
	if _, ok := l.find(keyMandate, "M-9"); ok {
		t.Fatal("old mandate still found")
	}
	if off, ok := l.find(keyVIBAN, "DE00VIBA10"); !ok || l.key(off, keyID) != "L-9" || l.Len() != 1 {
		t.Fatal("new vIBAN not found")
	}
	l.Delete("L-9")
	if _, ok := l.Get("L-9"); ok || l.Len() != 0 {
		t.Fatal("deleted loan found")
	}
	for _, c := range []struct {
		loan recon.Loan
		err  string
	}{
		{recon.Loan{LoanID: "", Currency: "EUR"}, "loan id"},
		{recon.Loan{LoanID: strings.Repeat("x", 129), Currency: "EUR"}, "loan id"},
		{recon.Loan{LoanID: "X", Currency: "EURO"}, "ISO 4217"},
		{recon.Loan{LoanID: "X", Currency: "EUR", Principal: dec("1.001")}, "more fraction digits"},
		{recon.Loan{LoanID: "X", Currency: "JPY", Principal: dec("1.5")}, "more fraction digits"},
		{recon.Loan{LoanID: "X", Currency: "EUR", Principal: dec("-1")}, "negative"},
		{recon.Loan{LoanID: "X", Currency: "EUR", Principal: dec("1e30")}, "too large"},
		{recon.Loan{LoanID: "X", Currency: "EUR", Schedule: []recon.Instalment{{Principal: dec("1"), Interest: dec("0.001")}}}, "interest"},
	} {
		if err := l.Put(c.loan); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Put(%+v): %v, want %q", c.loan, err, c.err)
		}
	}
}

// Many replacements compact the arena and keep every key.
func TestLoansCompaction(t *testing.T) {
	l := NewLoans()
	for round := range 6 {
		for i := range 3000 {
			id := "L-" + strconv.Itoa(i)
			if err := l.Put(recon.Loan{LoanID: id, VirtualIBAN: "V" + strconv.Itoa(i), Currency: "EUR", Principal: dec(strconv.Itoa(round*1000+i) + ".25"),
				MandateID: "M" + strconv.Itoa(i), Schedule: schedule12(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l.Len() != 3000 || l.garbage > len(l.arena) {
		t.Fatalf("%d loans, %d garbage of %d", l.Len(), l.garbage, len(l.arena))
	}
	for i := range 3000 {
		s := strconv.Itoa(i)
		got, ok := l.Get("L-" + s)
		if !ok || !got.Principal.Equal(dec(strconv.Itoa(5000+i)+".25")) || len(got.Schedule) != 12 {
			t.Fatalf("L-%s: %+v", s, got)
		}
		for k, key := range map[int]string{keyVIBAN: "V" + s, keyMandate: "M" + s} {
			if off, ok := l.find(k, key); !ok || l.key(off, keyID) != "L-"+s {
				t.Fatalf("key %d %s lost", k, key)
			}
		}
	}
}

func TestToMinor(t *testing.T) {
	for _, c := range []struct {
		in, cur string
		want    int64
		err     string
	}{
		{"12.34", "EUR", 1234, ""},
		{"12.340", "EUR", 1234, ""},
		{"12", "EUR", 1200, ""},
		{"1E+3", "EUR", 100000, ""},
		{"12.345", "EUR", 0, "more fraction digits"},
		{"5", "JPY", 5, ""},
		{"5.1", "JPY", 0, "more fraction digits"},
		{"1.234", "KWD", 1234, ""},
		{"-7.5", "EUR", -750, ""},
		{"100000000000000000000", "EUR", 0, "too large"},
		{"90071992547409.93", "EUR", 0, "too large"},
	} {
		got, err := toMinor(dec(c.in), c.cur)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %s: %d %v, want %q", c.in, c.cur, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || !fromMinor(got, c.cur).Equal(dec(c.in)) {
			t.Errorf("%s %s: %d %v, want %d", c.in, c.cur, got, err, c.want)
		}
	}
}

// A virtual IBAN claimed by a second loan is never taken over silently,
// whatever order the loans are read in: payments to it are parked until
// one claim is withdrawn, and the first holder routes again once the
// newcomer is deleted.
func TestLoansContestedVirtualIBAN(t *testing.T) {
	a := recon.Loan{LoanID: "L-A", VirtualIBAN: "DE00VIBA77", Currency: "EUR", Principal: dec("100")}
	b := recon.Loan{LoanID: "L-B", VirtualIBAN: "de00 viba 77", Currency: "EUR", Principal: dec("100")}
	for _, order := range [][]recon.Loan{{a, b}, {b, a}} {
		l := NewLoans()
		for _, loan := range order {
			if err := l.Put(loan); err != nil {
				t.Fatal(err)
			}
		}
		r := NewRouter(l)
		rt := r.cascade(credit("10", "DE00VIBA77", ""))
		if rt.LoanID != "" || rt.Key != suspenseKey || !strings.Contains(rt.Reason, "claimed by several loans") {
			t.Fatalf("order %s first: routed to %q (%s), want parked", order[0].LoanID, rt.LoanID, rt.Reason)
		}
		// amending a claimant keeps the claim contested
		if err := l.Put(order[0]); err != nil {
			t.Fatal(err)
		}
		if got := l.Claimants("DE00VIBA77"); len(got) != 2 {
			t.Fatalf("claimants after an amendment %v", got)
		}
		l.Delete(order[1].LoanID)
		if rt := r.cascade(credit("10", "DE00VIBA77", "")); rt.LoanID != order[0].LoanID {
			t.Fatalf("after deleting %s: routed to %q (%s), want %s", order[1].LoanID, rt.LoanID, rt.Reason, order[0].LoanID)
		}
	}
}

// A loan's packed record (the local store's form) gives back the same
// loan; a record cut short or of another layout is refused.
func TestLoansPacked(t *testing.T) {
	l := NewLoans()
	loans := []recon.Loan{
		{LoanID: "L-1", VirtualIBAN: "DE00VIBA1", Currency: "EUR", Principal: dec("100.50"), MandateID: "M-1", DisbursementEndToEndID: "D-1", BorrowerID: "B-1",
			Schedule: []recon.Instalment{{DueDate: "2026-01-01", Principal: dec("40.50"), Interest: dec("2"), Fees: dec("0.10")}, {DueDate: "2026-02-01", Principal: dec("60"), Interest: dec("1.25")}}},
		{LoanID: "L-2", Currency: "JPY", Principal: dec("1000")},
	}
	copyOf := NewLoans()
	for _, loan := range loans {
		if err := l.Put(loan); err != nil {
			t.Fatal(err)
		}
		rec, ok := l.Packed(loan.LoanID)
		if !ok {
			t.Fatalf("%s: no packed record", loan.LoanID)
		}
		for n := range len(rec) - 1 {
			if err := NewLoans().PutPacked(rec[:n]); err == nil {
				t.Fatalf("%s: a record cut to %d of %d bytes was taken", loan.LoanID, n, len(rec))
			}
		}
		other := append([]byte{packedVersion + 1}, rec[1:]...)
		if err := NewLoans().PutPacked(other); err == nil {
			t.Fatalf("%s: a record of another layout was taken", loan.LoanID)
		}
		if err := copyOf.PutPacked(rec); err != nil {
			t.Fatalf("%s: %v", loan.LoanID, err)
		}
		want, _ := l.Get(loan.LoanID)
		got, ok := copyOf.Get(loan.LoanID)
		if !ok || got.LoanID != want.LoanID || got.BorrowerID != want.BorrowerID || !got.Principal.Equal(want.Principal) || len(got.Schedule) != len(want.Schedule) {
			t.Fatalf("%s: from the packed record %+v, want %+v", loan.LoanID, got, want)
		}
	}
	if got := copyOf.LoansOf("B-1"); len(got) != 1 || got[0] != "L-1" {
		t.Fatalf("borrower B-1's loans after PutPacked: %v", got)
	}
}
