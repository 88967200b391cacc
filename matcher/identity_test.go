package matcher

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/reconhq/recon"
)

// sighting is one channel's report of a movement: its references, as
// ingest names it.
func sighting(source, msg, amount, acctsvcr, e2e, txid, mandate string) recon.BankTransaction {
	t := recon.BankTransaction{Type: recon.TypeTransaction, Source: source, MessageID: msg, AccountIBAN: lender,
		VirtualIBAN: "DE00VIBA0000000001", Direction: recon.Credit, Amount: dec(amount), Currency: "EUR", Status: recon.Booked,
		BookingDate: "2026-03-02", BankReference: acctsvcr, EndToEndID: e2e, TransactionID: txid, MandateID: mandate}
	if t.ID = recon.IdentityKey(t); t.ID == "" { // as ingest names a sighting without references
		t.ID = recon.SightingKey(t.AccountIBAN, t.Direction, "producer", source+"/"+msg+"/"+amount+"/"+strconv.Itoa(seq))
		seq++
	}
	return t
}

var seq int

// The identity rules, each as the sequence of sightings a bank sends and
// how many movements must be booked.
func TestIdentity(t *testing.T) {
	cases := []struct {
		name      string
		sightings []recon.BankTransaction
		booked    int
		outcomes  []recon.Outcome // per sighting; "" for booked (routed)
	}{
		{name: "producer e2e only, then camt.054 and camt.053 with the bank reference too: posted once",
			sightings: []recon.BankTransaction{
				sighting("api", "", "250.00", "", "E2E-1", "", ""),
				sighting("camt.054", "N-1", "250.00", "ACCT-1", "E2E-1", "", ""),
				sighting("camt.053", "S-1", "250.00", "ACCT-1", "", "", ""),
			}, booked: 1, outcomes: []recon.Outcome{"", recon.Duplicate, recon.Duplicate}},
		{name: "references chained across four channels, no two the same subset",
			sightings: []recon.BankTransaction{
				sighting("webhook", "", "80.00", "", "", "TX-9", ""),
				sighting("camt.054", "N-2", "80.00", "", "E2E-9", "TX-9", ""),
				sighting("camt.052", "R-2", "80.00", "ACCT-9", "E2E-9", "", ""),
				sighting("camt.053", "S-2", "80.00", "ACCT-9", "", "", ""),
			}, booked: 1, outcomes: []recon.Outcome{"", recon.Duplicate, recon.Duplicate, recon.Duplicate}},
		{name: "two monthly collections on one mandate, e2e NOTPROVIDED, no bank reference: both booked",
			sightings: []recon.BankTransaction{
				sighting("api", "", "120.00", "", "NOTPROVIDED", "", "MANDATE-7"),
				sighting("api", "", "120.00", "", "NOTPROVIDED", "", "MANDATE-7"),
			}, booked: 2, outcomes: []recon.Outcome{"", ""}},
		{name: "two payers reuse one e2e (an invoice number) with different bank references: different money",
			sightings: []recon.BankTransaction{
				sighting("camt.054", "N-3", "99.00", "ACCT-A", "INV-2026-1", "", ""),
				sighting("camt.054", "N-4", "99.00", "ACCT-B", "INV-2026-1", "", ""),
				sighting("camt.053", "S-3", "99.00", "ACCT-A", "INV-2026-1", "", ""),
				sighting("camt.053", "S-3", "99.00", "ACCT-B", "INV-2026-1", "", ""),
			}, booked: 2, outcomes: []recon.Outcome{"", "", recon.Duplicate, recon.Duplicate}},
		{name: "an e2e shared by two movements, seen without a bank reference: a person decides",
			sightings: []recon.BankTransaction{
				sighting("camt.054", "N-5", "10.00", "ACCT-C", "INV-9", "", ""),
				sighting("camt.054", "N-6", "10.00", "ACCT-D", "INV-9", "", ""),
				sighting("api", "", "10.00", "", "INV-9", "", ""),
			}, booked: 2, outcomes: []recon.Outcome{"", "", "review"}},
		{name: "shared reference with another amount: a conflict, no money",
			sightings: []recon.BankTransaction{
				sighting("api", "", "250.00", "", "E2E-X", "", ""),
				sighting("camt.054", "N-7", "205.00", "ACCT-X", "E2E-X", "", ""),
			}, booked: 1, outcomes: []recon.Outcome{"", "review"}},
		{name: "unreferenced producer event, then the camt.054 with references: linked, not counted twice",
			sightings: []recon.BankTransaction{
				sighting("api", "", "42.00", "", "", "", "MANDATE-1"),
				sighting("camt.054", "N-8", "42.00", "ACCT-42", "E2E-42", "", ""),
				sighting("camt.053", "S-8", "42.00", "ACCT-42", "", "", ""),
			}, booked: 1, outcomes: []recon.Outcome{"", recon.Duplicate, recon.Duplicate}},
		{name: "disjoint references on two channels: linked by fingerprint",
			sightings: []recon.BankTransaction{
				sighting("webhook", "", "55.00", "", "E2E-55", "", ""),
				sighting("camt.053", "S-9", "55.00", "ACCT-55", "", "", ""),
			}, booked: 1, outcomes: []recon.Outcome{"", recon.Duplicate}},
		{name: "two equal payments, each sighted by webhook then statement: two, never merged",
			sightings: []recon.BankTransaction{
				sighting("webhook", "", "60.00", "", "E2E-60a", "", ""),
				sighting("webhook", "", "60.00", "", "E2E-60b", "", ""),
				sighting("camt.053", "S-10", "60.00", "ACCT-60a", "", "", ""),
				sighting("camt.053", "S-10", "60.00", "ACCT-60b", "", "", ""),
			}, booked: 2, outcomes: []recon.Outcome{"", "", recon.Duplicate, recon.Duplicate}},
		{name: "two equal unreferenced entries in one file stay two",
			sightings: []recon.BankTransaction{
				sighting("camt.053", "S-11", "70.00", "", "", "", ""),
				sighting("camt.053", "S-11", "70.00", "", "", "", ""),
			}, booked: 2, outcomes: []recon.Outcome{"", ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewRouter(testLoans())
			booked := 0
			for i, s := range c.sightings {
				d, rt, _ := r.Route(s)
				got := d.Outcome
				switch {
				case rt != nil && rt.Kind == KindConflict:
					got = "review"
				case rt != nil:
					booked++
				}
				if got != c.outcomes[i] {
					t.Errorf("sighting %d (%s): %q (%s %s %s), want %q", i, s.Source, got, d.Rule, d.Reason, d.Evidence, c.outcomes[i])
				}
			}
			if booked != c.booked {
				t.Errorf("%d movements booked, want %d", booked, c.booked)
			}
		})
	}
}

