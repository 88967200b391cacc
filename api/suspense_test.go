package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

func suspenseItems() []SuspenseItem {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	item := func(id string, at time.Duration, amount, currency, account, kind string) SuspenseItem {
		return SuspenseItem{ID: id, Kind: kind, Amount: decimal.RequireFromString(amount), Currency: currency, Since: t0.Add(at),
			Evidence: recon.BankTransaction{ID: id, AccountIBAN: account}}
	}
	// oldest first, ties by id, as View.Suspense lists them
	return []SuspenseItem{
		item("a", 0, "10.00", "EUR", "FR1", "money"),
		item("b", 0, "2.50", "EUR", "FR2", "money"),
		item("c", time.Second, "0", "EUR", "FR1", "conflict"),
		item("d", time.Second, "7.00", "CHF", "FR1", "money"),
		item("e", time.Hour, "0.01", "EUR", "FR1", "money"),
	}
}

// Following next page after page yields every selected item once, in
// order, whatever the page size; total and totals count all pages.
func TestSuspensePagesCoverEverythingOnce(t *testing.T) {
	for _, tc := range []struct {
		query  string
		want   string
		totals map[string]string
	}{
		{"", "abcde", map[string]string{"EUR": "12.51", "CHF": "7"}},
		{"account=FR1", "acde", map[string]string{"EUR": "10.01", "CHF": "7"}},
		{"currency=EUR", "abce", map[string]string{"EUR": "12.51"}},
		{"kind=conflict", "c", map[string]string{"EUR": "0"}},
		{"account=FR9", "", map[string]string{}},
	} {
		for limit := 1; limit <= 6; limit++ {
			v, _ := url.ParseQuery(tc.query)
			v.Set("limit", string(rune('0'+limit)))
			var got strings.Builder
			for pages := 0; ; pages++ {
				q, err := suspenseQueryOf(v)
				if err != nil {
					t.Fatal(err)
				}
				p := q.page(suspenseItems())
				if p.Total != len(tc.want) || len(p.Totals) != len(tc.totals) {
					t.Fatalf("%s limit %d: total %d totals %v", tc.query, limit, p.Total, p.Totals)
				}
				for c, amt := range tc.totals {
					if !p.Totals[c].Equal(decimal.RequireFromString(amt)) {
						t.Fatalf("%s: totals %v, want %v", tc.query, p.Totals, tc.totals)
					}
				}
				if len(p.Items) > limit || pages > len(tc.want) {
					t.Fatalf("%s limit %d: %d items on a page, page %d", tc.query, limit, len(p.Items), pages)
				}
				for _, it := range p.Items {
					got.WriteString(it.ID)
				}
				if p.Next == "" {
					break
				}
				v.Set("after", p.Next)
			}
			if got.String() != tc.want {
				t.Fatalf("%s limit %d: pages gave %q, want %q", tc.query, limit, got.String(), tc.want)
			}
		}
	}
}

func TestSuspenseRefusesBadQueries(t *testing.T) {
	a := &API{View: NewView(nil), Now: time.Now}
	mux := http.NewServeMux()
	a.Register(mux)
	for _, q := range []string{"limit=0", "limit=10001", "limit=x", "after=bogus", "after=" + strings.Repeat("A", 8)} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/suspense?"+q, nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "error") {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/suspense", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"items":[]`) || !strings.Contains(rec.Body.String(), `"total":0`) {
		t.Errorf("empty queue: %d %s", rec.Code, rec.Body.String())
	}
}
