package alerts

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

var t0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC) // a Monday, 07:00 in Berlin

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
func decp(s string) *decimal.Decimal {
	d := dec(s)
	return &d
}

// step is one event (nil: Tick) at t0+at, and the edges it must give as
// "state subject" joined by ", ".
type step struct {
	at   time.Duration
	ev   Event
	want string
}

func engineFor(t *testing.T, r Rule) *Engine {
	t.Helper()
	e, err := NewEngine(Config{Rules: []Rule{r}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func run(t *testing.T, e *Engine, steps []step) []recon.Alert {
	t.Helper()
	var all []recon.Alert
	for i, s := range steps {
		var got []recon.Alert
		if s.ev == nil {
			got = e.Tick(t0.Add(s.at))
		} else {
			got = e.Observe(t0.Add(s.at), s.ev)
		}
		var parts []string
		for _, a := range got {
			parts = append(parts, a.State+" "+a.Subject)
		}
		if g := strings.Join(parts, ", "); g != s.want {
			t.Errorf("step %d (%T at +%s): got %q, want %q", i, s.ev, s.at, g, s.want)
		}
		all = append(all, got...)
	}
	return all
}

func TestEngineKinds(t *testing.T) {
	const acct = "bank:DE89370400440532013000"
	bal := func(s string) Event { return BalanceChanged{Account: acct, Currency: "EUR", Balance: dec(s)} }
	credit := func(id, amt string) Event {
		return TransactionSeen{ID: id, Direction: recon.Credit, Amount: dec(amt), Currency: "EUR"}
	}
	susp := func(total string, oldest time.Time) Event {
		return SuspenseState{Total: dec(total), Currency: "EUR", Count: 1, Oldest: oldest}
	}
	coll, ret := DirectDebitSeen{ID: "c"}, DirectDebitSeen{ID: "r", Return: true}
	stmt := func(date recon.Date, check string, open, close string) Event {
		return StatementReceived{Account: "DE89", Date: date, Currency: "EUR", Check: check, Opening: decp(open), Closing: decp(close)}
	}
	inst := func(due recon.Date, out string) Event {
		return InstalmentStatus{LoanID: "L1", DueDate: due, Outstanding: dec(out), Currency: "EUR"}
	}
	exp := func(id, loan, amount, currency string, status recon.ExpectedStatus) Event {
		return ExpectedChanged{Expected: recon.Expected{Type: "expected", ID: id, Kind: recon.Collection, LoanID: loan,
			Amount: dec(amount), Currency: currency, RequestedDate: "2026-03-02", WindowDays: 5, Status: status}}
	}
	h := time.Hour
	tests := []struct {
		name  string
		rule  Rule
		steps []step
	}{
		{"balance_below with hysteresis",
			Rule{Name: "low", Kind: BalanceBelow, Account: acct, Currency: "EUR", Threshold: "1000", Hysteresis: "100"},
			[]step{
				{0, bal("1500"), ""},
				{1, bal("999.99"), "firing " + acct},
				{2, bal("500"), ""},  // still below: no second edge
				{3, bal("1050"), ""}, // above X but within hysteresis
				{4, bal("990"), ""},  // back below: still the same firing
				{5, bal("1100"), "resolved " + acct},
				{6, bal("1099"), ""}, // between X and X+h: stays resolved
				{7, bal("999"), "firing " + acct},
				{8, BalanceChanged{Account: "other", Currency: "EUR", Balance: dec("1")}, ""},
				{9, BalanceChanged{Account: acct, Currency: "USD", Balance: dec("1")}, ""},
			}},
		{"balance_above (loan overpaid)",
			Rule{Name: "high", Kind: BalanceAbove, Account: acct, Currency: "EUR", Threshold: "0", Hysteresis: "0"},
			[]step{{0, bal("0"), ""}, {1, bal("0.01"), "firing " + acct}, {2, bal("0"), "resolved " + acct}}},
		{"large_credit once per transaction",
			Rule{Name: "big", Kind: LargeCredit, Currency: "EUR", Threshold: "10000"},
			[]step{
				{0, credit("t1", "9999.99"), ""},
				{1, credit("t2", "10000"), "firing t2"},
				{2, credit("t2", "10000"), ""}, // another sighting of the same money
				{3, TransactionSeen{ID: "t3", Direction: recon.Debit, Amount: dec("50000"), Currency: "EUR"}, ""},
				{4, TransactionSeen{ID: "t4", Direction: recon.Credit, Amount: dec("50000"), Currency: "USD"}, ""},
			}},
		{"suspense_amount with hysteresis",
			Rule{Name: "susp", Kind: SuspenseAmount, Currency: "EUR", Threshold: "5000", Hysteresis: "1000"},
			[]step{
				{0, susp("4999", t0), ""}, {1, susp("5000", t0), "firing suspense"},
				{2, susp("4500", t0), ""}, {3, susp("3999.99", t0), "resolved suspense"},
			}},
		{"suspense_age by tick",
			Rule{Name: "age", Kind: SuspenseAge, Age: Duration(48 * h)},
			[]step{
				{0, susp("10", t0), ""},
				{47 * h, nil, ""},
				{48 * h, nil, "firing suspense"},
				{49 * h, nil, ""},
				{50 * h, susp("5", t0.Add(49*h)), "resolved suspense"}, // the old item left
				{60 * h, susp("0", time.Time{}), ""},
				{200 * h, nil, ""},
			}},
		{"return_rate over a window",
			Rule{Name: "rr", Kind: ReturnRate, Threshold: "20", Window: Duration(10 * time.Hour), MinCount: 5, Hysteresis: "5"},
			[]step{
				{0, coll, ""}, {1, coll, ""}, {2, coll, ""}, {3, coll, ""},
				{4, ret, ""},                        // 1 of 4: below min_count
				{5, coll, "firing direct-debits"},   // 1 of 5 = 20%
				{6, coll, ""},                       // 1 of 6 = 16.7%: above 20-5
				{7, coll, "resolved direct-debits"}, // 1 of 7 = 14.3%: under 15%
				{8, ret, "firing direct-debits"},    // 2 of 7
				{9, nil, ""},
				{15 * h, nil, "resolved direct-debits"}, // window emptied
			}},
		{"statement_missing by time of day (Berlin)",
			Rule{Name: "stmt", Kind: StatementMissing, Account: "DE89", At: "09:00", Timezone: "Europe/Berlin"},
			[]step{
				{0, stmt("2026-02-27", "ok", "0", "0"), "firing DE89"}, // Monday 07:00 Berlin: 02-28's was due 03-01 09:00
				{0, nil, ""},
				{1 * h, stmt("2026-03-01", "ok", "0", "0"), "resolved DE89"},
				{2 * h, nil, ""},             // 09:00 Berlin on 03-02: 03-01 expected, present
				{26 * h, nil, "firing DE89"}, // 09:00 on 03-03: 03-02 missing
				{27 * h, stmt("2026-03-02", "ok", "0", "0"), "resolved DE89"},
			}},
		{"statement_break: mismatch and chain",
			Rule{Name: "brk", Kind: StatementBreak},
			[]step{
				{0, stmt("2026-03-01", "ok", "100", "200"), ""},
				{1, stmt("2026-03-02", "ok", "200", "250"), ""},
				{2, stmt("2026-03-03", "ok", "240", "300"), "firing DE89"}, // opens 240, previous closed 250
				{3, stmt("2026-03-03", "ok", "240", "300"), ""},            // replay of the same statement
				{4, stmt("2026-03-04", "ok", "300", "310"), "resolved DE89"},
				{5, stmt("2026-03-05", "mismatch", "310", "999"), "firing DE89"},
				{6, stmt("2026-03-01", "ok", "100", "200"), ""}, // older replay: ignored
				{7, stmt("2026-03-06", "ok", "999", "1000"), "resolved DE89"},
			}},
		{"expected_overdue once per item, only when overdue",
			Rule{Name: "late", Kind: ExpectedOverdue},
			[]step{
				{0, exp("E1", "L1", "250.00", "EUR", recon.ExpectedOpen), ""},
				{1, exp("E2", "L1", "250.00", "EUR", recon.ExpectedSettled), ""},
				{2, exp("E3", "L2", "250.00", "EUR", recon.ExpectedRejected), ""},
				{3, exp("E4", "L2", "250.00", "EUR", recon.ExpectedReturned), ""},
				{4 * 24 * h, nil, ""}, // the tracker decides when, not a tick
				{6 * 24 * h, exp("E1", "L1", "250.00", "EUR", recon.ExpectedOverdue), "firing E1"},
				{6*24*h + 1, exp("E1", "L1", "250.00", "EUR", recon.ExpectedOverdue), ""}, // redelivered
				{7 * 24 * h, exp("E1", "L1", "250.00", "EUR", recon.ExpectedSettled), ""}, // settled late: no edge
				{7*24*h + 1, exp("E1", "L1", "250.00", "EUR", recon.ExpectedOverdue), ""}, // stale redelivery
				{8 * 24 * h, exp("E1", "L1", "250.00", "EUR", recon.ExpectedReturned), ""},
				{8*24*h + 1, exp("E5", "L2", "80", "EUR", recon.ExpectedOverdue), "firing E5"},
				{8*24*h + 2, exp("", "L2", "80", "EUR", recon.ExpectedOverdue), ""}, // no id: nothing to key on
				{8*24*h + 3, exp(strings.Repeat("x", maxSubjectBytes+1), "L2", "80", "EUR", recon.ExpectedOverdue), ""},
				{8*24*h + 4, credit("E6", "1000000"), ""}, // other events: not this rule's
			}},
		{"expected_overdue filters: currency, min amount, loan",
			Rule{Name: "late-big", Kind: ExpectedOverdue, Currency: "EUR", Threshold: "1000", Subject: "L1"},
			[]step{
				{0, exp("E1", "L1", "999.99", "EUR", recon.ExpectedOverdue), ""},
				{1, exp("E2", "L1", "5000", "USD", recon.ExpectedOverdue), ""},
				{2, exp("E3", "L2", "5000", "EUR", recon.ExpectedOverdue), ""},
				{3, exp("E4", "L1", "1000.00", "EUR", recon.ExpectedOverdue), "firing E4"},
			}},
		{"instalment_overdue N days after due",
			Rule{Name: "due", Kind: InstalmentOverdue, Days: 3},
			[]step{
				{0, inst("2026-03-01", "250.00"), ""},
				{2 * 24 * h, nil, ""},                       // 03-04 06:00
				{3 * 24 * h, nil, ""},                       // 03-05 06:00: 3 days after due have passed at 03-05 00:00
				{3*24*h + 1, inst("2026-03-01", "100"), ""}, // partly paid: still firing
				{4 * 24 * h, inst("2026-03-01", "0"), "resolved L1/2026-03-01"},
				{5 * 24 * h, inst("2026-03-01", "250"), "firing L1/2026-03-01"}, // the collection came back
				{6 * 24 * h, nil, ""},
			}},
	}
	// the instalment case: the firing happens at the 3-day tick; fix expectations
	tests[len(tests)-1].steps[2].want = "firing L1/2026-03-01"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := engineFor(t, tt.rule)
			all := run(t, e, tt.steps)
			// replays give the same ids
			again := run(t, engineFor(t, tt.rule), tt.steps)
			for i := range all {
				if all[i].ID != again[i].ID {
					t.Errorf("replay id %d: %s != %s", i, all[i].ID, again[i].ID)
				}
			}
			seen := map[string]bool{}
			for _, a := range all {
				if seen[a.ID] {
					t.Errorf("id %s used twice", a.ID)
				}
				seen[a.ID] = true
				if a.Rule != tt.rule.Name || a.Kind != string(tt.rule.Kind) || a.At.IsZero() || a.Message == "" {
					t.Errorf("incomplete alert %+v", a)
				}
			}
		})
	}
}

