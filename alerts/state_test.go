package alerts

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconhq/recon"
)

// TestDispatcherDeadLetters: a delivery given up — retries exhausted, or
// the endpoint answered 410 Gone — becomes a recon.DeadLetter with the
// reason, the endpoint and the alert id, and the webhook body as raw
// bytes; its state record says dead. Nothing else is a dead letter.
func TestDispatcherDeadLetters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		delivery DeliveryConfig
		status   int
		reason   string // in the dead letter's reason
		dead     bool
	}{
		{"retries exhausted", DeliveryConfig{MaxAttempts: 3}, http.StatusInternalServerError, "gave up after 3 attempts", true},
		{"gone", DeliveryConfig{}, http.StatusGone, "410 Gone", true},
		{"delivered", DeliveryConfig{}, http.StatusOK, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, tc.delivery, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) })
				defer h.stop()
				a := testAlert(1)
				if err := h.d.Enqueue(a); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 24*time.Hour, finished(h.d, a.ID))
				recs, dead := h.d.changes()
				if !tc.dead {
					if len(dead) != 0 {
						t.Fatalf("dead letters %+v for a delivered alert", dead)
					}
					return
				}
				if len(dead) != 1 {
					t.Fatalf("%d dead letters, want 1", len(dead))
				}
				dl := dead[0]
				if dl.Source != DeadLetterSource || !strings.Contains(dl.Reason, tc.reason) ||
					!strings.Contains(dl.Where, "endpoint ops") || !strings.Contains(dl.Where, "alert "+a.ID) ||
					!strings.Contains(dl.ID, a.ID) || dl.At.IsZero() {
					t.Errorf("dead letter %+v", dl)
				}
				var body struct {
					Data struct {
						Alert string `json:"alert"`
					} `json:"data"`
				}
				if err := json.Unmarshal(dl.Raw, &body); err != nil || body.Data.Alert != a.ID {
					t.Errorf("raw %s: %v", dl.Raw, err)
				}
				byKey := map[string][]byte{}
				for _, r := range recs {
					byKey[r.Key] = r.Value
				}
				var st Delivery
				if err := json.Unmarshal(byKey[deliveryStateKey(a.ID, "ops")], &st); err != nil || st.State != DeliveryDead || st.Reason != dl.Reason {
					t.Errorf("state records %q: %v", byKey, err)
				}
				if _, ok := byKey[keyGone+"ops"]; ok != (tc.status == http.StatusGone) {
					t.Errorf("state records %q: a disabled endpoint is kept if and only if it answered 410", byKey)
				}
				if _, again := h.d.changes(); len(again) != 0 {
					t.Errorf("dead letters returned twice: %+v", again)
				}
			})
		})
	}
}

// TestEngineChangesRestore: the keys Changes returns, read back by
// RestoreState into a new service, give an engine that does not re-fire
// and numbers its next edge on; only what changed is returned, a paid
// instalment is a tombstone, and keys of rules no longer configured are
// reported stale.
func TestEngineChangesRestore(t *testing.T) {
	rules := []Rule{
		{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "100"},
		{Name: "big", Kind: LargeCredit, Currency: "EUR", Threshold: "1000"},
		{Name: "due", Kind: InstalmentOverdue},
	}
	s, err := New(Config{Rules: rules}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	observe := func(s *Service, at time.Time, ev Event) []recon.Alert {
		t.Helper()
		as, err := s.Observe(at, ev)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	state := map[string][]byte{}
	apply := func() []StateRecord {
		recs, _ := s.Changes()
		for _, r := range recs {
			if r.Value == nil {
				delete(state, r.Key)
			} else {
				state[r.Key] = r.Value
			}
		}
		return recs
	}
	apply()
	observe(s, t0, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("50")})
	observe(s, t0, TransactionSeen{ID: "T1", Direction: recon.Credit, Amount: dec("5000"), Currency: "EUR"})
	observe(s, t0, InstalmentStatus{LoanID: "L1", DueDate: "2026-01-01", Outstanding: dec("10"), Currency: "EUR"})
	observe(s, t0, InstalmentStatus{LoanID: "L2", DueDate: "2026-01-01", Outstanding: dec("10"), Currency: "EUR"})
	apply()
	observe(s, t0, InstalmentStatus{LoanID: "L2", DueDate: "2026-01-01", Outstanding: dec("0"), Currency: "EUR"})
	recs := apply()
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.Key)
		if r.Key == "unpaid/due/L2/2026-01-01" && r.Value != nil {
			t.Errorf("paid instalment written %s, want a tombstone", r.Value)
		}
	}
	if want := []string{"edge/due/L2/2026-01-01", "unpaid/due/L2/2026-01-01", "recent/4"}; strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("changed keys %q, want %q", keys, want)
	}
	if recs := apply(); len(recs) != 0 {
		t.Errorf("nothing changed, yet %d records", len(recs))
	}
	state["rule/gone-rule"] = []byte(`{}`)

	s2, _ := New(Config{Rules: rules}, Options{})
	stale, err := s2.RestoreState(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0] != "rule/gone-rule" {
		t.Errorf("stale keys %q", stale)
	}
	at := t0.Add(time.Minute)
	for _, ev := range []Event{
		BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("40")},
		TransactionSeen{ID: "T1", Direction: recon.Credit, Amount: dec("5000"), Currency: "EUR"},
		InstalmentStatus{LoanID: "L1", DueDate: "2026-01-01", Outstanding: dec("10"), Currency: "EUR"},
	} {
		if as := observe(s2, at, ev); len(as) != 0 {
			t.Errorf("re-fired after restore: %+v", as)
		}
	}
	if as := observe(s2, at, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("500")}); len(as) != 1 || as[0].ID != alertID("low", "bank:X", 2) {
		t.Errorf("resolve after restore: %+v", as)
	}
	if got := len(s2.Recent()); got != 6 { // low, big, due L1 and L2 firing, L2 resolved; low resolved
		t.Errorf("%d recent alerts, want 6", got)
	}
	if recs, _ := s2.Changes(); len(recs) != 2 { // the resolved edge and its recent slot, nothing restored
		t.Errorf("changes after restore: %+v", recs)
	}
}
