package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/alerts"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/proofs"
	"github.com/reconhq/recon/schemas"
)

// alertState is what survives a restart of the alerts component: how far
// it read, the engine's edges and the deliveries, written after each batch.
type alertState struct {
	Offsets map[string]map[int32]int64 `json:"offsets"`
	Service json.RawMessage            `json:"service"` // engine edges, deliveries, recent alerts
}

func startAlerts(ctx context.Context, s settings, kc bus.Config, reg *prometheus.Registry, log *slog.Logger, producer *kgo.Client, mux *http.ServeMux, start func(string, func(context.Context) error)) error {
	if s.alertsFile == "" {
		log.Info("alerts off: no rules file (set --alerts-config or RECON_ALERTS_CONFIG)")
		return nil
	}
	cfg, err := alerts.LoadConfig(s.alertsFile)
	if err != nil {
		return fmt.Errorf("alerts config: %w", err)
	}
	svc, err := alerts.New(cfg, alerts.Options{Registry: reg, OnDeadLetter: func(d alerts.Delivery) {
		log.Warn("alert dead-lettered", "alert", d.AlertID, "endpoint", d.Endpoint, "reason", d.Reason)
	}})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return err
	}
	statePath := filepath.Join(s.dataDir, "alerts-state.json")
	var st alertState
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("alerts state %s: %w (move it away to start afresh)", statePath, err)
		}
		if err := svc.Restore(st.Service); err != nil {
			return fmt.Errorf("alerts state %s: %w (move it away to start afresh)", statePath, err)
		}
	}
	mux.Handle("/v1/alerts", svc.Handler())
	mux.Handle("/v1/alerts/", svc.Handler())
	start("alerts delivery", svc.Run)
	start("alerts rules reload", func(ctx context.Context) error {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		svc.Watch(ctx, s.alertsFile, t.C, func(err error) { log.Warn("alerts config not reloaded", "err", err) })
		return nil
	})
	start("alerts feed", func(ctx context.Context) error { return feedAlerts(ctx, kc, svc, producer, st.Offsets, statePath, log) })
	return nil
}