func TestEngineAlertFields(t *testing.T) {
	e := engineFor(t, Rule{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "1000.00", Hysteresis: "1"})
	got := e.Observe(t0, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("12.34")})
	if len(got) != 1 {
		t.Fatalf("got %d alerts", len(got))
	}
	a := got[0]
	if !a.Value.Equal(dec("12.34")) || !a.Threshold.Equal(dec("1000")) || a.Currency != "EUR" || !a.At.Equal(t0) {
		t.Errorf("alert %+v", a)
	}
	if a.ID != alertID("low", "bank:X", 1) || strings.Contains(a.ID, "bank:X") {
		t.Errorf("id %q: want deterministic and free of the account", a.ID)
	}
	got = e.Observe(t0, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("2000")})
	if len(got) != 1 || got[0].ID != alertID("low", "bank:X", 2) || got[0].State != StateResolved {
		t.Errorf("resolve: %+v", got)
	}
}

// TestEngineRestoreNoRefire: state persisted while firing, restored into a
// new engine: the same condition does not fire again, and the next edge
// continues the sequence.
func TestEngineRestoreNoRefire(t *testing.T) {
	rules := []Rule{
		{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "100"},
		{Name: "age", Kind: SuspenseAge, Age: Duration(time.Hour)},
		{Name: "big", Kind: LargeCredit, Currency: "EUR", Threshold: "10"},
		{Name: "due", Kind: InstalmentOverdue},
		{Name: "rr", Kind: ReturnRate, Threshold: "50", Window: Duration(time.Hour), MinCount: 1},
		{Name: "late", Kind: ExpectedOverdue},
	}
	e, err := NewEngine(Config{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	events := []Event{
		BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("5")},
		SuspenseState{Total: dec("1"), Currency: "EUR", Oldest: t0.Add(-2 * time.Hour)},
		TransactionSeen{ID: "t1", Direction: recon.Credit, Amount: dec("11"), Currency: "EUR"},
		InstalmentStatus{LoanID: "L", DueDate: "2026-01-01", Outstanding: dec("5"), Currency: "EUR"},
		DirectDebitSeen{ID: "c1"}, DirectDebitSeen{ID: "r1", Return: true},
		ExpectedChanged{Expected: recon.Expected{ID: "E1", LoanID: "L", Amount: dec("5"), Currency: "EUR", Status: recon.ExpectedOverdue}},
	}
	n := 0
	for _, ev := range events {
		n += len(e.Observe(t0, ev))
	}
	n += len(e.Tick(t0))
	if n != 6 {
		t.Fatalf("first run: %d alerts, want 6", n)
	}
	state := e.State()

	e2, _ := NewEngine(Config{Rules: rules})
	if err := e2.Restore(state); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events { // a replay after the restart
		if got := e2.Observe(t0.Add(time.Minute), ev); len(got) != 0 {
			t.Errorf("re-fired after restore: %+v", got)
		}
	}
	if got := e2.Tick(t0.Add(time.Minute)); len(got) != 0 {
		t.Errorf("tick re-fired after restore: %+v", got)
	}
	got := e2.Observe(t0.Add(2*time.Minute), BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("500")})
	if len(got) != 1 || got[0].ID != alertID("low", "bank:X", 2) {
		t.Errorf("resolve after restore: %+v", got)
	}
	if err := e2.Restore([]byte(`{"version":7}`)); err == nil {
		t.Error("restore of an unknown version succeeded")
	}
}

