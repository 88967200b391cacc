package projection

import (
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

// Book is the balances of the journal: per account and currency the
// running balance (debits minus credits), and with history the balance at
// every posting, so a balance can be read at any past instant.
type Book struct {
	history  bool
	accounts map[string]*account
	// mu guards the lazy ordering of series read under a caller's read
	// lock (Balances at a past instant).
	mu sync.Mutex
}

type account struct {
	byCurrency map[string]*series
}

type point struct {
	at      time.Time
	delta   decimal.Decimal
	balance decimal.Decimal // running balance, valid when the series is not dirty
}

// series is one account's postings in one currency. add appends in O(1):
// entries of several journal partitions arrive interleaved, so a posting
// may be older than the last; the series is then marked dirty and ordered
// (stable, by instant) only when a past balance is read. Without history
// pts stays empty.
type series struct {
	debits, credits, total decimal.Decimal
	pts                    []point
	dirty                  bool
}

func newBook(history bool) *Book {
	return &Book{history: history, accounts: map[string]*account{}}
}

func (b *Book) series(acct, currency string) *series {
	a := b.accounts[acct]
	if a == nil {
		a = &account{byCurrency: map[string]*series{}}
		b.accounts[acct] = a
	}
	s := a.byCurrency[currency]
	if s == nil {
		s = &series{}
		a.byCurrency[currency] = s
	}
	return s
}

// apply adds e's postings; e is new (Projection.Apply checked it).
func (b *Book) apply(e recon.Entry) {
	for _, p := range e.Postings {
		s := b.series(p.Account, p.Currency)
		if p.Side == recon.CreditSide {
			s.credits = s.credits.Add(p.Amount)
		} else {
			s.debits = s.debits.Add(p.Amount)
		}
		delta := Signed(p)
		s.total = s.total.Add(delta)
		if b.history {
			s.add(e.BookedAt, delta)
		}
	}
}

func (s *series) add(at time.Time, delta decimal.Decimal) {
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

// Signed is what a posting moves its account by: its amount on the debit
// side, minus it on the credit side.
func Signed(p recon.Posting) decimal.Decimal {
	if p.Side == recon.CreditSide {
		return p.Amount.Neg()
	}
	return p.Amount
}

// Balance of one account in one currency.
type Balance struct {
	Currency string          `json:"currency"`
	Balance  decimal.Decimal `json:"balance"` // debits minus credits
	Debits   decimal.Decimal `json:"debits"`
	Credits  decimal.Decimal `json:"credits"`
}

// Balances returns the account's balance per currency at instant at (zero
// time means now, with the debits and credits that make it), sorted by
// currency. A past instant needs a projection with history: asking one
// without is a bug, and panics.
func (b *Book) Balances(acct string, at time.Time) []Balance {
	if !at.IsZero() && !b.history {
		panic("projection: a balance at a past instant needs Config.History")
	}
	a := b.accounts[acct]
	if a == nil {
		return nil
	}
	out := make([]Balance, 0, len(a.byCurrency))
	for cur, s := range a.byCurrency {
		bal := Balance{Currency: cur, Balance: s.total, Debits: s.debits, Credits: s.credits}
		if !at.IsZero() {
			b.mu.Lock()
			s.order()
			pts := s.pts
			i := sort.Search(len(pts), func(i int) bool { return pts[i].at.After(at) })
			bal = Balance{Currency: cur}
			if i > 0 {
				bal.Balance = pts[i-1].balance
			}
			b.mu.Unlock()
		}
		out = append(out, bal)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out
}

// Balance is the account's balance in one currency now (debits minus
// credits; zero when it has none).
func (b *Book) Balance(acct, currency string) decimal.Decimal {
	if a := b.accounts[acct]; a != nil {
		if s := a.byCurrency[currency]; s != nil {
			return s.total
		}
	}
	return decimal.Zero
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
