package matcher

import (
	"bytes"
	"encoding/json"
	"maps"
	"sort"
	"strconv"
	"testing"

	"github.com/reconhq/recon"
)

// tape records what a Poster (A) was given and what it answered, and
// copies of its store at chosen points, so that another Poster (B), built
// from A's journal or store, can be given the same and must answer the
// same.
type tape struct {
	base       func() *Loans // the loans table before the first step
	allocation string
	steps      []tapeStep
	stores     map[int]MemKV // A's store after the first n steps
}

type tapeStep struct {
	put     *recon.Loan // the loans table changes
	routed  *Routed     // Post
	rematch bool        // Rematch(now, true)
	res     Result
}

func (tp *tape) add(st tapeStep) {
	if tp != nil {
		tp.steps = append(tp.steps, st)
	}
}

// snapshot copies p's store as it is after the steps so far (values are
// never changed in place: a shallow copy is a copy).
func (tp *tape) snapshot(p *Poster) int {
	n := len(tp.steps)
	tp.stores[n] = maps.Clone(p.kv.(MemKV))
	return n
}

// loans is the loans table after the first n steps.
func (tp *tape) loans(t *testing.T, n int) *Loans {
	l := tp.base()
	for _, st := range tp.steps[:n] {
		if st.put != nil {
			if err := l.Put(*st.put); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l
}

// journal is the entries the steps from..to wrote, as the service reads
// them back: JSON from Kafka.
func (tp *tape) journal(t *testing.T, from, to int) []recon.Entry {
	var out []recon.Entry
	for _, st := range tp.steps[from:to] {
		for _, e := range st.res.Entries {
			raw, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var back recon.Entry
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			out = append(out, back)
		}
	}
	return out
}

func (tp *tape) poster(loans *Loans) *Poster {
	p := NewPoster(loans)
	p.SetOwnAccounts(map[string]bool{ownIBAN: true})
	p.Allocation = tp.allocation
	return p
}

// replay gives p the steps from n on and fails at the first answer that
// differs from A's; it returns how many entries p wrote.
func (tp *tape) replay(t *testing.T, how string, p *Poster, loans *Loans, n int) int {
	t.Helper()
	entries := 0
	for i, st := range tp.steps[n:] {
		var res Result
		switch {
		case st.put != nil:
			if err := loans.Put(*st.put); err != nil {
				t.Fatal(err)
			}
			continue
		case st.rematch:
			res = p.Rematch(now, true)
		default:
			res = p.Post(now, *st.routed)
		}
		if g, w := jsonOf(t, res), jsonOf(t, st.res); g != w {
			t.Fatalf("%s: step %d answered otherwise\n got %s\nwant %s", how, n+i, g, w)
		}
		entries += len(res.Entries)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("%s: %v", how, err)
	}
	return entries
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameStore fails when two stores differ in a key or a value.
func sameStore(t *testing.T, how string, got, want MemKV) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !bytes.Equal(g, w) {
			t.Errorf("%s: key %q = %q (present %v), want %q", how, k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: key %q not in A's store", how, k)
		}
	}
}

// checkEquivalent builds B three ways at each cut of the tape and gives it
// the rest: (a) the whole journal replayed by Restore, (b) Open of A's
// store at an earlier cut and Restore of the journal since, (c) Open of
// A's store at the cut. B must answer every later step as A did (same
// entries, hashes, routed records and decisions), and its store must be
// A's, key by key.
func checkEquivalent(t *testing.T, tp *tape, final MemKV) {
	t.Helper()
	var cuts []int
	for n := range tp.stores {
		cuts = append(cuts, n)
	}
	sort.Ints(cuts)
	checked := 0
	for i, cut := range cuts {
		builds := map[string]func(*Loans) *Poster{
			"journal": func(l *Loans) *Poster {
				p := tp.poster(l)
				for _, e := range tp.journal(t, 0, cut) {
					p.Restore(e)
				}
				return p
			},
			"store": func(l *Loans) *Poster {
				p := tp.poster(l)
				if err := p.Open(maps.Clone(tp.stores[cut])); err != nil {
					t.Fatal(err)
				}
				return p
			},
		}
		if i > 0 {
			from := cuts[i-1]
			builds["store+tail"] = func(l *Loans) *Poster {
				p := tp.poster(l)
				if err := p.Open(maps.Clone(tp.stores[from])); err != nil {
					t.Fatal(err)
				}
				for _, e := range tp.journal(t, from, cut) {
					p.Restore(e)
				}
				return p
			}
		}
		for name, build := range builds {
			how := name + " at step " + strconv.Itoa(cut)
			loans := tp.loans(t, cut)
			p := build(loans)
			sameStore(t, how+", before the rest", p.kv.(MemKV), tp.stores[cut])
			checked += tp.replay(t, how, p, loans, cut)
			sameStore(t, how+", at the end", p.kv.(MemKV), final)
		}
	}
	if checked == 0 {
		t.Fatal("no entry written after a cut: the comparison proves nothing")
	}
}

// A mixed history with every kind of state: B built from A's journal, from
// an older copy of A's store and the journal since, or from A's store,
// decides what follows exactly as A.
func TestPosterStoreEquivalence(t *testing.T) {
	tp := &tape{base: func() *Loans { return borrowerLoans(t) }, stores: map[int]MemKV{}}
	h := newHarness(t, tp.base())
	h.tape = tp
	tp.snapshot(h.poster)
	book := func(t recon.BankTransaction) Routed {
		d, rt := h.route(t)
		if rt == nil {
			h.t.Fatalf("%s not routed: %q", t.ID, d.Outcome)
		}
		h.post(*rt)
		return *rt
	}
	postAll := func(res Result) {
		for _, r := range res.Routed {
			h.post(r)
		}
	}
	// Payments matched, one overpaying (loan credit), one for no loan yet.
	a := credit("130.00", "DE00VIBA0000000001", "E2E-Q1")
	over := credit("650.00", "DE00VIBA0000000002", "E2E-Q2")
	book(a)
	book(over)
	book(credit("75.00", "", "E2E-Q3"))
	early := credit("40.00", "DE00VIBA0000000123", "E2E-Q4")
	book(returned(early, "40.00")) // a return before its original
	book(credit("10.00", "DE00VIBA0000000055", "E2E-Q5"))
	// To the borrower's virtual IBAN: across their loans, then beyond.
	b1 := credit("150.00", borrowerVIBAN, "E2E-QB1")
	routedB1 := book(b1)
	tp.snapshot(h.poster)

	book(credit("170.00", borrowerVIBAN, "E2E-QB2"))
	book(early) // the original: its waiting return follows
	// A disbursement, and the transfer comes back.
	disb := txn(recon.Debit, "500.00", "", "DISB-L-2")
	book(disb)
	back := txn(recon.Credit, "500.00", "DE00VIBA0000000002", "DISB-L-2")
	back.Reversal = true
	back.ID = recon.IdentityKey(back)
	book(back)
	// A split assignment, an unassignment, a review item.
	parked := credit("75.00", "", "E2E-Q3")
	res := h.post(Routed{Kind: KindAssign, Key: "suspense", Transaction: recon.BankTransaction{ID: parked.ID}, Actor: "ops",
		Allocations: []Allocation{{"L-1", dec("25.00")}, {"L-123", dec("50.00")}}})
	postAll(res)
	res = h.post(Routed{Kind: KindUnassign, Key: "L-123", LoanID: "L-123", Transaction: recon.BankTransaction{ID: parked.ID}, Actor: "ops", Note: "wrong"})
	postAll(res)
	other := a
	other.Amount = dec("131.00")
	d, rt := h.route(other)
	if rt == nil || rt.Kind != KindConflict {
		t.Fatalf("conflict not routed: %q", d.Outcome)
	}
	h.post(*rt)
	l2, _ := h.loans.Get("L-2") // L-2's schedule grows: its credit is applied
	l2.Principal = dec("600.00")
	h.put(l2)
	h.rematch()
	tp.snapshot(h.poster)

	// The loan of the parked 10.00 appears; L-2's schedule grows again.
	h.put(recon.Loan{LoanID: "L-55", VirtualIBAN: "DE00VIBA0000000055", Currency: "EUR", Principal: dec("5.00")})
	_, posted := h.rematch()
	if len(posted) == 0 {
		t.Fatal("nothing re-matched")
	}
	l2.Principal = dec("700.00")
	h.put(l2)
	h.rematch()
	// Returns reversing allocations: a loan's, the borrower's.
	book(returned(a, "130.00"))
	book(returned(b1, "150.00"))
	for _, it := range h.poster.Items() {
		if it.Kind == ItemConflict {
			h.post(Routed{Kind: KindDismiss, Key: "suspense", ItemID: it.ID, Note: "checked", Actor: "ops"})
		}
	}
	res = h.post(Routed{Kind: KindAssign, Key: "suspense", Transaction: recon.BankTransaction{ID: parked.ID}, Actor: "ops",
		Allocations: []Allocation{{"L-2", dec("50.00")}}})
	postAll(res)
	if res := h.post(routedB1); res.Decision.Outcome != recon.Duplicate { // redelivered
		t.Fatalf("redelivery: %q", res.Decision.Outcome)
	}
	book(credit("20.00", borrowerVIBAN, "E2E-QB3"))
	tp.snapshot(h.poster)
	book(credit("5.00", "DE00VIBA0000000001", "E2E-Q6"))

	want := map[string]bool{}
	for _, e := range h.entries {
		want[e.Kind] = true
	}
	for _, k := range []string{EntryRepayment, EntrySuspense, EntryRelease, EntryRematchIn, EntryReversal, EntryCreditApplied, EntryDisbursement,
		EntryDebitReversal, EntryUnassign, EntryRepark, EntryReview, EntryReviewClosed} {
		if !want[k] {
			t.Errorf("the history has no %s entry", k)
		}
	}
	checkEquivalent(t, tp, h.poster.kv.(MemKV))
}

// Random histories (the conservation property's world): the same holds at
// three cuts of each.
func TestPosterStoreEquivalenceWorld(t *testing.T) {
	for _, seed := range []uint64{1, 7, 42, 2026} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			w := newWorld(t, seed)
			tp := &tape{base: NewLoans, stores: map[int]MemKV{}}
			w.h.tape = tp
			const steps = 400
			for i := range steps {
				w.step()
				w.check(i)
				if i%(steps/3) == steps/3-1 {
					tp.snapshot(w.h.poster)
				}
			}
			w.h.rematch() // the last cut has a step after it
			checkEquivalent(t, tp, w.h.poster.kv.(MemKV))
		})
	}
}