func ExampleEngine() {
	e, _ := NewEngine(Config{Rules: []Rule{{Name: "low-balance", Kind: BalanceBelow,
		Account: "bank:main", Currency: "EUR", Threshold: "1000", Hysteresis: "100"}}})
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range []string{"1200", "900", "1050", "1100"} {
		for _, a := range e.Observe(at, BalanceChanged{Account: "bank:main", Currency: "EUR", Balance: decimal.RequireFromString(b)}) {
			fmt.Println(b, a.State, a.ID)
		}
	}
	// Output:
	// 900 firing low-balance-a4ba009a6a01-1
	// 1100 resolved low-balance-a4ba009a6a01-2
}

func TestReturnRateValue(t *testing.T) {
	e := engineFor(t, Rule{Name: "rr", Kind: ReturnRate, Threshold: "10", Window: Duration(time.Hour), MinCount: 3})
	var got []recon.Alert
	for i, ret := range []bool{false, false, false, true} {
		got = append(got, e.Observe(t0.Add(time.Duration(i)*time.Second), DirectDebitSeen{Return: ret})...)
	}
	if len(got) != 1 || !got[0].Value.Equal(dec("33.33")) || !got[0].Threshold.Equal(dec("10")) {
		t.Fatalf("alerts %+v, want one firing at 33.33%%", got)
	}
}

