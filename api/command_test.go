package api

import (
	"encoding/json"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
)

// The suspense commands the API publishes are read by the matcher as
// routed records: each decodes to the record the API wrote before it
// stopped importing package matcher.
func TestSuspenseCommandsAreRoutedRecords(t *testing.T) {
	allocs := []recon.Allocation{{LoanID: "L1", Amount: decimal.RequireFromString("10.50")}, {LoanID: "L2", Amount: decimal.RequireFromString("1")}}
	for _, c := range []struct {
		name string
		cmd  recon.SuspenseCommand
		want matcher.Routed
	}{
		{"assign",
			recon.SuspenseCommand{Kind: recon.SuspenseAssign, Key: schemas.SuspenseKey, Transaction: recon.BankTransaction{ID: "bt_1"}, ItemID: "bt_1",
				Rule: recon.RuleManual, Allocations: allocs, Note: "n", Actor: "token:ops"},
			matcher.Routed{Kind: matcher.KindAssign, Key: schemas.SuspenseKey, Transaction: recon.BankTransaction{ID: "bt_1"}, ItemID: "bt_1",
				Rule: matcher.RuleManual, Allocations: []matcher.Allocation{{LoanID: "L1", Amount: allocs[0].Amount}, {LoanID: "L2", Amount: allocs[1].Amount}},
				Note: "n", Actor: "token:ops"}},
		{"dismiss",
			recon.SuspenseCommand{Kind: recon.SuspenseDismiss, Key: schemas.SuspenseKey, ItemID: "cf_1", Rule: recon.RuleManual, Note: "n", Actor: "api"},
			matcher.Routed{Kind: matcher.KindDismiss, Key: schemas.SuspenseKey, ItemID: "cf_1", Rule: matcher.RuleManual, Note: "n", Actor: "api"}},
		{"unassign",
			recon.SuspenseCommand{Kind: recon.SuspenseUnassign, Key: schemas.BorrowerKey("B1"), LoanID: "L1", Transaction: recon.BankTransaction{ID: "bt_1"},
				Rule: recon.RuleManualUnassign, Note: "n", Actor: "api"},
			matcher.Routed{Kind: matcher.KindUnassign, Key: matcher.BorrowerKey("B1"), LoanID: "L1", Transaction: recon.BankTransaction{ID: "bt_1"},
				Rule: matcher.RuleManualUnassign, Note: "n", Actor: "api"}},
	} {
		b, _ := json.Marshal(c.cmd)
		var got matcher.Routed
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(c.want)
		if string(g) != string(w) {
			t.Errorf("%s: the matcher reads\n%s\nwant\n%s", c.name, g, w)
		}
	}
}
