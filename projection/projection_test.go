package projection

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// entry moves amount EUR from debit to credit, booked h hours after base.
func entry(id, kind string, h int, debit, credit, amount string) recon.Entry {
	return recon.Entry{ID: id, Kind: kind, TransactionID: "bt_" + id, BookedAt: base.Add(time.Duration(h) * time.Hour), Postings: []recon.Posting{
		{Account: debit, Side: recon.DebitSide, Amount: dec(amount), Currency: "EUR"},
		{Account: credit, Side: recon.CreditSide, Amount: dec(amount), Currency: "EUR"}}}
}

// Entries of several partitions arrive out of time order: the balance now
// is their sum, a past balance counts what was booked by then.
func TestBalancesOutOfOrder(t *testing.T) {
	p := New(Config{History: true})
	for i, h := range []int{3, 1, 2, 1, 5} {
		e := entry(string(rune('a'+i)), recon.EntryRepayment, h, "bank:X", ledger.Suspense, decimal.New(int64(10*(i+1)), 0).String())
		if err := p.Apply(int32(i%2), int64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{{time.Time{}, "150"}, {base.Add(time.Hour + time.Minute), "60"}, {base.Add(2*time.Hour + time.Minute), "90"},
		{base.Add(4 * time.Hour), "100"}, {base.Add(6 * time.Hour), "150"}, {base.Add(-time.Hour), "0"}} {
		if got := p.Balances("bank:X", c.at)[0].Balance; !got.Equal(dec(c.want)) {
			t.Errorf("at %s: %s, want %s", c.at, got, c.want)
		}
	}
	if b := p.Balances("bank:X", time.Time{})[0]; !b.Debits.Equal(dec("150")) || !b.Credits.IsZero() {
		t.Errorf("debits and credits now: %+v", b)
	}
}

// A projection without history answers now, in constant memory per
// account; asking it for the past is a bug.
func TestBalancesWithoutHistory(t *testing.T) {
	p := New(Config{})
	_ = p.Apply(0, 0, entry("a", recon.EntryRepayment, 1, "bank:X", ledger.Suspense, "12.50"))
	_ = p.Apply(0, 1, entry("b", recon.EntryRepayment, 0, "bank:X", ledger.Suspense, "1.50"))
	if got := p.Book().Balance("bank:X", "EUR"); !got.Equal(dec("14")) {
		t.Errorf("balance %s", got)
	}
	if n := len(p.book.accounts["bank:X"].byCurrency["EUR"].pts); n != 0 {
		t.Errorf("%d points kept without history", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("a past balance without history did not panic")
		}
	}()
	p.Balances("bank:X", base)
}

// The journal position makes applying idempotent: an offset already
// reflected is skipped, the same entry at a new offset is applied.
func TestApplyOffsets(t *testing.T) {
	p := New(Config{})
	e := entry("a", recon.EntryRepayment, 1, "bank:X", ledger.Suspense, "10")
	for _, o := range []int64{5, 5, 3} {
		if err := p.Apply(2, o, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Book().Balance("bank:X", "EUR"); !got.Equal(dec("10")) || p.Entries() != 1 {
		t.Errorf("after a replay: balance %s, %d entries", got, p.Entries())
	}
	_ = p.Apply(2, 6, e)
	if got := p.Offsets()[2]; got != 7 || !p.Book().Balance("bank:X", "EUR").Equal(dec("20")) {
		t.Errorf("next offset %d, balance %s", got, p.Book().Balance("bank:X", "EUR"))
	}
	bad := e
	bad.Postings = bad.Postings[:1]
	if err := p.Apply(2, 7, bad); err == nil || p.Offsets()[2] != 8 {
		t.Errorf("unbalanced entry: %v, next offset %d", err, p.Offsets()[2])
	}
}

// What a loan was paid leaves money lent out; its credit and the
// borrower's are their credit accounts.
func TestLoan(t *testing.T) {
	p := New(Config{})
	for i, e := range []recon.Entry{
		entry("d", recon.EntryDisbursement, 0, ledger.Principal("L:1"), "bank:X", "1000"),
		{ID: "r", Kind: recon.EntryRepayment, LoanID: "L:1", Postings: []recon.Posting{
			{Account: "bank:X", Side: recon.DebitSide, Amount: dec("130"), Currency: "EUR"},
			{Account: ledger.Fees("L:1"), Side: recon.CreditSide, Amount: dec("5"), Currency: "EUR"},
			{Account: ledger.Interest("L:1"), Side: recon.CreditSide, Amount: dec("15"), Currency: "EUR"},
			{Account: ledger.Principal("L:1"), Side: recon.CreditSide, Amount: dec("80"), Currency: "EUR"},
			{Account: ledger.Credit("L:1"), Side: recon.CreditSide, Amount: dec("30"), Currency: "EUR"}}},
		entry("x", recon.EntryReversal, 2, ledger.Principal("L:1"), "bank:X", "20"),
		entry("b", recon.EntryRepayment, 3, "bank:X", ledger.BorrowerCredit("B1"), "7"),
		entry("o", recon.EntryRepayment, 3, "bank:Y", ledger.Principal("L2"), "1"), // another loan
	} {
		if err := p.Apply(0, int64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	l := p.Loan("L:1", "EUR")
	for _, c := range []struct {
		name      string
		got, want decimal.Decimal
	}{
		{"fees", l.Fees, dec("5")}, {"interest", l.Interest, dec("15")}, {"principal", l.Principal, dec("60")},
		{"paid", l.Paid(), dec("80")}, {"lent", l.Lent, dec("1000")}, {"credit", l.Credit, dec("30")},
		{"part fees", l.Part(ledger.PartFees), dec("5")}, {"other currency", p.Loan("L:1", "GBP").Paid(), dec("0")},
		{"borrower credit", p.BorrowerCredit("B1", "EUR"), dec("7")},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}
}

// Items live in the partition that parked them: the same transaction
// released in one partition and parked in another is open once, there.
func TestItemsByPartition(t *testing.T) {
	t1 := recon.BankTransaction{ID: "bt_1", Direction: recon.Credit, Amount: dec("50"), Currency: "EUR"}
	park := func(id string, round int, from string) recon.Entry {
		e := entry(id, recon.EntrySuspense, round, from, ledger.Suspense, "50")
		e.TransactionID, e.Item, e.Round = "bt_1", &t1, round
		return e
	}
	release := entry("rel", recon.EntryRelease, 1, ledger.Suspense, ledger.Transit, "50")
	release.TransactionID = "bt_1"
	p := New(Config{})
	_ = p.Apply(0, 0, park("s0", 0, "bank:X"))
	_ = p.Apply(1, 0, park("s1", 1, ledger.Transit)) // read before the release of partition 0
	_ = p.Apply(0, 1, release)
	items := p.Items()
	if len(items) != 1 || items[0].Partition != 1 || items[0].Round != 1 || !items[0].Amount.Equal(dec("50")) {
		t.Fatalf("open items %+v", items)
	}
	if part, ok := p.ItemPartition("bt_1"); !ok || part != 1 {
		t.Errorf("ItemPartition: %d %v", part, ok)
	}
	if len(p.PartitionItems(0)) != 0 {
		t.Errorf("partition 0 still holds %+v", p.PartitionItems(0))
	}
	review := entry("rv", recon.EntryReview, 2, ledger.Memo, ledger.Memo, "50")
	review.Item = &t1
	_ = p.Apply(0, 2, review)
	if part, ok := p.ItemPartition(recon.ConflictID(t1)); !ok || part != 0 || p.Items()[1].Kind != recon.ItemConflict || !p.Items()[1].Amount.IsZero() {
		t.Errorf("review item: %d %v %+v", part, ok, p.Items())
	}
	if got := p.Parked(); len(got) != 1 || got["EUR"].Count != 1 || !got["EUR"].Amount.Equal(dec("50")) || !got["EUR"].Oldest.Equal(base.Add(time.Hour)) {
		t.Errorf("parked %+v (the review item holds no money)", got)
	}
}

// A checkpoint restores the same state; one truncated or altered is
// refused and leaves the projection as it was.
func TestCheckpoint(t *testing.T) {
	p := New(Config{History: true})
	t1 := recon.BankTransaction{ID: "bt_s", Direction: recon.Debit, Amount: dec("3.10"), Currency: "EUR", EntryAmount: &decimal.Decimal{}}
	s := entry("s", recon.EntrySuspense, 4, ledger.Suspense, "bank:X", "3.10")
	s.TransactionID, s.Item, s.Note = "bt_s", &t1, "return awaiting its original"
	for i, e := range []recon.Entry{
		entry("a", recon.EntryRepayment, 2, "bank:X", ledger.Principal("L1"), "10"),
		entry("b", recon.EntryRepayment, 1, "bank:X", ledger.Interest("L1"), "0.5"),
		entry("d", recon.EntryDisbursement, 0, ledger.Principal("L1"), "bank:X", "100"),
		s,
	} {
		_ = p.Apply(int32(i%3), int64(10+i), e)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q := New(Config{})
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	again, _ := q.MarshalBinary()
	if string(again) != string(b) {
		t.Error("a restored checkpoint marshals to other bytes")
	}
	if got := q.Balances("bank:X", base.Add(90*time.Minute)); !got[0].Balance.Equal(dec("-99.5")) {
		t.Errorf("balance at a past instant after restore: %s", got[0].Balance)
	}
	if l := q.Loan("L1", "EUR"); !l.Paid().Equal(dec("10.5")) || !l.Lent.Equal(dec("100")) {
		t.Errorf("loan after restore: %+v", l)
	}
	if items := q.Items(); len(items) != 1 || items[0].Reason != s.Note || items[0].Partition != 0 || !items[0].Since.Equal(s.BookedAt) {
		t.Errorf("items after restore: %+v", items)
	}
	if o := q.Offsets(); len(o) != 3 || o[0] != 14 || o[1] != 12 || o[2] != 13 || q.Entries() != 4 {
		t.Errorf("offsets after restore %v, %d entries", o, q.Entries())
	}
	altered := append([]byte(nil), b...)
	altered[len(altered)/2] ^= 1
	for name, bad := range map[string][]byte{"empty": nil, "truncated": b[:len(b)-1], "altered": altered, "other": []byte("recon.projection/2\n....")} {
		if err := q.UnmarshalBinary(bad); !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s checkpoint: %v", name, err)
		}
	}
	if again, _ := q.MarshalBinary(); string(again) != string(b) {
		t.Error("a refused checkpoint changed the projection")
	}
}

func TestBankMovements(t *testing.T) {
	e := entry("a", recon.EntryRepayment, 25, ledger.Bank("fr76x"), ledger.Principal("L1"), "10")
	e.Postings = append(e.Postings, recon.Posting{Account: "bank:Y", Side: recon.CreditSide, Amount: dec("1"), Currency: "EUR"},
		recon.Posting{Account: ledger.BankFees, Side: recon.DebitSide, Amount: dec("1"), Currency: "EUR"})
	d, ms := BankMovements(e)
	if d != "2026-01-02" || len(ms) != 2 || ms[0].IBAN != "FR76X" || !ms[0].Delta.Equal(dec("10")) || ms[1].Account != "bank:Y" || !ms[1].Delta.Equal(dec("-1")) {
		t.Errorf("BankMovements = %s %+v", d, ms)
	}
	e.EffectiveDate = "2025-12-31"
	if d, _ := BankMovements(e); d != "2025-12-31" {
		t.Errorf("effective date: %s", d)
	}
	if d, ms := BankMovements(entry("b", recon.EntryBankFees, 0, ledger.BankFees, ledger.Suspense, "1")); d != "" || ms != nil {
		t.Errorf("no bank posting: %s %+v", d, ms)
	}
}
