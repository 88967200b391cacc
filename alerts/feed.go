package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/projection"
	"github.com/reconhq/recon/schemas"
)

// FeedConfig says where the alerts feed reads and writes.
type FeedConfig struct {
	Kafka bus.Config
	// TransactionalID of the feed's producer (default "<client id>-alerts"):
	// the alerts, the state changes that go with them and the dead letters
	// are written in one transaction. A second instance with the same id
	// fences the first, so the component can move between machines.
	TransactionalID string
	// Instance names this alerts component's keys on the state topic
	// ("<instance>/rule/...", default the Kafka client id): the state
	// follows the name, not the machine or its disk.
	Instance string
	// Start, when set, reads only these partitions from these offsets (no
	// history) and neither restores nor writes the state topic (the bench).
	// Otherwise the state is restored from schemas.TopicAlertsState and
	// every input topic is read from its start: records before the restored
	// offsets only rebuild the feed's projection.
	Start map[string]map[int32]int64
	// Migrate, when set, is a state file of an earlier version, used once:
	// if the state topic holds nothing, it is restored and written whole to
	// the topic, then Migrate.Done is called.
	Migrate *Migration
	// OnBatch, when set, is called after each batch with the offsets read
	// so far (tests, metrics).
	OnBatch func(offsets map[string]map[int32]int64)
	Log     *slog.Logger
}

// Migration is the state file an earlier version kept on disk.
type Migration struct {
	Offsets map[string]map[int32]int64
	Service []byte // from Service.State
	Done    func()
}