// TestEngineExpectedOverdueAlert: what an expected_overdue alert carries,
// on the wire too (amounts as strings), and that its id depends only on
// the rule and the item.
func TestEngineExpectedOverdueAlert(t *testing.T) {
	x := recon.Expected{Type: "expected", ID: "E2E-2026-03-0001", Kind: recon.Disbursement, LoanID: "L-7",
		Amount: dec("12500.50"), Currency: "EUR", RequestedDate: "2026-03-02", WindowDays: 2, Status: recon.ExpectedOverdue,
		Reason: "no settlement 2 days after the requested date 2026-03-02", StatusOn: "2026-03-05"}
	e := engineFor(t, Rule{Name: "late", Kind: ExpectedOverdue})
	got := e.Observe(t0, ExpectedChanged{Expected: x})
	if len(got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(got))
	}
	a := got[0]
	if a.ID != alertID("late", x.ID, 1) || strings.Contains(a.ID, x.ID) {
		t.Errorf("id %q: want alertID(rule, end-to-end id, 1), free of the id itself", a.ID)
	}
	if a.State != StateFiring || a.Kind != "expected_overdue" || a.Subject != x.ID || !a.Value.Equal(x.Amount) ||
		!a.Threshold.IsZero() || a.Currency != "EUR" || !a.At.Equal(t0) {
		t.Errorf("alert %+v", a)
	}
	for _, w := range []string{"disbursement", x.ID, "L-7", "12500.5 EUR", "2026-03-02", "2 days"} {
		if !strings.Contains(a.Message, w) {
			t.Errorf("message %q does not contain %q", a.Message, w)
		}
	}
	if p := a.Expected; p == nil || p.ID != x.ID || p.LoanID != x.LoanID || p.Kind != x.Kind || !p.Amount.Equal(x.Amount) ||
		p.Currency != x.Currency || p.RequestedDate != x.RequestedDate || p.Status != x.Status {
		t.Errorf("alert carries %+v, want the record %+v", a.Expected, x)
	}

	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		Value    json.RawMessage `json:"value"`
		Expected map[string]any  `json:"expected"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	if string(wire.Value) != `"12500.5"` {
		t.Errorf("value on the wire %s, want a decimal string", wire.Value)
	}
	want := map[string]any{"id": x.ID, "loan_id": "L-7", "kind": "disbursement", "amount": "12500.5",
		"currency": "EUR", "requested_date": "2026-03-02", "status": "overdue"}
	for k, v := range want {
		if wire.Expected[k] != v {
			t.Errorf("expected.%s = %#v, want %#v", k, wire.Expected[k], v)
		}
	}

	// another engine (a replay) gives the same id; other kinds carry no record
	if again := engineFor(t, Rule{Name: "late", Kind: ExpectedOverdue}).Observe(t0.Add(time.Hour), ExpectedChanged{Expected: x}); len(again) != 1 || again[0].ID != a.ID {
		t.Errorf("replay: %+v, want the same id %s", again, a.ID)
	}
	if b, _ := json.Marshal(recon.Alert{ID: "x"}); strings.Contains(string(b), "expected") {
		t.Errorf("an alert of another kind marshals %s", b)
	}
}

// TestEngineExpectedOverdueRing: once more items fired than the rule
// remembers, a redelivery of the oldest fires again, with the same id (the
// dispatcher and the alerts topic deduplicate by id).
func TestEngineExpectedOverdueRing(t *testing.T) {
	e := engineFor(t, Rule{Name: "late", Kind: ExpectedOverdue})
	item := func(i int) Event {
		return ExpectedChanged{Expected: recon.Expected{ID: fmt.Sprintf("E%d", i), Amount: dec("1"), Currency: "EUR", Status: recon.ExpectedOverdue}}
	}
	first := e.Observe(t0, item(0))
	for i := 1; i <= maxSeen; i++ {
		if got := e.Observe(t0, item(i)); len(got) != 1 {
			t.Fatalf("item %d: %d alerts", i, len(got))
		}
	}
	if got := e.Observe(t0, item(maxSeen)); len(got) != 0 {
		t.Errorf("the newest item fired twice")
	}
	again := e.Observe(t0, item(0))
	if len(first) != 1 || len(again) != 1 || again[0].ID != first[0].ID {
		t.Errorf("oldest item past the ring: %+v then %+v, want the same id", first, again)
	}
}
