package collect

import (
	"testing"

	"github.com/reconhq/recon"
)

func item(id, msg, pmt string, kind recon.ExpectedKind) recon.Expected {
	return recon.Expected{Type: recon.TypeExpected, ID: id, Kind: kind, LoanID: "L" + id, Amount: dec("100.00"), Currency: "EUR",
		RequestedDate: "2026-12-01", WindowDays: 5, MessageID: msg, PaymentInfoID: pmt, Status: recon.ExpectedOpen}
}

func booked(id, e2e string, dir recon.Direction, amount string) recon.BankTransaction {
	return recon.BankTransaction{Type: recon.TypeTransaction, ID: id, Direction: dir, Amount: dec(amount), Currency: "EUR",
		Status: recon.Booked, BookingDate: "2026-12-01", EndToEndID: e2e}
}

func TestTracker(t *testing.T) {
	c1, c2, c3 := item("C1", "M1", "P1", recon.Collection), item("C2", "M1", "P1", recon.Collection), item("C3", "M1", "P2", recon.Collection)
	d1 := item("D1", "M2", "P3", recon.Disbursement)
	returned := booked("t-ret", "C1", recon.Debit, "100.00")
	returned.ReturnReason = "MD06"
	pending := booked("t-pend", "C1", recon.Credit, "100.00")
	pending.Status = recon.Pending
	for _, tc := range []struct {
		name string
		recs []any
		want map[string]string // id -> status/reason
	}{
		{"settled by e2e", []any{c1, booked("t1", "C1", recon.Credit, "100.00")}, map[string]string{"C1": "settled/"}},
		{"amount differs", []any{c1, booked("t1", "C1", recon.Credit, "90.00")}, map[string]string{"C1": "settled/booked 90.00 EUR, expected 100.00 EUR"}},
		{"pending does not settle", []any{c1, pending}, map[string]string{"C1": "expected/"}},
		{"disbursement settles on a debit", []any{d1, booked("t2", "D1", recon.Debit, "100.00")}, map[string]string{"D1": "settled/"}},
		{"disbursement returned by a credit", []any{d1, booked("t2", "D1", recon.Debit, "100.00"), booked("t3", "D1", recon.Credit, "100.00")}, map[string]string{"D1": "returned/reversal"}},
		{"group reject", []any{c1, c2, c3, recon.StatusReport{MessageID: "S", OriginalMessageID: "M1", Status: "RJCT", Reason: "FF01", Level: "group"}},
			map[string]string{"C1": "rejected/FF01", "C2": "rejected/FF01", "C3": "rejected/FF01"}},
		{"payment-info reject", []any{c1, c2, c3, recon.StatusReport{MessageID: "S", OriginalMessageID: "M1", OriginalPaymentInfoID: "P1", Status: "RJCT", Reason: "AC04", Level: "payment_info"}},
			map[string]string{"C1": "rejected/AC04", "C2": "rejected/AC04", "C3": "expected/"}},
		{"transaction reject", []any{c1, c2, recon.StatusReport{MessageID: "S", OriginalEndToEndID: "C2", Status: "RJCT", Reason: "AM04", Level: "transaction"}},
			map[string]string{"C1": "expected/", "C2": "rejected/AM04"}},
		{"accepted is no change", []any{c1, recon.StatusReport{OriginalEndToEndID: "C1", Status: "ACSP", Level: "transaction"}}, map[string]string{"C1": "expected/"}},
		{"pacs.004 return after settlement", []any{c1, booked("t1", "C1", recon.Credit, "100.00"), recon.Return{ID: "R1", OriginalEndToEndID: "C1", ReasonCode: "MD06", ReturnedAmount: dec("100.00")}},
			map[string]string{"C1": "returned/MD06"}},
		{"camt return", []any{c1, booked("t1", "C1", recon.Credit, "100.00"), returned}, map[string]string{"C1": "returned/MD06"}},
		{"return before its item", []any{recon.Return{ID: "R1", OriginalEndToEndID: "C1", ReasonCode: "MS02"}, c1}, map[string]string{"C1": "returned/MS02"}},
		{"settlement before its item", []any{booked("t1", "C1", recon.Credit, "100.00"), c1}, map[string]string{"C1": "settled/"}},
		{"group reject before its items", []any{recon.StatusReport{OriginalMessageID: "M1", Status: "RJCT", Level: "group"}, c1, c2}, map[string]string{"C1": "rejected/RJCT", "C2": "rejected/RJCT"}},
		{"an echo does not regress", []any{c1, booked("t1", "C1", recon.Credit, "100.00"), c1}, map[string]string{"C1": "settled/"}},
		{"settled wins over a late reject", []any{c1, recon.StatusReport{OriginalEndToEndID: "C1", Status: "RJCT", Level: "transaction"}, booked("t1", "C1", recon.Credit, "100.00")},
			map[string]string{"C1": "settled/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every order of the records gives the same result.
			permute(tc.recs, func(recs []any) {
				tr := NewTracker()
				for _, r := range recs {
					tr.Observe(r)
				}
				for id, want := range tc.want {
					it, ok := tr.Get(id)
					if got := string(it.Status) + "/" + it.Reason; !ok || got != want {
						t.Errorf("order %v: %s is %q, want %q", names(recs), id, got, want)
					}
				}
			})
		})
	}
}

