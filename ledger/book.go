package ledger

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Book is the balance projection of the journal: per account and currency,
// the running balance (debits minus credits) at every entry, so a balance can
// be read at any past instant. Applying the same entry twice is a no-op;
// the same id with other content is reported.
type Book struct {
	accounts map[string]*history
	seen     map[string]string // entry id -> hash of content
}

type point struct {
	at      time.Time
	balance decimal.Decimal
}

type history struct {
	byCurrency map[string][]point
	debits     map[string]decimal.Decimal
	credits    map[string]decimal.Decimal
}

// NewBook returns an empty projection.
func NewBook() *Book {
	return &Book{accounts: map[string]*history{}, seen: map[string]string{}}
}

// Apply adds e to the projection. Entries of one account are expected in
// booking order per partition; points are kept sorted by time.
func (b *Book) Apply(e recon.Entry) error {
	key := digestContent(e)
	if prev, ok := b.seen[e.ID]; ok {
		if prev != key {
			return fmt.Errorf("ledger: entry %s seen again with other postings", e.ID)
		}
		return nil
	}
	MustBalance(e)
	b.seen[e.ID] = key
	for _, p := range e.Postings {
		h := b.accounts[p.Account]
		if h == nil {
			h = &history{byCurrency: map[string][]point{}, debits: map[string]decimal.Decimal{}, credits: map[string]decimal.Decimal{}}
			b.accounts[p.Account] = h
		}
		delta := p.Amount
		if p.Side == recon.CreditSide {
			delta = delta.Neg()
			h.credits[p.Currency] = h.credits[p.Currency].Add(p.Amount)
		} else {
			h.debits[p.Currency] = h.debits[p.Currency].Add(p.Amount)
		}
		pts := h.byCurrency[p.Currency]
		i := sort.Search(len(pts), func(i int) bool { return pts[i].at.After(e.BookedAt) })
		var before decimal.Decimal
		if i > 0 {
			before = pts[i-1].balance
		}
		pts = append(pts, point{})
		copy(pts[i+1:], pts[i:])
		pts[i] = point{at: e.BookedAt, balance: before.Add(delta)}
		for j := i + 1; j < len(pts); j++ {
			pts[j].balance = pts[j].balance.Add(delta)
		}
		h.byCurrency[p.Currency] = pts
	}
	return nil
}

// digestContent identifies an entry's business content, without its chain
// position (a redelivered entry may be sealed at another sequence).
func digestContent(e recon.Entry) string {
	e.Sequence, e.PrevHash, e.Hash, e.BookedAt = 0, "", "", time.Time{}
	return digest(e)
}

// Balance of one account in one currency.
type Balance struct {
	Currency string          `json:"currency"`
	Balance  decimal.Decimal `json:"balance"` // debits minus credits
	Debits   decimal.Decimal `json:"debits"`
	Credits  decimal.Decimal `json:"credits"`
}

// Balances returns the account's balance per currency at instant at (zero
// time means now), sorted by currency.
func (b *Book) Balances(account string, at time.Time) []Balance {
	h := b.accounts[account]
	if h == nil {
		return nil
	}
	var out []Balance
	for cur, pts := range h.byCurrency {
		bal := Balance{Currency: cur, Debits: h.debits[cur], Credits: h.credits[cur]}
		if at.IsZero() {
			bal.Balance = pts[len(pts)-1].balance
		} else {
			i := sort.Search(len(pts), func(i int) bool { return pts[i].at.After(at) })
			if i > 0 {
				bal.Balance = pts[i-1].balance
			}
			bal.Debits, bal.Credits = decimal.Decimal{}, decimal.Decimal{}
		}
		out = append(out, bal)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out
}

// Accounts lists every account with postings, sorted.
func (b *Book) Accounts() []string {
	out := make([]string, 0, len(b.accounts))
	for a := range b.accounts {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Entries is the number of distinct entries applied.
func (b *Book) Entries() int { return len(b.seen) }