// The movements survive a restart: the changelog records rebuild the
// reference index, and a later sighting with a new subset still meets its
// movement.
func TestIdentityRestored(t *testing.T) {
	r := NewRouter(testLoans())
	changelog := map[string]Seen{}
	for _, s := range []recon.BankTransaction{
		sighting("api", "", "250.00", "", "E2E-R", "", ""),
		sighting("camt.054", "N-R", "250.00", "ACCT-R", "E2E-R", "", ""),
	} {
		if _, _, seen := r.Route(s); seen != nil {
			changelog[seen.ID] = *seen
		}
	}
	restored := NewRouter(testLoans())
	for id, s := range changelog {
		restored.Remember(id, s)
	}
	d, rt, _ := restored.Route(sighting("camt.053", "S-R", "250.00", "ACCT-R", "", "", ""))
	if rt != nil || d.Outcome != recon.Duplicate {
		t.Fatalf("after restore: %q routed %v, want a duplicate", d.Outcome, rt)
	}
}

// FuzzIdentity sends movements as sightings on several channels, each
// carrying a random subset of the movement's references (none at all,
// too), in random order. When movements can be told apart (each names its
// payer's IBAN), every one is booked exactly once. When nothing tells them
// apart (equal amounts, dates close, no payer named, references that never
// overlap) every sighting still ends somewhere (booked, duplicate or review), but
// a sighting may be linked to the wrong equal movement and the count can
// be off either way: the statement proof then reports the difference of
// the bank balance. The README's identity rule says so.
func FuzzIdentity(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 7, 42, 2026} {
		f.Add(s, uint8(30), true)
		f.Add(s, uint8(30), false)
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, payerNamed bool) {
		rng := rand.New(rand.NewPCG(seed, 15))
		type movement struct{ acct, e2e, txid, amount, date string }
		var all []recon.BankTransaction
		of := map[string]int{} // sighting id → movement
		moves := make([]movement, int(n%60)+1)
		for i := range moves {
			m := movement{acct: fmt.Sprintf("A-%d", i), e2e: fmt.Sprintf("E-%d", i), txid: fmt.Sprintf("T-%d", i),
				amount: fmt.Sprintf("%d.00", 10+rng.IntN(5)), date: fmt.Sprintf("2026-03-%02d", 1+rng.IntN(20))}
			if rng.IntN(4) == 0 {
				m.e2e = "NOTPROVIDED"
			}
			moves[i] = m
			channels := []string{"webhook", "camt.054", "camt.052", "camt.053"}
			rng.Shuffle(len(channels), func(a, b int) { channels[a], channels[b] = channels[b], channels[a] })
			for _, ch := range channels[:1+rng.IntN(len(channels))] {
				pick := func(ref string) string {
					if rng.IntN(2) == 0 {
						return ""
					}
					return ref
				}
				msg := ""
				if ch != "webhook" {
					msg = ch + "-" + m.date // one file per channel and day
				}
				s := sighting(ch, msg, m.amount, pick(m.acct), pick(m.e2e), pick(m.txid), "")
				s.BookingDate = recon.Date(m.date)
				if payerNamed {
					s.CounterpartyIBAN = fmt.Sprintf("FR76300060000112345678%05d", i)
				}
				if !recon.HasStrongReference(s) { // named per sighting, as ingest does
					s.ID = recon.SightingKey(lender, recon.Credit, "entry", fmt.Sprintf("%s/%d/%s", msg, i, ch))
				}
				all, of[s.ID] = append(all, s), i
			}
		}
		rng.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
		r := NewRouter(testLoans())
		booked, ended := map[int]int{}, 0
		perAmount, sent := map[string]int{}, map[string]int{}
		for _, m := range moves {
			sent[m.amount]++
		}
		var reopened *Router // from a copy of the state store taken halfway
		for i, s := range all {
			if i == len(all)/2 {
				reopened = NewRouter(testLoans())
				reopened.Open(maps.Clone(r.kv.(MemKV)))
			}
			d, rt, _ := r.Route(s)
			if reopened != nil {
				if d2, rt2, _ := reopened.Route(s); !reflect.DeepEqual(d, d2) || !reflect.DeepEqual(rt, rt2) {
					t.Fatalf("seed %d: sighting %d decided %+v by the running Router, %+v after reopening its store", seed, i, d, d2)
				}
			}
			switch {
			case rt != nil && rt.Kind == KindConflict:
				if payerNamed {
					t.Fatalf("seed %d: review %s %s", seed, d.Reason, d.Evidence)
				}
				ended++
			case rt != nil:
				if booked[of[s.ID]]++; booked[of[s.ID]] > 1 && payerNamed {
					t.Fatalf("seed %d: movement %d booked twice (sighting %+v)", seed, of[s.ID], s)
				}
				perAmount[s.Amount.StringFixed(2)]++
				ended++
			case d.Outcome == recon.Duplicate:
				ended++
			}
		}
		if ended != len(all) {
			t.Fatalf("seed %d: %d of %d sightings ended nowhere", seed, len(all)-ended, len(all))
		}
		if payerNamed && len(booked) != len(moves) {
			t.Fatalf("seed %d: %d movements sent as %d sightings, %d booked", seed, len(moves), len(all), len(booked))
		}
		if !payerNamed {
			t.Logf("seed %d, nothing tells the movements apart: booked per amount %v, sent %v", seed, perAmount, sent)
		}
	})
}