// loaded is how many loans' running totals the Poster holds in memory.
func (p *Poster) loaded() int { return len(p.state) }

// A Poster opened on a store loads only the loans it is given money for,
// and those holding credit when the loans table changes.
func TestPosterLoadsLoansOnUse(t *testing.T) {
	loans := NewLoans()
	for i := range 1000 {
		if err := loans.Put(recon.Loan{LoanID: "L-" + strconv.Itoa(i), VirtualIBAN: "DE00VIBA" + strconv.Itoa(1000000000+i), Currency: "EUR",
			Principal: dec("100.00")}); err != nil {
			t.Fatal(err)
		}
	}
	pay := func(p *Poster, loan, amount string, n int) Result {
		t.Helper()
		tx := credit(amount, "", "E2E-"+loan+"-"+strconv.Itoa(n))
		res := p.Post(now, Routed{Kind: KindMatch, Key: loan, LoanID: loan, Rule: RuleVirtualIBAN, Transaction: tx})
		if res.Decision.Outcome != recon.Posted {
			t.Fatalf("pay %s: %q %s", loan, res.Decision.Outcome, res.Decision.Reason)
		}
		return res
	}
	a := NewPoster(loans)
	for i := range 100 {
		pay(a, "L-"+strconv.Itoa(i), "30.00", 0)
	}
	pay(a, "L-7", "150.00", 1) // 80.00 beyond what it owes: credit
	if a.loaded() != 100 {
		t.Fatalf("A holds %d loans", a.loaded())
	}
	b := NewPoster(loans)
	if err := b.Open(maps.Clone(a.kv.(MemKV))); err != nil {
		t.Fatal(err)
	}
	if b.loaded() != 0 || b.Head != a.Head {
		t.Fatalf("after Open: %d loans loaded, head %+v want %+v", b.loaded(), b.Head, a.Head)
	}
	if g, w := jsonOf(t, pay(b, "L-3", "30.00", 1)), jsonOf(t, pay(a, "L-3", "30.00", 1)); g != w {
		t.Fatalf("B booked otherwise\n got %s\nwant %s", g, w)
	}
	if b.loaded() != 1 {
		t.Fatalf("after one payment B holds %d loans", b.loaded())
	}
	// The loans table changed: only the loan holding credit is read.
	l7, _ := loans.Get("L-7")
	l7.Principal = dec("180.00")
	if err := loans.Put(l7); err != nil {
		t.Fatal(err)
	}
	if g, w := jsonOf(t, b.Rematch(now, true)), jsonOf(t, a.Rematch(now, true)); g != w || kinds(b.Rematch(now, true).Entries) != "" {
		t.Fatalf("rematch otherwise\n got %s\nwant %s", g, w)
	}
	if b.loaded() != 2 || b.state["L-7"] == nil {
		t.Fatalf("after the rematch B holds %d loans", b.loaded())
	}
	if len(b.credited) != 0 {
		t.Fatalf("credit left on %v", b.credited)
	}
}