// feedAlerts follows the journal, bank transactions, statements, loans and
// statement proofs, and turns them into engine events. Records before the
// saved offsets only rebuild state (the engine has already seen them).
func feedAlerts(ctx context.Context, kc bus.Config, svc *alerts.Service, producer *kgo.Client, saved map[string]map[int32]int64, statePath string, log *slog.Logger) error {
	cl, err := kgo.NewClient(kc.Opts(
		kgo.ConsumeTopics(schemas.TopicLedgerEntries, schemas.TopicBankTransactions, schemas.TopicStatements, schemas.TopicLoans, schemas.TopicReconciliation),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	f := newFeed()
	offsets := map[string]map[int32]int64{}
	for t, ps := range saved {
		offsets[t] = map[int32]int64{}
		for p, o := range ps {
			offsets[t][p] = o
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now().UTC()
		var fired []recon.Alert
		observe := func(ev alerts.Event) {
			as, err := svc.Observe(now, ev)
			if err != nil {
				log.Warn("alert not queued", "err", err)
			}
			fired = append(fired, as...)
		}
		fs.EachRecord(func(r *kgo.Record) {
			replay := r.Offset < saved[r.Topic][r.Partition]
			if offsets[r.Topic] == nil {
				offsets[r.Topic] = map[int32]int64{}
			}
			offsets[r.Topic][r.Partition] = r.Offset + 1
			f.record(r, replay)
		})
		for _, ev := range f.flush() {
			observe(ev)
		}
		select {
		case <-tick.C:
			as, err := svc.Tick(now)
			if err != nil {
				log.Warn("alert not queued", "err", err)
			}
			fired = append(fired, as...)
		default:
		}
		if len(fired) > 0 {
			var recs []*kgo.Record
			for _, a := range fired {
				v, _ := json.Marshal(a)
				recs = append(recs, bus.Event{Topic: schemas.TopicAlerts, Key: a.ID, Type: schemas.TypeAlert, ID: a.ID, Source: "recon/alerts", Time: now, Value: v, Partition: -1}.Record(kc.Partitions))
			}
			if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				log.Warn("alerts not published to Kafka (delivery goes on)", "err", err)
			}
		}
		if len(fs.Records()) > 0 || len(fired) > 0 {
			if err := saveState(statePath, alertState{Offsets: offsets, Service: svc.State()}); err != nil {
				log.Warn("alerts state not saved", "err", err)
			}
		}
	}
}

// Limits on the feed's state.
const (
	maxFeedLoans     = 2_000_000 // loans whose schedule is kept
	maxSuspenseItems = 1_000_000 // open suspense items tracked for count and age
	maxDirectDebits  = 100_000   // direct-debit transaction ids remembered (one sighting counted)
)

// feed is the alerts' projection of the topics: balances (the book), open
// suspense items, loans' schedules and what each loan part was paid, and
// recent direct debits. record applies one record and queues the events it
// causes; flush returns them, coalesced per subject.
type feed struct {
	book     *ledger.Book
	items    map[string]suspenseItem // open suspense items by transaction id
	loans    map[string]recon.Loan   // schedules sorted by due date, no borrower
	paid     map[string]map[string]decimal.Decimal
	dd       map[string]bool
	ddOrder  []string
	ddNext   int
	events   []alerts.Event
	accounts map[string]bool // touched since flush
	suspense bool
	touched  map[string]bool // loans touched since flush
}

type suspenseItem struct {
	currency string
	since    time.Time
}

func newFeed() *feed {
	return &feed{book: ledger.NewBook(), items: map[string]suspenseItem{}, loans: map[string]recon.Loan{},
		paid: map[string]map[string]decimal.Decimal{}, dd: map[string]bool{}, accounts: map[string]bool{}, touched: map[string]bool{}}
}

func (f *feed) record(r *kgo.Record, replay bool) {
	switch r.Topic {
	case schemas.TopicLedgerEntries:
		var e recon.Entry
		if json.Unmarshal(r.Value, &e) != nil || f.book.Apply(e) != nil {
			return
		}
		f.entry(e, replay)
	case schemas.TopicLoans:
		key := string(r.Key)
		if len(r.Value) == 0 { // a tombstone
			delete(f.loans, key)
			delete(f.paid, key)
			return
		}
		var l recon.Loan
		if json.Unmarshal(r.Value, &l) != nil || l.LoanID == "" {
			return
		}
		if _, ok := f.loans[l.LoanID]; !ok && len(f.loans) >= maxFeedLoans {
			return
		}
		l.Borrower = nil
		l.Schedule = slices.Clone(l.Schedule)
		slices.SortStableFunc(l.Schedule, func(a, b recon.Instalment) int { return strings.Compare(string(a.DueDate), string(b.DueDate)) })
		f.loans[l.LoanID] = l
		if !replay {
			f.touched[l.LoanID] = true
		}
	case schemas.TopicBankTransactions:
		var t recon.BankTransaction
		if replay || json.Unmarshal(r.Value, &t) != nil || t.Type != recon.TypeTransaction || t.Status != recon.Booked {
			return
		}
		f.events = append(f.events, alerts.TransactionSeen{ID: t.ID, Account: t.AccountIBAN, Direction: t.Direction, Amount: t.Amount, Currency: t.Currency})
		if ev, ok := f.directDebit(t); ok {
			f.events = append(f.events, ev)
		}
	case schemas.TopicStatements:
		var st recon.Statement
		if replay || json.Unmarshal(r.Value, &st) != nil {
			return
		}
		f.events = append(f.events, alerts.StatementReceived{Account: st.AccountIBAN, Date: proofs.Date(st), Currency: st.Currency, Check: st.BalanceCheck, Opening: st.OpeningBalance, Closing: st.ClosingBalance})
	case schemas.TopicReconciliation:
		var b recon.Break
		if replay || json.Unmarshal(r.Value, &b) != nil || b.Type != recon.BreakProof || b.Status != recon.BreakBroken {
			return
		}
		// the statement_break rule fires on a same-date "mismatch"
		closing := b.Expected
		f.events = append(f.events, alerts.StatementReceived{Account: b.AccountIBAN, Date: b.Date, Currency: b.Currency, Check: "mismatch", Closing: &closing})
	}
}

// directDebit classifies a booked transaction: a collection is a credit
// with a mandate, a return a debit with a mandate and a return reason. Each
// transaction id counts once (the same money is seen in several files).
func (f *feed) directDebit(t recon.BankTransaction) (alerts.DirectDebitSeen, bool) {
	if t.MandateID == "" || t.IsCharge || t.Remainder {
		return alerts.DirectDebitSeen{}, false
	}
	ret := t.Direction == recon.Debit && (t.ReturnReason != "" || t.Reversal)
	if !ret && (t.Direction != recon.Credit || t.Reversal) {
		return alerts.DirectDebitSeen{}, false
	}
	if f.dd[t.ID] {
		return alerts.DirectDebitSeen{}, false
	}
	f.dd[t.ID] = true
	if len(f.ddOrder) < maxDirectDebits {
		f.ddOrder = append(f.ddOrder, t.ID)
	} else {
		delete(f.dd, f.ddOrder[f.ddNext])
		f.ddOrder[f.ddNext] = t.ID
		f.ddNext = (f.ddNext + 1) % maxDirectDebits
	}
	return alerts.DirectDebitSeen{ID: t.ID, Return: ret}, true
}

// Journal entry kinds the feed follows (package matcher's Entry*
// constants): what parks money in suspense, what takes it out, and what
// moves principal without being a payment.
const (
	kindSuspense = "suspense"
	kindRepark   = "repark"
	kindRelease  = "suspense-release"
	kindReversal = "reversal"
	kindTakeBack = "take-back"
)

var notPayment = map[string]bool{"disbursement": true, "debit-reversal": true}

func (f *feed) entry(e recon.Entry, replay bool) {
	switch e.Kind {
	case kindSuspense, kindRepark:
		if _, ok := f.items[e.TransactionID]; ok || len(f.items) < maxSuspenseItems {
			cur := ""
			if len(e.Postings) > 0 {
				cur = e.Postings[0].Currency
			}
			f.items[e.TransactionID] = suspenseItem{currency: cur, since: e.BookedAt}
		}
	case kindRelease, kindReversal, kindTakeBack:
		delete(f.items, e.TransactionID) // released, or a waiting return resolved
	}
	for _, p := range e.Postings {
		if e.LoanID != "" {
			if part, ok := strings.CutPrefix(p.Account, "loan:"+e.LoanID+":"); ok && part != "credit" && !notPayment[e.Kind] {
				m := f.paid[e.LoanID]
				if m == nil {
					m = map[string]decimal.Decimal{}
					f.paid[e.LoanID] = m
				}
				delta := p.Amount // what the borrower paid: credits minus debits
				if p.Side == recon.DebitSide {
					delta = delta.Neg()
				}
				m[part] = m[part].Add(delta)
				if !replay {
					f.touched[e.LoanID] = true
				}
			}
		}
		if replay {
			continue
		}
		f.accounts[p.Account] = true
		if p.Account == ledger.Suspense {
			f.suspense = true
		}
	}
	if !replay && (e.Kind == kindSuspense || e.Kind == kindRepark || e.Kind == kindRelease || e.Kind == kindReversal || e.Kind == kindTakeBack) {
		f.suspense = true
	}
}

// flush returns the queued events and those of the state touched since the
// last flush: balances, suspense per currency, instalments of loans.
func (f *feed) flush() []alerts.Event {
	out := f.events
	f.events = nil
	for _, account := range sortedKeys(f.accounts) {
		for _, b := range f.book.Balances(account, time.Time{}) {
			out = append(out, alerts.BalanceChanged{Account: account, Currency: b.Currency, Balance: b.Balance})
		}
	}
	clear(f.accounts)
	if f.suspense {
		out = append(out, f.suspenseStates()...)
		f.suspense = false
	}
	for _, id := range sortedKeys(f.touched) {
		out = append(out, f.instalments(id)...)
	}
	clear(f.touched)
	return out
}

// suspenseStates is one SuspenseState per currency: the total is what the
// suspense account owes (credits - debits), count and oldest are the open
// items'.
func (f *feed) suspenseStates() []alerts.Event {
	byCur := map[string]*alerts.SuspenseState{}
	get := func(cur string) *alerts.SuspenseState {
		s := byCur[cur]
		if s == nil {
			s = &alerts.SuspenseState{Currency: cur}
			byCur[cur] = s
		}
		return s
	}
	for _, b := range f.book.Balances(ledger.Suspense, time.Time{}) {
		get(b.Currency).Total = b.Balance.Neg()
	}
	for _, it := range f.items {
		s := get(it.currency)
		s.Count++
		if s.Oldest.IsZero() || it.since.Before(s.Oldest) {
			s.Oldest = it.since
		}
	}
	var out []alerts.Event
	for _, cur := range sortedKeys(byCur) {
		out = append(out, *byCur[cur])
	}
	return out
}

// instalments is what each instalment of a loan still owes, with the
// matcher's waterfall: each part's payments cover that part of the
// instalments oldest first (fees, interest, principal).
func (f *feed) instalments(loanID string) []alerts.Event {
	l, ok := f.loans[loanID]
	if !ok {
		return nil
	}
	left := map[string]decimal.Decimal{}
	for part, v := range f.paid[loanID] {
		left[part] = decimal.Max(v, decimal.Zero)
	}
	var out []alerts.Event
	for _, in := range l.Schedule {
		owed := decimal.Zero
		for _, g := range []struct {
			part   string
			amount decimal.Decimal
		}{{"fees", in.Fees}, {"interest", in.Interest}, {"principal", in.Principal}} {
			covered := decimal.Min(g.amount, left[g.part])
			left[g.part] = left[g.part].Sub(covered)
			owed = owed.Add(g.amount.Sub(covered))
		}
		out = append(out, alerts.InstalmentStatus{LoanID: loanID, DueDate: in.DueDate, Outstanding: owed, Currency: l.Currency})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func saveState(path string, st alertState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
