package matcher

import (
	"testing"

	"github.com/reconhq/recon/projection"
)

// The projection decides the open suspense items and what each loan was
// paid from the journal alone, as the Poster does: over random journals
// written by the real Poster (repayments, returns before and after their
// originals, re-matches, split and outgoing assignments, unassignments,
// conflicts and dismissals, disbursements), its open items are the
// Poster's and its paid parts and credit the Poster's; a checkpoint taken
// halfway and the tail replayed arrive at the same state.
func TestProjectionAgreesWithPoster(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 7, 42, 1234, 2026, 99991} {
		w := runWorld(t, seed, 600)
		entries := w.h.entries
		full := projection.New(projection.Config{History: true})
		half := projection.New(projection.Config{History: true})
		for i, e := range entries {
			if err := full.Apply(0, int64(i), e); err != nil {
				t.Fatalf("seed %d: entry %d: %v", seed, i, err)
			}
			if i < len(entries)/2 {
				_ = half.Apply(0, int64(i), e)
			}
		}
		cp, err := half.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		restored := projection.New(projection.Config{})
		if err := restored.UnmarshalBinary(cp); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for i, e := range entries { // from the start: what the checkpoint reflects is skipped
			_ = restored.Apply(0, int64(i), e)
		}

		want := w.h.poster.Items()
		for _, p := range []*projection.Projection{full, restored} {
			got := p.PartitionItems(0)
			if len(got) != len(want) {
				t.Fatalf("seed %d: %d open items, the Poster has %d", seed, len(got), len(want))
			}
			for i, it := range want {
				g := got[i]
				if g.ID != it.ID || g.Kind != it.Kind || !g.Amount.Equal(it.Amount) || g.LoanID != it.LoanID || g.Reason != it.Reason ||
					!g.Since.Equal(it.Since) || g.EntryID != it.EntryID || g.Round != it.Round || g.Transaction.ID != it.Transaction.ID ||
					!g.Transaction.Amount.Equal(it.Transaction.Amount) || g.Transaction.Direction != it.Transaction.Direction {
					t.Errorf("seed %d: item %d\n got %+v\nwant %+v", seed, i, g, it)
				}
			}
			for id, s := range w.h.poster.state {
				if s.currency == "" || s.inexact {
					continue
				}
				l := p.Loan(id, s.currency)
				for part, v := range s.paid {
					if got := l.Part(partNames[part]); !got.Equal(fromMinor(v, s.currency)) {
						t.Errorf("seed %d: loan %s paid %s %s, the Poster %s", seed, id, partNames[part], got, fromMinor(v, s.currency))
					}
				}
				if !l.Credit.Equal(fromMinor(s.credit, s.currency)) || !l.Lent.Equal(fromMinor(s.disbursed, s.currency)) {
					t.Errorf("seed %d: loan %s credit %s lent %s, the Poster %s and %s", seed, id, l.Credit, l.Lent,
						fromMinor(s.credit, s.currency), fromMinor(s.disbursed, s.currency))
				}
			}
		}
		a, _ := full.MarshalBinary()
		b, _ := restored.MarshalBinary()
		if string(a) != string(b) {
			t.Errorf("seed %d: checkpoint + tail differs from the whole journal folded", seed)
		}
		if len(want) == 0 || full.Entries() != int64(len(entries)) {
			t.Errorf("seed %d: %d items open, %d of %d entries applied: the journal exercised too little", seed, len(want), full.Entries(), len(entries))
		}
	}
}
