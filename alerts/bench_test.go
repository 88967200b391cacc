package alerts

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

func BenchmarkEngineObserve(b *testing.B) {
	cfg := Config{Rules: []Rule{
		{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "1000", Hysteresis: "100"},
		{Name: "high", Kind: BalanceAbove, Account: "loan:L1", Currency: "EUR", Threshold: "0"},
		{Name: "big", Kind: LargeCredit, Currency: "EUR", Threshold: "10000"},
		{Name: "susp", Kind: SuspenseAmount, Currency: "EUR", Threshold: "5000"},
		{Name: "age", Kind: SuspenseAge, Age: Duration(48 * time.Hour)},
		{Name: "rr", Kind: ReturnRate, Threshold: "5", Window: Duration(24 * time.Hour)},
		{Name: "stmt", Kind: StatementMissing, Account: "DE89", At: "09:00"},
		{Name: "brk", Kind: StatementBreak},
		{Name: "due", Kind: InstalmentOverdue, Days: 3},
	}}
	e, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	amounts := make([]decimal.Decimal, 64)
	for i := range amounts {
		amounts[i] = decimal.NewFromInt(int64(i * 200))
	}
	events := make([]Event, 0, 1024)
	for i := range cap(events) {
		a := amounts[i%len(amounts)]
		switch i % 6 {
		case 0:
			events = append(events, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: a})
		case 1:
			events = append(events, TransactionSeen{ID: fmt.Sprint("t", i), Direction: recon.Credit, Amount: a, Currency: "EUR"})
		case 2:
			events = append(events, SuspenseState{Total: a, Currency: "EUR", Oldest: t0})
		case 3:
			events = append(events, DirectDebitSeen{ID: fmt.Sprint("d", i), Return: i%60 == 3})
		case 4:
			events = append(events, InstalmentStatus{LoanID: fmt.Sprint("L", i%100), DueDate: "2026-03-01", Outstanding: a, Currency: "EUR"})
		case 5:
			events = append(events, StatementReceived{Account: "DE89", Date: "2026-03-01", Check: "ok"})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	now := t0
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Millisecond)
		e.Observe(now, events[i%len(events)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDeliver measures signed deliveries to a local httptest receiver
// through the real dispatcher (SSRF-checked dialer, loopback allowed).
func BenchmarkDeliver(b *testing.B) {
	var n atomic.Int64
	done := make(chan struct{}, 1)
	var target atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n.Add(1) == target.Load() {
			done <- struct{}{}
		}
	}))
	defer srv.Close()
	cfg := Config{AllowLoopback: true, Delivery: DeliveryConfig{QueueSize: 1_000_000, History: 1_000_000},
		Endpoints: []Endpoint{{Name: "ops", URL: srv.URL, Secret: secretA}},
		Rules:     []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "100", Endpoint: "ops"}}}
	d, err := NewDispatcher(cfg, DispatcherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	a := testAlert(1)
	b.ResetTimer()
	target.Store(int64(b.N))
	for i := range b.N {
		a.ID = fmt.Sprintf("low-bench-%d", i)
		if err := d.Enqueue(a); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
