package projection

import (
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Item is an open suspense item: money parked for a loan or a person, or
// a review item (recon.ItemConflict) that moves no money. Items live in
// the journal partition that parked them: the same transaction may be
// open in two partitions (shares of a split that could not be booked).
type Item struct {
	ID          string // the transaction id, or the review item's id (recon.ConflictID)
	Kind        string // recon.ItemMoney or recon.ItemConflict
	Transaction recon.BankTransaction
	// Amount is what is parked: the transaction's amount, or the shares
	// of it taken back from loans; zero for a review item.
	Amount decimal.Decimal
	// LoanID is set when the loan was known but the money could not be
	// allocated to it.
	LoanID  string
	Reason  string
	Since   time.Time
	EntryID string // the entry that opened it
	Round   int    // how many times the item was assigned
	// Partition is the journal partition that holds it, where a command
	// on it must go.
	Partition int32
}

// applySuspense opens and closes items as package matcher's Poster does
// for its partition: a suspense entry opens an item (or replaces it), a
// repark joins the open item or opens one, a release, reversal or
// take-back closes it, a review entry opens a review item and
// review-closed closes it.
func (p *Projection) applySuspense(partition int32, e recon.Entry) {
	open := p.items[partition]
	if open == nil {
		open = map[string]*Item{}
		p.items[partition] = open
	}
	item := func(kind, id string, amount decimal.Decimal, loanID string) *Item {
		t := recon.BankTransaction{ID: e.TransactionID, Currency: e.Postings[0].Currency} // an entry the matcher did not write
		if e.Item != nil {
			t = *e.Item
		}
		return &Item{ID: strings.Clone(id), Kind: kind, Transaction: t, Amount: amount, LoanID: loanID, Reason: e.Note, Since: e.BookedAt,
			EntryID: e.ID, Round: e.Round, Partition: partition}
	}
	switch e.Kind {
	case recon.EntrySuspense:
		open[e.TransactionID] = item(recon.ItemMoney, e.TransactionID, e.Postings[0].Amount, e.LoanID)
	case recon.EntryRepark:
		if it := open[e.TransactionID]; it != nil { // another share came back first
			it.Amount = it.Amount.Add(e.Postings[0].Amount)
			break
		}
		open[e.TransactionID] = item(recon.ItemMoney, e.TransactionID, e.Postings[0].Amount, "")
	case recon.EntryRelease, recon.EntryReversal, recon.EntryTakeBack:
		delete(open, e.TransactionID) // released, or a waiting return resolved
	case recon.EntryReview:
		if e.Item != nil {
			id := recon.ConflictID(*e.Item)
			open[id] = item(recon.ItemConflict, id, decimal.Zero, "")
			open[id].Round = 0
		}
	case recon.EntryReviewClosed:
		if e.Item != nil {
			delete(open, recon.ConflictID(*e.Item))
		}
	}
	if len(open) == 0 {
		delete(p.items, partition)
	}
}

// Items lists the open suspense items of every partition, oldest first
// (then by id and partition).
func (p *Projection) Items() []Item {
	var out []Item
	for _, open := range p.items {
		for _, it := range open {
			out = append(out, *it)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Partition < b.Partition
	})
	return out
}

// PartitionItems lists the open suspense items of one journal partition,
// by id (as the matcher's Poster for that partition lists them).
func (p *Projection) PartitionItems(partition int32) []Item {
	out := make([]Item, 0, len(p.items[partition]))
	for _, it := range p.items[partition] {
		out = append(out, *it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ItemPartition says which journal partition holds open item id (the
// lowest when several do).
func (p *Projection) ItemPartition(id string) (int32, bool) {
	found, best := false, int32(0)
	for part, open := range p.items {
		if _, ok := open[id]; ok && (!found || part < best) {
			found, best = true, part
		}
	}
	return best, found
}

// Parked sums the open items that hold money in one currency.
type Parked struct {
	Count  int
	Amount decimal.Decimal
	Oldest time.Time // since when the oldest waits
}

// Parked is, per currency, what the open money items hold (review items
// move no money and are left out). It reads every open item: call it once
// per batch, not per entry.
func (p *Projection) Parked() map[string]Parked {
	out := map[string]Parked{}
	for _, open := range p.items {
		for _, it := range open {
			if it.Kind != recon.ItemMoney {
				continue
			}
			s := out[it.Transaction.Currency]
			s.Count++
			s.Amount = s.Amount.Add(it.Amount)
			if s.Oldest.IsZero() || it.Since.Before(s.Oldest) {
				s.Oldest = it.Since
			}
			out[it.Transaction.Currency] = s
		}
	}
	return out
}
