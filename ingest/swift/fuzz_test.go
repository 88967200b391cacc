package swift

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
// booked sums are their records' sums and whose balance_check is the
// arithmetic of their balances.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.sta")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(":20:R\n:25:X\n:28C:1\n:60F:C260101EUR1,\n:61:260101RD1,NTRF//B\n:86:?20EREF+X\n:62F:C260101EUR2,\n-\n"))
	lim := Limits{MaxFileBytes: 1 << 20, MaxLineBytes: 200, MaxFieldLines: 8, MaxFieldBytes: 512, MaxStatements: 20, MaxEntries: 50, MaxPreambleLines: 4}
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, sum, err := ReadAll(bytes.NewReader(in), "fuzz", lim)
		if err != nil {
			return
		}
		if sum.Statements > lim.MaxStatements || sum.Entries > lim.MaxEntries {
			t.Fatalf("limits crossed: %+v", sum)
		}
		var credits, debits decimal.Decimal
		n := 0
		for _, r := range recs {
			switch v := r.(type) {
			case recon.BankTransaction:
				if v.ID == "" || v.Amount.IsNegative() || v.MessageID == "" {
					t.Fatalf("bad record %+v", v)
				}
				if v.Direction == recon.Credit {
					credits = credits.Add(v.Amount)
				} else {
					debits = debits.Add(v.Amount)
				}
				n++
			case recon.Statement:
				if !v.BookedCredits.Equal(credits) || !v.BookedDebits.Equal(debits) || v.BookedEntries != n {
					t.Fatalf("statement %s sums %s/%s over %d, records %s/%s over %d", v.ID, v.BookedCredits, v.BookedDebits, v.BookedEntries, credits, debits, n)
				}
				if v.OpeningBalance != nil && v.ClosingBalance != nil && v.BalanceCheck == "ok" &&
					!v.OpeningBalance.Add(credits).Sub(debits).Equal(*v.ClosingBalance) {
					t.Fatalf("statement %s: balance_check ok but the balances do not add up", v.ID)
				}
				credits, debits, n = decimal.Zero, decimal.Zero, 0
			}
		}
	})
}