// The fingerprint index holds about a month of movements, not history,
// and the Router's memory a bounded cache of them.
func TestFingerprintIndexBounded(t *testing.T) {
	r := NewRouter(testLoans())
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := range 365 {
		for i := range 10 {
			s := sighting("webhook", "", "10.00", fmt.Sprintf("R-%d-%d", d, i), "", "", "")
			s.BookingDate = recon.Date(start.AddDate(0, 0, d).Format(time.DateOnly))
			r.Route(s)
		}
	}
	held, lists := 0, 0
	r.kv.Scan(keyPrint, func(k string, _ []byte) bool {
		lists++
		held += len(r.printed(k[len(keyPrint):]))
		return true
	})
	if lists != 1 || held > 10*(fingerprintRetainDays+1) || held < 10*fingerprintRetainDays {
		t.Fatalf("%d movements in %d fingerprint lists after a year of 10 a day, want about %d in one", held, lists, 10*(fingerprintRetainDays+1))
	}
	if n := len(r.recent.cur) + len(r.recent.prev); n > seenCacheSize {
		t.Fatalf("%d movements cached, want at most %d", n, seenCacheSize)
	}
}

// One fingerprint holds at most maxPrints movements: equal amounts beyond
// it are not scanned.
func TestFingerprintListCapped(t *testing.T) {
	r := NewRouter(testLoans())
	for i := range maxPrints + 10 {
		r.Route(sighting("webhook", "", "10.00", fmt.Sprintf("R-%d", i), "", "", ""))
	}
	fp := fingerprint(lender, recon.Credit, dec("10.00"), "EUR") + printsBankRef
	if n := len(r.printed(fp)); n != maxPrints {
		t.Fatalf("%d movements under one fingerprint, want %d", n, maxPrints)
	}
}
