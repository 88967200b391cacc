package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Limits of GET /v1/suspense pages.
const (
	DefaultSuspensePage = 1000
	MaxSuspensePage     = 10000
)

// SuspensePage is the answer of GET /v1/suspense.
type SuspensePage struct {
	Items []SuspenseItem `json:"items"`
	// Total is the number of open items the filters select, on every
	// page; Totals their parked money per currency.
	Total  int                        `json:"total"`
	Totals map[string]decimal.Decimal `json:"totals"`
	// Next, when more items follow, is the after= of the next page.
	Next string `json:"next,omitempty"`
}

type suspenseQuery struct {
	limit                   int
	account, currency, kind string
	after                   *cursor // items strictly after it
}

// cursor is a position in the oldest-first order: since, then id.
type cursor struct {
	since time.Time
	id    string
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.since.UTC().Format(time.RFC3339Nano) + " " + c.id))
}

func (c cursor) before(it SuspenseItem) bool {
	return c.since.Before(it.Since) || c.since.Equal(it.Since) && c.id < it.ID
}

func suspenseQueryOf(v url.Values) (suspenseQuery, error) {
	q := suspenseQuery{limit: DefaultSuspensePage, account: v.Get("account"), currency: v.Get("currency"), kind: v.Get("kind")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxSuspensePage {
			return q, fmt.Errorf("limit %q: give a whole number from 1 to %d", s, MaxSuspensePage)
		}
		q.limit = n
	}
	if s := v.Get("after"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		since, id, found := strings.Cut(string(b), " ")
		t, terr := time.Parse(time.RFC3339Nano, since)
		if err != nil || !found || terr != nil {
			return q, errors.New("after: not a cursor of this API; pass the next of the previous page unchanged")
		}
		q.after = &cursor{since: t, id: id}
	}
	return q, nil
}

// page selects the query's page of items (oldest first, as View.Suspense
// lists them).
func (q suspenseQuery) page(items []SuspenseItem) SuspensePage {
	p := SuspensePage{Items: []SuspenseItem{}, Totals: map[string]decimal.Decimal{}}
	for _, it := range items {
		if q.account != "" && it.Evidence.AccountIBAN != q.account || q.currency != "" && it.Currency != q.currency || q.kind != "" && it.Kind != q.kind {
			continue
		}
		p.Total++
		p.Totals[it.Currency] = p.Totals[it.Currency].Add(it.Amount)
		if q.after != nil && !q.after.before(it) {
			continue
		}
		if len(p.Items) == q.limit {
			if p.Next == "" {
				last := p.Items[len(p.Items)-1]
				p.Next = cursor{since: last.Since, id: last.ID}.String()
			}
			continue
		}
		p.Items = append(p.Items, it)
	}
	return p
}
