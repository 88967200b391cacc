package proofs

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }
func p(s string) *decimal.Decimal {
	v := d(s)
	return &v
}

var now = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func stmt(id string, date recon.Date, open, closing string, credits, debits string, entries int) recon.Statement {
	st := recon.Statement{Type: recon.TypeStatement, ID: id, Source: "camt.053.001.02", MessageID: "M-" + id,
		AccountIBAN: "DE89370400440532013000", ToDate: date, FromDate: date, Currency: "EUR",
		ClosingBalance: p(closing), BookedEntries: entries, BookedCredits: d(credits), BookedDebits: d(debits)}
	if open != "" {
		st.OpeningBalance = p(open)
	}
	return st
}

func TestBalanceAt(t *testing.T) {
	days := Days{"2026-11-01": d("5"), "2026-11-02": d("10"), "2026-11-03": d("-3"), "2026-11-05": d("100")}
	a := Anchor{Date: "2026-11-02", Balance: d("1000")}
	for _, tc := range []struct {
		at   recon.Date
		want string
	}{
		{"2026-11-02", "1010"},
		{"2026-11-03", "1007"},
		{"2026-11-04", "1007"},
		{"2026-11-05", "1107"},
		{"2026-11-01", "1000"}, // the day before the anchor: nothing after it counted
		{"2026-10-31", "995"},  // before 11-01's movement
	} {
		if got := days.BalanceAt(a, tc.at); !got.Equal(d(tc.want)) {
			t.Errorf("BalanceAt(%s) = %s, want %s", tc.at, got, tc.want)
		}
	}
}

func TestProve(t *testing.T) {
	anchor := &Anchor{Date: "2026-11-26", Balance: d("1000.00")}
	two := map[string]decimal.Decimal{"t1": d("100.00"), "t2": d("-30.00")}
	for _, tc := range []struct {
		name    string
		st      recon.Statement
		f       Facts
		final   bool
		decided bool
		status  string
		diff    string
		missing int
	}{
		{name: "all posted, balances agree", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100"), "t2": d("-30")}, Anchor: anchor, Days: Days{"2026-11-26": d("70")}},
			decided: true, status: recon.BreakOK, diff: "0"},
		{name: "closing off by one cent", st: stmt("S", "2026-11-26", "1000.00", "1070.01", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100"), "t2": d("-30")}, Anchor: anchor, Days: Days{"2026-11-26": d("70")}},
			decided: true, status: recon.BreakBroken, diff: "0.01"},
		{name: "ledger holds money the bank does not", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100"), "t2": d("-30")}, Anchor: anchor, Days: Days{"2026-11-26": d("70.01")}},
			decided: true, status: recon.BreakBroken, diff: "-0.01"},
		{name: "later dates do not count", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100"), "t2": d("-30")}, Anchor: anchor, Days: Days{"2026-11-26": d("70"), "2026-11-27": d("5")}},
			decided: true, status: recon.BreakOK, diff: "0"},
		{name: "posted at another amount (identity conflict)", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("90"), "t2": d("-30")}, Anchor: anchor, Days: Days{"2026-11-26": d("60")}},
			decided: true, status: recon.BreakBroken, diff: "10"},
		{name: "one not posted yet: wait", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100")}, Anchor: anchor, Days: Days{"2026-11-26": d("100")}},
			decided: false},
		{name: "one not posted after the timeout: incomplete", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:     Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100")}, Anchor: anchor, Days: Days{"2026-11-26": d("100")}},
			final: true, decided: true, status: recon.BreakIncomplete, diff: "-30", missing: 1},
		{name: "transactions not all read yet: wait", st: stmt("S", "2026-11-26", "1000.00", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: map[string]decimal.Decimal{"t1": d("100")}, Posted: map[string]decimal.Decimal{"t1": d("100")}, Anchor: anchor, Days: Days{"2026-11-26": d("100")}},
			decided: false},
		{name: "no anchor", st: stmt("S", "2026-11-26", "", "1070.00", "100.00", "30.00", 2),
			f:       Facts{Transactions: two, Posted: map[string]decimal.Decimal{"t1": d("100"), "t2": d("-30")}, Days: Days{"2026-11-26": d("70")}},
			decided: true, status: recon.BreakIncomplete, diff: "0"},
		{name: "empty statement", st: stmt("S", "2026-11-26", "1000.00", "1000.00", "0", "0", 0),
			f:       Facts{Anchor: anchor, Days: Days{}},
			decided: true, status: recon.BreakOK, diff: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := Prove(now, tc.st, tc.f, tc.final)
			if ok != tc.decided {
				t.Fatalf("decided = %v, want %v (%+v)", ok, tc.decided, b)
			}
			if !ok {
				return
			}
			if b.Status != tc.status || !b.Difference.Equal(d(tc.diff)) || b.Missing != tc.missing {
				t.Errorf("got status %s difference %s missing %d (%s), want %s %s %d", b.Status, b.Difference, b.Missing, b.Reason, tc.status, tc.diff, tc.missing)
			}
			if b.ID != "S/proof" || b.Type != recon.BreakProof || b.Date != "2026-11-26" {
				t.Errorf("identity: %+v", b)
			}
		})
	}
}

