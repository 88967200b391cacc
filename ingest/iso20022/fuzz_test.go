package iso20022

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

// FuzzRead: no input panics, and when a file is read every entry's records
// sum, signed by direction, to the entry's amount.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>`))
	lim := DefaultLimits()
	lim.MaxFileBytes = 1 << 20
	f.Fuzz(func(t *testing.T, in []byte) {
		type bad struct{ want, got decimal.Decimal }
		var bads []bad
		prev := entryHook
		entryHook = func(want decimal.Decimal, _ string, _ recon.Status, recs []recon.BankTransaction) {
			if got := sum(recs); !got.Equal(want) {
				bads = append(bads, bad{want, got})
			}
			for _, r := range recs {
				if r.ID == "" || r.Amount.IsNegative() {
					t.Errorf("record without id or with negative amount: %+v", r)
				}
			}
		}
		defer func() { entryHook = prev }()
		_, _, err := ReadAll(bytes.NewReader(in), "fuzz", lim)
		if err == nil && len(bads) > 0 {
			t.Fatalf("entries whose records do not sum: %+v", bads)
		}
	})
}
