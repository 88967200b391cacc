package cfonb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// FuzzRead: no input panics; a file read gives records with an identity
// key and a non-negative amount, within the limits, and statements whose
// booked sums are their records' and whose balance_check is the arithmetic
// of their balances.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	lim := Limits{MaxFileBytes: 1 << 20, MaxStatements: 10, MaxMovements: 30, MaxComplements: 5, MaxBlankLines: 5}
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, sum, err := ReadAll(bytes.NewReader(in), "fuzz", lim)
		if err != nil {
			return
		}
		if sum.Statements > lim.MaxStatements || sum.Entries > lim.MaxMovements {
			t.Fatalf("limits crossed: %+v", sum)
		}
		var credits, debits decimal.Decimal
		for _, r := range recs {
			switch v := r.(type) {
			case recon.BankTransaction:
				if v.ID == "" || v.Amount.IsNegative() {
					t.Fatalf("bad record %+v", v)
				}
				if v.Direction == recon.Credit {
					credits = credits.Add(v.Amount)
				} else {
					debits = debits.Add(v.Amount)
				}
			case recon.Statement:
				ok := v.OpeningBalance.Add(credits).Sub(debits).Equal(*v.ClosingBalance)
				if !v.BookedCredits.Equal(credits) || !v.BookedDebits.Equal(debits) || ok != (v.BalanceCheck == "ok") {
					t.Fatalf("statement %+v, records %s/%s", v, credits, debits)
				}
				credits, debits = decimal.Zero, decimal.Zero
			}
		}
	})
}