// A store in another format, or with a value that does not decode, is
// refused, never trusted.
func TestPosterStoreUnreadable(t *testing.T) {
	h := newHarness(t, testLoans())
	h.run(credit("130.00", "DE00VIBA0000000001", "E2E-U1"))
	good := h.poster.kv.(MemKV)
	cases := map[string]func(MemKV){
		"no format":      func(kv MemKV) { delete(kv, keyVersion) },
		"other format":   func(kv MemKV) { kv[keyVersion] = []byte("poster/0") },
		"head truncated": func(kv MemKV) { kv[keyHead] = kv[keyHead][:3] },
		"item not JSON":  func(kv MemKV) { kv[prefixItem+"x"] = []byte("{") },
	}
	for name, spoil := range cases {
		kv := maps.Clone(good)
		spoil(kv)
		if err := NewPoster(testLoans()).Open(kv); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	// A loan's totals that do not decode: the next decision is not
	// committed, because Err says so.
	kv := maps.Clone(good)
	kv[prefixLoan+"L-1"] = []byte{0xff}
	p := NewPoster(testLoans())
	if err := p.Open(kv); err != nil {
		t.Fatal(err)
	}
	p.Post(now, Routed{Kind: KindMatch, Key: "L-1", LoanID: "L-1", Rule: RuleVirtualIBAN, Transaction: credit("1.00", "DE00VIBA0000000001", "E2E-U2")})
	if p.Err() == nil {
		t.Fatal("a malformed loan value went unnoticed")
	}
}

// discardKV keeps nothing: what a Poster holds on it is its hot state
// alone (every Set has still encoded its value).
type discardKV struct{}

func (discardKV) Get(string) ([]byte, bool)              { return nil, false }
func (discardKV) Set(string, []byte)                     {}
func (discardKV) Delete(string)                          {}
func (discardKV) Scan(string, func(string, []byte) bool) {}
func (discardKV) Err() error                             { return nil }

// BenchmarkPosterKV is BenchmarkPost on a MemKV (the state in memory, as
// before the KV) and on a KV that discards: the heap the hot state alone
// holds per posting.
func BenchmarkPosterKV(b *testing.B) {
	b.Run("kv=mem", func(b *testing.B) { benchmarkPost(b, NewPoster) })
	b.Run("kv=discard", func(b *testing.B) {
		benchmarkPost(b, func(l *Loans) *Poster {
			p := NewPoster(l)
			if err := p.Open(discardKV{}); err != nil {
				b.Fatal(err)
			}
			return p
		})
	})
}
