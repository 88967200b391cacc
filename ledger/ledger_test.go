package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

func sample() recon.Entry {
	amt := decimal.RequireFromString("12.50")
	return recon.Entry{ID: "e_1", Kind: "suspense", LoanID: "L-1", TransactionID: "bt_1", EffectiveDate: "2026-03-02",
		BookedAt: time.Date(2026, 3, 2, 10, 30, 0, 123456789, time.FixedZone("CET", 3600)), Note: "n", Actor: "a", EndToEndID: "E", Reverses: "bt_0", Round: 2,
		Postings: []recon.Posting{{Account: "bank:X", Side: recon.DebitSide, Amount: amt, Currency: "EUR"}, {Account: Suspense, Side: recon.CreditSide, Amount: decimal.RequireFromString("12.5"), Currency: "EUR"}},
		Item:     &recon.BankTransaction{ID: "bt_1", Amount: amt, Currency: "EUR", EntryAmount: &amt, InstructedAmount: &recon.Money{Amount: amt, Currency: "USD"}, Reversal: true}}
}

// The canonical hash survives the journal's JSON round trip, and changing
// any field changes it.
func TestSealVerifiesAfterJSON(t *testing.T) {
	var head Head
	var v Verifier
	for i := range 3 {
		e := sample()
		e.ID += string(rune('a' + i))
		head = Seal(head, &e)
		if !strings.HasPrefix(e.Hash, canonicalPrefix) {
			t.Fatalf("hash %s", e.Hash)
		}
		b, _ := json.Marshal(e)
		var back recon.Entry
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := v.Next(int64(i), back); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	base := sample()
	Seal(Head{}, &base)
	for name, alter := range map[string]func(e *recon.Entry){
		"note":          func(e *recon.Entry) { e.Note = "m" },
		"round":         func(e *recon.Entry) { e.Round = 3 },
		"booked at":     func(e *recon.Entry) { e.BookedAt = e.BookedAt.Add(time.Nanosecond) },
		"amount":        func(e *recon.Entry) { e.Postings[0].Amount = decimal.RequireFromString("12.51") },
		"item reversal": func(e *recon.Entry) { e.Item.Reversal = false },
		"item money":    func(e *recon.Entry) { e.Item.InstructedAmount.Currency = "EUR" },
		"no item":       func(e *recon.Entry) { e.Item = nil },
	} {
		e := sample()
		e.Sequence, e.PrevHash = base.Sequence, base.PrevHash
		alter(&e)
		if digest(e) == base.Hash {
			t.Errorf("%s: the hash does not cover it", name)
		}
	}
	same := sample()
	same.Postings[0].Amount = decimal.RequireFromString("12.500000")
	same.Sequence = base.Sequence
	if digest(same) != base.Hash {
		t.Error("the same amount written otherwise hashes differently")
	}
}

// Entries sealed before the canonical encoding (a bare hex hash of their
// JSON) still verify.
func TestVerifierReadsLegacyHashes(t *testing.T) {
	e := sample()
	e.Sequence = 1
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	e.Hash = hex.EncodeToString(sum[:])
	var v Verifier
	if err := v.Next(0, e); err != nil {
		t.Fatal(err)
	}
	e2 := sample()
	e2.ID = "e_2"
	Seal(Head{Sequence: 1, Hash: e.Hash}, &e2)
	if err := v.Next(1, e2); err != nil {
		t.Fatal(err)
	}
}

// A field added to the hashed types must be added to the canonical
// encoding: this count fails first.
func TestCanonicalCoversEveryField(t *testing.T) {
	for typ, n := range map[reflect.Type]int{
		reflect.TypeOf(recon.Entry{}):           17,
		reflect.TypeOf(recon.Posting{}):         4,
		reflect.TypeOf(recon.BankTransaction{}): 31,
		reflect.TypeOf(recon.Money{}):           2,
	} {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields, the canonical encoding covers %d: update canonical.go", typ, typ.NumField(), n)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	e := sample()
	var head Head
	b.ReportAllocs()
	for range b.N {
		head = Seal(head, &e)
	}
}

// Every name the package builds parses back to its parts; other names do
// not parse.
func TestParseAccount(t *testing.T) {
	for _, c := range []struct {
		name string
		want Account
		ok   bool
	}{
		{Bank("fr7630001007941234567890185"), Account{Kind: KindBank, ID: "FR7630001007941234567890185"}, true},
		{Principal("L:1"), Account{Kind: KindLoan, ID: "L:1", Part: PartPrincipal}, true},
		{Interest("L1"), Account{Kind: KindLoan, ID: "L1", Part: PartInterest}, true},
		{Fees("L1"), Account{Kind: KindLoan, ID: "L1", Part: PartFees}, true},
		{Credit("L1"), Account{Kind: KindLoan, ID: "L1", Part: PartCredit}, true},
		{BorrowerCredit("B:7"), Account{Kind: KindBorrower, ID: "B:7", Part: PartCredit}, true},
		{Suspense, Account{Kind: KindSuspense}, true},
		{Transit, Account{Kind: KindTransit, ID: "rematch"}, true},
		{OwnAccount, Account{Kind: KindTransit, ID: "own-accounts"}, true},
		{BankFees, Account{Kind: KindExpense, ID: "bank-fees"}, true},
		{Memo, Account{Kind: KindMemo, ID: "conflicts"}, true},
		{"bank:", Account{Kind: KindBank}, false},
		{"loan:L1", Account{Kind: KindLoan, ID: "L1"}, false},
		{"loan::principal", Account{Kind: KindLoan, ID: ":principal"}, false},
		{"loan:L1:penalty", Account{Kind: KindLoan, ID: "L1", Part: "penalty"}, false},
		{"borrower:B1:principal", Account{Kind: KindBorrower, ID: "B1", Part: PartPrincipal}, false},
		{"suspense:x", Account{Kind: KindSuspense, ID: "x"}, false},
		{"equity", Account{Kind: "equity"}, false},
	} {
		got, ok := ParseAccount(c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseAccount(%q) = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