// Feed follows the journal, bank transactions, statements, loans,
// statement proofs and expected payments, turns them into engine events,
// and publishes what fires. It is the alerts component's one loop: poll,
// observe, then one transaction with the alerts fired, the state keys they
// changed (engine, deliveries, input offsets) and the dead letters of
// deliveries given up. A failed transaction ends it with an error: the
// state in memory is then ahead of Kafka, and a restart restores it.
func (s *Service) Feed(ctx context.Context, cfg FeedConfig) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = cfg.Kafka.ClientID + "-alerts"
	}
	if cfg.Instance == "" {
		cfg.Instance = cfg.Kafka.ClientID
	}
	prefix := cfg.Instance + "/"
	tx, err := kgo.NewClient(cfg.Kafka.Opts(kgo.TransactionalID(cfg.TransactionalID), kgo.TransactionTimeout(time.Minute))...)
	if err != nil {
		return err
	}
	defer tx.Close()
	// fence an earlier instance first: its open transaction is aborted, so
	// the state read next is all it committed
	if _, _, err := tx.ProducerID(ctx); err != nil {
		return fmt.Errorf("alerts: transactional producer %s: %w", cfg.TransactionalID, err)
	}
	stateful := cfg.Start == nil
	saved := map[string]map[int32]int64{}
	var stale []string
	if stateful {
		if saved, stale, err = s.restore(ctx, cfg, prefix); err != nil {
			return err
		}
	}
	consume := kgo.ConsumeTopics(schemas.TopicLedgerEntries, schemas.TopicBankTransactions, schemas.TopicStatements, schemas.TopicLoans, schemas.TopicReconciliation, schemas.TopicExpected)
	if cfg.Start != nil {
		parts := map[string]map[int32]kgo.Offset{}
		for topic, ps := range cfg.Start {
			parts[topic] = map[int32]kgo.Offset{}
			for p, o := range ps {
				parts[topic][p] = kgo.NewOffset().At(o)
			}
		}
		consume = kgo.ConsumePartitions(parts)
	}
	cl, err := kgo.NewClient(cfg.Kafka.Opts(consume, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	f := newFeed()
	offsets, written := copyOffsets(saved), copyOffsets(saved)
	if cfg.Migrate != nil && stateful {
		written = nil // the migrated offsets are written too
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
		observe := func(as []recon.Alert, err error) {
			if err != nil {
				log.Warn("alert not queued", "err", err)
			}
			fired = append(fired, as...)
		}
		read := 0
		fs.EachRecord(func(r *kgo.Record) {
			read++
			replay := r.Offset < saved[r.Topic][r.Partition]
			if !replay { // the offsets written never go back
				setOffset(offsets, r.Topic, r.Partition, r.Offset+1)
			}
			f.record(r, replay)
		})
		for _, ev := range f.flush() {
			observe(s.Observe(now, ev))
		}
		select {
		case <-tick.C:
			observe(s.Tick(now))
		default:
		}
		var recs []*kgo.Record
		for _, a := range fired {
			v, _ := bus.Marshal(a)
			recs = append(recs, bus.Event{Topic: schemas.TopicAlerts, Key: a.ID, Type: schemas.TypeAlert, ID: a.ID, Source: source, Time: now, Value: v, Partition: -1}.Record(cfg.Kafka.Partitions))
		}
		state, dead := s.Changes()
		for _, dl := range dead {
			v, _ := bus.Marshal(dl)
			recs = append(recs, bus.Event{Topic: schemas.TopicDeadLetters, Key: dl.ID, Type: schemas.TypeDeadLetter, ID: dl.ID, Source: source, Time: now, Value: v, Partition: -1}.Record(cfg.Kafka.Partitions))
		}
		if stateful {
			for _, key := range stale {
				state = append(state, StateRecord{Key: key})
			}
			stale = nil
			state = append(state, offsetChanges(offsets, written)...)
			for _, sr := range state {
				key := prefix + sr.Key
				recs = append(recs, bus.Event{Topic: schemas.TopicAlertsState, Key: key, Type: schemas.TypeAlertsState, ID: key, Source: source, Time: now, Value: sr.Value, Partition: -1}.Record(cfg.Kafka.Partitions))
			}
		}
		if len(recs) > 0 {
			if err := transact(ctx, tx, recs); err != nil {
				return err
			}
			written = copyOffsets(offsets)
			if cfg.Migrate != nil && cfg.Migrate.Done != nil && stateful {
				cfg.Migrate.Done()
			}
			cfg.Migrate = nil
		}
		if (read > 0 || len(recs) > 0) && cfg.OnBatch != nil {
			cfg.OnBatch(offsets)
		}
	}
}

// source is the ce_source of what the alerts component writes.
const source = "recon/alerts"

// transact writes recs in one transaction; a commit is never cancelled
// midway (its outcome would be unknown).
func transact(ctx context.Context, tx *kgo.Client, recs []*kgo.Record) error {
	if err := tx.BeginTransaction(); err != nil {
		return fmt.Errorf("alerts: begin transaction: %w", err)
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := tx.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		_ = tx.EndTransaction(endCtx, kgo.TryAbort)
		return fmt.Errorf("alerts: produce %d records: %w", len(recs), err)
	}
	if err := tx.EndTransaction(endCtx, kgo.TryCommit); err != nil {
		return fmt.Errorf("alerts: commit %d records: %w", len(recs), err)
	}
	return nil
}

// restore reads the state topic whole (latest value per key: its size is
// that of the live keys), loads it into s and returns the input offsets it
// reflects and the keys to delete. With nothing on the topic and a
// migration given, the migration is loaded instead.
func (s *Service) restore(ctx context.Context, cfg FeedConfig, prefix string) (map[string]map[int32]int64, []string, error) {
	state := map[string][]byte{}
	_, err := bus.Replay(ctx, cfg.Kafka, schemas.TopicAlertsState, bus.Partitions(cfg.Kafka.Partitions), func(r *kgo.Record) error {
		key, ok := strings.CutPrefix(string(r.Key), prefix)
		switch {
		case !ok: // another alerts instance's
		case r.Value == nil:
			delete(state, key)
		default:
			state[key] = r.Value
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("alerts: restore state: %w", err)
	}
	if len(state) == 0 && cfg.Migrate != nil {
		if err := s.Restore(cfg.Migrate.Service); err != nil {
			return nil, nil, fmt.Errorf("alerts: migrate state file: %w", err)
		}
		return copyOffsets(cfg.Migrate.Offsets), nil, nil
	}
	offsets := map[string]map[int32]int64{}
	var stale []string
	for key, v := range state {
		rest, ok := strings.CutPrefix(key, keyOffset)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '/')
		p, perr := strconv.ParseInt(rest[i+1:], 10, 32)
		var next int64
		if i < 0 || perr != nil || json.Unmarshal(v, &next) != nil {
			stale = append(stale, key)
			continue
		}
		setOffset(offsets, rest[:i], int32(p), next)
	}
	more, err := s.RestoreState(state)
	if err != nil {
		return nil, nil, err
	}
	return offsets, append(stale, more...), nil
}

func setOffset(m map[string]map[int32]int64, topic string, p int32, next int64) {
	if m[topic] == nil {
		m[topic] = map[int32]int64{}
	}
	m[topic][p] = next
}

func copyOffsets(m map[string]map[int32]int64) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for t, ps := range m {
		for p, o := range ps {
			setOffset(out, t, p, o)
		}
	}
	return out
}

// offsetChanges are the offset/ keys of the partitions read past what was
// written.
func offsetChanges(offsets, written map[string]map[int32]int64) []StateRecord {
	var out []StateRecord
	for _, t := range sortedKeys(offsets) {
		ps := offsets[t]
		for _, p := range slices.Sorted(mapKeys(ps)) {
			if o, ok := written[t][p]; !ok || ps[p] > o {
				out = append(out, StateRecord{Key: keyOffset + t + "/" + strconv.Itoa(int(p)), Value: mustJSON(ps[p])})
			}
		}
	}
	return out
}

// Limits on the feed's state.
const (
	maxFeedLoans    = 2_000_000 // loans whose schedule is kept
	maxDirectDebits = 100_000   // direct-debit transaction ids remembered (one sighting counted)
)

// feed is the alerts' view of the topics: the journal's projection
// (balances now, open suspense items, what each loan part was paid),
// loans' schedules, and recent direct debits. record applies one record
// and queues the events it causes; flush returns them, coalesced per
// subject.
type feed struct {
	proj     *projection.Projection
	loans    map[string]recon.Loan // schedules sorted by due date, no borrower
	dd       map[string]bool
	ddOrder  []string
	ddNext   int
	events   []Event
	accounts map[string]bool // touched since flush
	suspense bool
	touched  map[string]bool // loans touched since flush
}

func newFeed() *feed {
	return &feed{proj: projection.New(projection.Config{}), loans: map[string]recon.Loan{}, dd: map[string]bool{}, accounts: map[string]bool{},
		touched: map[string]bool{}}
}

func (f *feed) record(r *kgo.Record, replay bool) {
	switch r.Topic {
	case schemas.TopicLedgerEntries:
		var e recon.Entry
		if bus.Unmarshal(r.Value, &e) != nil || f.proj.Apply(r.Partition, r.Offset, e) != nil {
			return
		}
		f.entry(e, replay)
	case schemas.TopicLoans:
		key := string(r.Key)
		if len(r.Value) == 0 { // a tombstone
			delete(f.loans, key)
			return
		}
		l, err := recon.DecodeLoan(r.Value)
		if err != nil || l.LoanID == "" {
			return
		}
		if _, ok := f.loans[l.LoanID]; !ok && len(f.loans) >= maxFeedLoans {
			return
		}
		l.Borrower = nil
		slices.SortStableFunc(l.Schedule, func(a, b recon.Instalment) int { return strings.Compare(string(a.DueDate), string(b.DueDate)) })
		f.loans[l.LoanID] = l
		if !replay {
			f.touched[l.LoanID] = true
		}
	case schemas.TopicBankTransactions:
		var t recon.BankTransaction
		if replay || bus.Unmarshal(r.Value, &t) != nil || t.Type != recon.TypeTransaction || t.Status != recon.Booked {
			return
		}
		f.events = append(f.events, TransactionSeen{ID: t.ID, Account: t.AccountIBAN, Direction: t.Direction, Amount: t.Amount, Currency: t.Currency})
		if ev, ok := f.directDebit(t); ok {
			f.events = append(f.events, ev)
		}
	case schemas.TopicStatements:
		var st recon.Statement
		if replay || bus.Unmarshal(r.Value, &st) != nil {
			return
		}
		f.events = append(f.events, StatementReceived{Account: st.AccountIBAN, Date: st.Date(), Currency: st.Currency, Check: st.BalanceCheck, Opening: st.OpeningBalance, Closing: st.ClosingBalance})
	case schemas.TopicReconciliation:
		var b recon.Break
		if replay || bus.Unmarshal(r.Value, &b) != nil || b.Type != recon.BreakProof || b.Status != recon.BreakBroken {
			return
		}
		// the statement_break rule fires on a same-date "mismatch"
		closing := b.Expected
		f.events = append(f.events, StatementReceived{Account: b.AccountIBAN, Date: b.Date, Currency: b.Currency, Check: "mismatch", Closing: &closing})
	case schemas.TopicExpected:
		var x recon.Expected // a tombstone (empty value) does not decode
		if replay || bus.Unmarshal(r.Value, &x) != nil || x.ID == "" {
			return
		}
		f.events = append(f.events, ExpectedChanged{Expected: x})
	}
}

// directDebit classifies a booked transaction: a collection is a credit
// with a mandate, a return a debit with a mandate and a return reason. Each
// transaction id counts once (the same money is seen in several files).
func (f *feed) directDebit(t recon.BankTransaction) (DirectDebitSeen, bool) {
	if t.MandateID == "" || t.IsCharge || t.Remainder {
		return DirectDebitSeen{}, false
	}
	ret := t.Direction == recon.Debit && (t.ReturnReason != "" || t.Reversal)
	if !ret && (t.Direction != recon.Credit || t.Reversal) {
		return DirectDebitSeen{}, false
	}
	if f.dd[t.ID] {
		return DirectDebitSeen{}, false
	}
	f.dd[t.ID] = true
	if len(f.ddOrder) < maxDirectDebits {
		f.ddOrder = append(f.ddOrder, t.ID)
	} else {
		delete(f.dd, f.ddOrder[f.ddNext])
		f.ddOrder[f.ddNext] = t.ID
		f.ddNext = (f.ddNext + 1) % maxDirectDebits
	}
	return DirectDebitSeen{ID: t.ID, Return: ret}, true
}

// entry notes what a new entry touched: accounts, loans paid, suspense.
func (f *feed) entry(e recon.Entry, replay bool) {
	if replay {
		return
	}
	for _, p := range e.Postings {
		f.accounts[p.Account] = true
		if a, ok := ledger.ParseAccount(p.Account); ok && a.Kind == ledger.KindLoan && a.Part != ledger.PartCredit && !recon.Lent(e.Kind) {
			f.touched[a.ID] = true
		}
		f.suspense = f.suspense || p.Account == ledger.Suspense
	}
	switch e.Kind {
	case recon.EntrySuspense, recon.EntryRepark, recon.EntryRelease, recon.EntryReversal, recon.EntryTakeBack:
		f.suspense = true
	}
}

// flush returns the queued events and those of the state touched since the
// last flush: balances, suspense per currency, instalments of loans.
func (f *feed) flush() []Event {
	out := f.events
	f.events = nil
	for _, account := range sortedKeys(f.accounts) {
		for _, b := range f.proj.Balances(account, time.Time{}) {
			out = append(out, BalanceChanged{Account: account, Currency: b.Currency, Balance: b.Balance})
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
// items' that hold money (a review item moves none).
func (f *feed) suspenseStates() []Event {
	byCur := map[string]*SuspenseState{}
	get := func(cur string) *SuspenseState {
		s := byCur[cur]
		if s == nil {
			s = &SuspenseState{Currency: cur}
			byCur[cur] = s
		}
		return s
	}
	for _, b := range f.proj.Balances(ledger.Suspense, time.Time{}) {
		get(b.Currency).Total = b.Balance.Neg()
	}
	for cur, p := range f.proj.Parked() {
		s := get(cur)
		s.Count, s.Oldest = p.Count, p.Oldest
	}
	var out []Event
	for _, cur := range sortedKeys(byCur) {
		out = append(out, *byCur[cur])
	}
	return out
}

// instalments is what each instalment of a loan still owes, with the
// matcher's waterfall: each part's payments cover that part of the
// instalments oldest first (fees, interest, principal).
func (f *feed) instalments(loanID string) []Event {
	l, ok := f.loans[loanID]
	if !ok {
		return nil
	}
	paid := f.proj.Loan(loanID, l.Currency)
	left := map[string]decimal.Decimal{}
	for _, part := range []string{ledger.PartFees, ledger.PartInterest, ledger.PartPrincipal} {
		left[part] = decimal.Max(paid.Part(part), decimal.Zero)
	}
	var out []Event
	for _, in := range l.Schedule {
		owed := decimal.Zero
		for _, g := range []struct {
			part   string
			amount decimal.Decimal
		}{{ledger.PartFees, in.Fees}, {ledger.PartInterest, in.Interest}, {ledger.PartPrincipal, in.Principal}} {
			covered := decimal.Min(g.amount, left[g.part])
			left[g.part] = left[g.part].Sub(covered)
			owed = owed.Add(g.amount.Sub(covered))
		}
		out = append(out, InstalmentStatus{LoanID: loanID, DueDate: in.DueDate, Outstanding: owed, Currency: l.Currency})
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