func TestChain(t *testing.T) {
	prev := &Mark{StatementID: "S1", Date: "2026-11-25", Closing: d("1000.00")}
	for _, tc := range []struct {
		name   string
		prev   *Mark
		st     recon.Statement
		status string // "" for no report
	}{
		{"first statement", nil, stmt("S2", "2026-11-26", "1000.00", "1000.00", "0", "0", 0), ""},
		{"chains", prev, stmt("S2", "2026-11-26", "1000.00", "1000.00", "0", "0", 0), recon.BreakOK},
		{"gap", prev, stmt("S2", "2026-11-26", "999.99", "999.99", "0", "0", 0), recon.BreakBroken},
		{"older statement", prev, stmt("S0", "2026-11-24", "5", "1000.00", "0", "0", 0), ""},
		{"no opening", prev, stmt("S2", "2026-11-26", "", "1000.00", "0", "0", 0), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Chain(now, tc.prev, tc.st)
			switch {
			case tc.status == "" && b != nil:
				t.Fatalf("got %+v, want nothing", b)
			case tc.status != "" && (b == nil || b.Status != tc.status):
				t.Fatalf("got %+v, want %s", b, tc.status)
			}
		})
	}
}

func entry(id, txn string, date recon.Date, side recon.Side, amount string) recon.Entry {
	other := recon.CreditSide
	if side == recon.CreditSide {
		other = recon.DebitSide
	}
	return recon.Entry{ID: id, TransactionID: txn, EffectiveDate: date, Postings: []recon.Posting{
		{Account: "bank:DE89370400440532013000", Side: side, Amount: d(amount), Currency: "EUR"},
		{Account: "suspense", Side: other, Amount: d(amount), Currency: "EUR"},
	}}
}

func txn(msg, id string, dir recon.Direction, amount string) recon.BankTransaction {
	return recon.BankTransaction{Type: recon.TypeTransaction, ID: id, Source: "camt.053.001.02", MessageID: msg,
		AccountIBAN: "DE89370400440532013000", Direction: dir, Amount: d(amount), Currency: "EUR", Status: recon.Booked}
}

