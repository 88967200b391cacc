package ledger

import (
	"fmt"
	"sort"
	"sync"
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
	// mu guards the lazy ordering of series read under a caller's read
	// lock (Balances at a past instant).
	mu sync.Mutex
}

type point struct {
	at      time.Time
	delta   decimal.Decimal
	balance decimal.Decimal // running balance, valid when the series is not dirty
}

// series is one account's postings in one currency. Apply appends in
// O(1): entries of several journal partitions arrive interleaved, so a
// posting may be older than the last; the series is then marked dirty and
// ordered (stable, by instant) only when a past balance is read.
type series struct {
	pts   []point
	total decimal.Decimal
	dirty bool
}

func (s *series) add(at time.Time, delta decimal.Decimal) {
	s.total = s.total.Add(delta)
	n := len(s.pts)
	if !s.dirty && n > 0 && at.Before(s.pts[n-1].at) {
		s.dirty = true
	}
	p := point{at: at, delta: delta}
	if !s.dirty {
		p.balance = delta
		if n > 0 {
			p.balance = s.pts[n-1].balance.Add(delta)
		}
	}
	s.pts = append(s.pts, p)
}

func (s *series) order() {
	if !s.dirty {
		return
	}
	sort.SliceStable(s.pts, func(i, j int) bool { return s.pts[i].at.Before(s.pts[j].at) })
	var b decimal.Decimal
	for i := range s.pts {
		b = b.Add(s.pts[i].delta)
		s.pts[i].balance = b
	}
	s.dirty = false
}

type history struct {
	byCurrency map[string]*series
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
			h = &history{byCurrency: map[string]*series{}, debits: map[string]decimal.Decimal{}, credits: map[string]decimal.Decimal{}}
			b.accounts[p.Account] = h
		}
		delta := p.Amount
		if p.Side == recon.CreditSide {
			delta = delta.Neg()
			h.credits[p.Currency] = h.credits[p.Currency].Add(p.Amount)
		} else {
			h.debits[p.Currency] = h.debits[p.Currency].Add(p.Amount)
		}
		sr := h.byCurrency[p.Currency]
		if sr == nil {
			sr = &series{}
			h.byCurrency[p.Currency] = sr
		}
		sr.add(e.BookedAt, delta)
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
	for cur, sr := range h.byCurrency {
		bal := Balance{Currency: cur, Debits: h.debits[cur], Credits: h.credits[cur]}
		if at.IsZero() {
			bal.Balance = sr.total
		} else {
			b.mu.Lock()
			sr.order()
			pts := sr.pts
			i := sort.Search(len(pts), func(i int) bool { return pts[i].at.After(at) })
			if i > 0 {
				bal.Balance = pts[i-1].balance
			}
			b.mu.Unlock()
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