func TestTrackerChangesAndOverdue(t *testing.T) {
	tr := NewTracker()
	if ch := tr.Observe(item("C1", "M1", "P1", recon.Collection)); len(ch) != 0 {
		t.Fatalf("a new item is no change: %+v", ch)
	}
	tr.Observe(item("C2", "M1", "P1", recon.Collection))
	if ch := tr.Overdue("2026-12-06"); len(ch) != 0 {
		t.Fatalf("within the window: %+v", ch)
	}
	ch := tr.Observe(booked("t1", "C1", recon.Credit, "100.00"))
	if len(ch) != 1 || ch[0].Status != recon.ExpectedSettled || ch[0].SettledBy != "t1" || ch[0].StatusOn != "2026-12-01" {
		t.Fatalf("settlement change %+v", ch)
	}
	if ch := tr.Observe(booked("t1", "C1", recon.Credit, "100.00")); len(ch) != 0 {
		t.Fatalf("the same booking twice changes nothing: %+v", ch)
	}
	ch = tr.Overdue("2026-12-07")
	if len(ch) != 1 || ch[0].ID != "C2" || ch[0].Status != recon.ExpectedOverdue {
		t.Fatalf("overdue %+v", ch)
	}
	if ch := tr.Overdue("2026-12-08"); len(ch) != 0 {
		t.Fatalf("overdue is reported once: %+v", ch)
	}
	if ch := tr.Observe(booked("t2", "C2", recon.Credit, "100.00")); len(ch) != 1 || ch[0].Status != recon.ExpectedSettled {
		t.Fatalf("late settlement %+v", ch)
	}
}

func TestTrackerBounds(t *testing.T) {
	tr := NewTracker()
	tr.MaxPending, tr.MaxItems = 2, 10
	for _, id := range []string{"a", "b", "c"} {
		tr.Observe(recon.Return{ID: id, OriginalEndToEndID: id})
	}
	if tr.Dropped != 1 || tr.npending != 2 {
		t.Fatalf("pending %d dropped %d", tr.npending, tr.Dropped)
	}
	for i := 0; i < 20; i++ {
		it := item(string(rune('A'+i)), "M", "P", recon.Collection)
		it.Status = recon.ExpectedSettled
		tr.Observe(it)
	}
	if tr.Len() > 10 {
		t.Fatalf("%d items followed, MaxItems 10", tr.Len())
	}
}

func permute(recs []any, fn func([]any)) {
	var rec func(int)
	rec = func(k int) {
		if k == len(recs) {
			fn(append([]any(nil), recs...))
			return
		}
		for i := k; i < len(recs); i++ {
			recs[k], recs[i] = recs[i], recs[k]
			rec(k + 1)
			recs[k], recs[i] = recs[i], recs[k]
		}
	}
	rec(0)
}

func names(recs []any) []string {
	var out []string
	for _, r := range recs {
		switch v := r.(type) {
		case recon.Expected:
			out = append(out, "item:"+v.ID)
		case recon.BankTransaction:
			out = append(out, "txn:"+v.ID)
		case recon.StatusReport:
			out = append(out, "status:"+v.Status)
		case recon.Return:
			out = append(out, "return:"+v.ID)
		}
	}
	return out
}