// TestTracker feeds records in an unfriendly order: a statement before its
// transactions and entries, a second statement before the first completes,
// an entry read twice, and a replay after the proofs were published.
func TestTracker(t *testing.T) {
	tr := NewTracker(Limits{})
	s1 := stmt("S1", "2026-11-25", "1000.00", "1100.00", "100.00", "0", 1)
	s2 := stmt("S2", "2026-11-26", "1100.00", "1150.00", "50.00", "0", 1)
	pub := now.Add(-time.Minute)
	tr.Statement(s1, pub)
	tr.Statement(s2, pub)
	tr.Transaction(txn("M-S2", "b", recon.Credit, "50.00"))
	tr.Entry(entry("e-b", "b", "2026-11-26", recon.DebitSide, "50.00"))
	if out := tr.Evaluate(now, 10*time.Minute, time.Hour); len(out) != 0 {
		t.Fatalf("S2 must wait for S1: %+v", out)
	}
	tr.Transaction(txn("M-S1", "a", recon.Credit, "100.00"))
	tr.Entry(entry("e-a", "a", "2026-11-25", recon.DebitSide, "100.00"))
	tr.Entry(entry("e-a", "a", "2026-11-25", recon.DebitSide, "100.00")) // read twice
	out := tr.Evaluate(now, 10*time.Minute, time.Hour)
	if len(out) != 2 || out[0].ID != "S1/proof" || out[0].Status != recon.BreakOK || out[1].ID != "S2/proof" || out[1].Status != recon.BreakOK {
		t.Fatalf("got %+v, want S1 ok, S2 ok (a chain that holds is not published)", out)
	}
	for _, b := range out {
		tr.Emitted(b)
	}
	// an incomplete statement whose last transaction posts after the timeout
	s3 := stmt("S3", "2026-11-27", "1150.00", "1130.00", "0", "20.00", 1)
	tr.Statement(s3, pub)
	tr.Transaction(txn("M-S3", "c", recon.Debit, "20.00"))
	out = tr.Evaluate(now.Add(10*time.Minute), 10*time.Minute, time.Hour)
	if len(out) != 1 || out[0].Status != recon.BreakIncomplete || out[0].Missing != 1 {
		t.Fatalf("got %+v, want S3 incomplete", out)
	}
	tr.Emitted(out[0])
	if out = tr.Evaluate(now.Add(11*time.Minute), 10*time.Minute, time.Hour); len(out) != 0 {
		t.Fatalf("incomplete emitted twice: %+v", out)
	}
	tr.Entry(entry("e-c", "c", "2026-11-27", recon.CreditSide, "20.00"))
	out = tr.Evaluate(now.Add(12*time.Minute), 10*time.Minute, time.Hour)
	if len(out) != 1 || out[0].Status != recon.BreakOK || out[0].ID != "S3/proof" {
		t.Fatalf("got %+v, want S3 ok", out)
	}
	if tr.Pending() != 0 || len(tr.msgs) != 0 {
		t.Fatalf("pending %d, messages %d: want none", tr.Pending(), len(tr.msgs))
	}

	// a restart: the published proofs are read back first, nothing is
	// published again even though no entry is replayed
	re := NewTracker(Limits{})
	for _, b := range []recon.Break{{ID: "S1/proof", Status: "ok"}, {ID: "S2/proof", Status: "ok"}, {ID: "S3/proof", Status: "ok"}} {
		re.Emitted(b)
	}
	for _, st := range []recon.Statement{s1, s2, s3} {
		re.Statement(st, pub)
	}
	if out := re.Evaluate(now, 10*time.Minute, time.Hour); len(out) != 0 || re.Pending() != 0 {
		t.Fatalf("replay published %+v", out)
	}
	// and the chain goes on from S3
	s4 := stmt("S4", "2026-11-28", "1130.01", "1130.01", "0", "0", 0)
	re.Statement(s4, pub)
	out = re.Evaluate(now, 10*time.Minute, time.Hour)
	if len(out) != 2 || out[0].Type != recon.BreakChain || out[0].Status != recon.BreakBroken || out[1].Status != recon.BreakBroken {
		t.Fatalf("got %+v, want S4 chain break and proof break", out)
	}
}

func TestTrackerLimits(t *testing.T) {
	tr := NewTracker(Limits{MaxPending: 2, MaxPosted: 2, MaxTransactions: 2})
	for i, id := range []string{"a", "b", "c"} {
		tr.Entry(entry("e-"+id, id, "2026-11-25", recon.DebitSide, "1"))
		tr.Transaction(txn("M"+id, id, recon.Credit, "1"))
		tr.Statement(stmt("S"+id, recon.Date("2026-11-2"+string(rune('5'+i))), "0", "1", "1", "0", 1), now)
	}
	if len(tr.posted) != 2 || tr.Pending() != 2 || tr.nTxns > 2 || tr.Dropped != 3 {
		t.Fatalf("posted %d pending %d transactions %d dropped %d", len(tr.posted), tr.Pending(), tr.nTxns, tr.Dropped)
	}
}
