// Package api is recon's HTTP surface over the ledger: loans with what
// they owe, account balances (now or at a past instant), the suspense
// queue and its manual resolution. Its view is the journal's projection
// (package projection, with history) and the loans and borrowers topics,
// rebuilt from Kafka at start.
package api

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/projection"
	"github.com/reconhq/recon/schemas"
)

// View is the read model: the journal's projection, the loans and the
// borrowers.
type View struct {
	mu    sync.RWMutex
	proj  *projection.Projection
	loans map[string]recon.Loan
	// borrowers and each borrower's loans (sorted ids)
	borrowers map[string]recon.Borrower
	loansOf   map[string][]string
	// holders: virtual IBAN → who claims it (loan ids, "borrower/<id>")
	holders  map[string][]string
	entries  int64
	verifier map[int32]*ledger.Verifier
	broken   error
	log      *slog.Logger
	caught   chan struct{}
	byLoan   map[string][]recon.Entry // journal entries touching each loan, in journal order (entries.go)
}

// NewView returns an empty view.
func NewView(log *slog.Logger) *View {
	return &View{proj: projection.New(projection.Config{History: true}), loans: map[string]recon.Loan{}, borrowers: map[string]recon.Borrower{},
		loansOf: map[string][]string{}, holders: map[string][]string{}, verifier: map[int32]*ledger.Verifier{}, log: log, caught: make(chan struct{}), byLoan: map[string][]recon.Entry{}}
}

// Run follows the journal and the loans topic from the start.
func (v *View) Run(ctx context.Context, kafka bus.Config) error {
	cl, err := kgo.NewClient(kafka.Opts(
		kgo.ConsumeTopics(schemas.TopicLedgerEntries, schemas.TopicLoans, schemas.TopicBorrowers),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) { v.log.Warn("view fetch", "topic", t, "partition", p, "err", err) })
		v.mu.Lock()
		fs.EachRecord(v.apply)
		v.mu.Unlock()
	}
}

func (v *View) apply(r *kgo.Record) {
	switch r.Topic {
	case schemas.TopicBorrowers:
		if old, ok := v.borrowers[string(r.Key)]; ok {
			v.unhold(old.VirtualIBAN, schemas.BorrowerKey(old.ID))
		}
		if r.Value == nil {
			delete(v.borrowers, string(r.Key))
			return
		}
		var b recon.Borrower
		if err := bus.Unmarshal(r.Value, &b); err == nil {
			v.borrowers[b.ID] = b
			v.hold(b.VirtualIBAN, schemas.BorrowerKey(b.ID))
		}
	case schemas.TopicLoans:
		if old, ok := v.loans[string(r.Key)]; ok {
			v.unhold(old.VirtualIBAN, old.LoanID)
			if old.BorrowerID != "" {
				v.loansOf[old.BorrowerID] = slices.DeleteFunc(v.loansOf[old.BorrowerID], func(id string) bool { return id == old.LoanID })
			}
		}
		if r.Value == nil {
			delete(v.loans, string(r.Key))
			return
		}
		if l, err := recon.DecodeLoan(r.Value); err == nil {
			v.loans[l.LoanID] = l
			v.hold(l.VirtualIBAN, l.LoanID)
			if l.BorrowerID != "" {
				ids := v.loansOf[l.BorrowerID]
				if i, found := slices.BinarySearch(ids, l.LoanID); !found {
					v.loansOf[l.BorrowerID] = slices.Insert(ids, i, l.LoanID)
				}
			}
		}
	case schemas.TopicLedgerEntries:
		var e recon.Entry
		if err := bus.Unmarshal(r.Value, &e); err != nil {
			v.log.Error("journal record unreadable", "where", bus.Where(r), "err", err)
			return
		}
		vf := v.verifier[r.Partition]
		if vf == nil {
			vf = &ledger.Verifier{Partition: r.Partition}
			v.verifier[r.Partition] = vf
		}
		if err := vf.Next(r.Offset, e); err != nil && v.broken == nil {
			v.broken = err
			v.log.Error("journal hash chain broken", "err", err)
		}
		if err := v.proj.Apply(r.Partition, r.Offset, e); err != nil {
			v.log.Error("journal entry not applied", "where", bus.Where(r), "err", err)
		}
		v.indexByLoan(e)
		v.entries++
	}
}

// Entries is the number of journal entries seen.
func (v *View) Entries() int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.entries
}

// LoanSummary is GET /v1/loans/{id}.
type LoanSummary struct {
	LoanID      string             `json:"loan_id"`
	VirtualIBAN string             `json:"virtual_iban"`
	Currency    string             `json:"currency"`
	Principal   decimal.Decimal    `json:"principal"`
	Owed        decimal.Decimal    `json:"owed"`
	Outstanding decimal.Decimal    `json:"outstanding"`
	Paid        decimal.Decimal    `json:"paid"`
	Overpaid    decimal.Decimal    `json:"overpaid"`
	Status      string             `json:"status"`
	Schedule    []recon.Instalment `json:"schedule,omitempty"`
}

// Loan summarises a loan from the journal: paid is what was allocated to
// its receivables, overpaid its borrower credit, outstanding what is owed
// minus paid.
func (v *View) Loan(id string) (LoanSummary, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	l, ok := v.loans[id]
	if !ok {
		return LoanSummary{}, false
	}
	owed := l.Principal
	if len(l.Schedule) > 0 {
		owed = decimal.Zero
		for _, in := range l.Schedule {
			owed = owed.Add(in.Principal).Add(in.Interest).Add(in.Fees)
		}
	}
	// A disbursement debits principal receivable: it is lent, not paid.
	j := v.proj.Loan(id, l.Currency)
	paid := j.Paid()
	s := LoanSummary{LoanID: id, VirtualIBAN: l.VirtualIBAN, Currency: l.Currency, Principal: l.Principal, Owed: owed,
		Paid: paid, Outstanding: owed.Sub(paid), Overpaid: j.Credit, Schedule: l.Schedule}
	switch {
	case s.Outstanding.IsPositive() && paid.IsZero():
		s.Status = "open"
	case s.Outstanding.IsPositive():
		s.Status = "repaying"
	default:
		s.Status = "repaid"
	}
	return s, true
}

// BorrowerSummary is GET /v1/borrowers/{id}: the borrower, each of their
// loans as GET /v1/loans/{id} shows it, totals per currency, and their
// credit (what they paid beyond what all their loans owe).
type BorrowerSummary struct {
	BorrowerID  string          `json:"borrower_id"`
	Name        string          `json:"name,omitempty"`
	VirtualIBAN string          `json:"virtual_iban"`
	Loans       []LoanSummary   `json:"loans"`
	Totals      []BorrowerTotal `json:"totals"`
}

// BorrowerTotal sums a borrower's loans in one currency.
type BorrowerTotal struct {
	Currency    string          `json:"currency"`
	Owed        decimal.Decimal `json:"owed"`
	Paid        decimal.Decimal `json:"paid"`
	Outstanding decimal.Decimal `json:"outstanding"`
	Overpaid    decimal.Decimal `json:"overpaid"`
	Credit      decimal.Decimal `json:"credit"`
}

// Borrower summarises a borrower; false when neither the borrower nor a
// loan of theirs is known.
func (v *View) Borrower(id string) (BorrowerSummary, bool) {
	v.mu.RLock()
	b, known := v.borrowers[id]
	ids := slices.Clone(v.loansOf[id])
	v.mu.RUnlock()
	if !known && len(ids) == 0 {
		return BorrowerSummary{}, false
	}
	s := BorrowerSummary{BorrowerID: id, Name: b.Name, VirtualIBAN: b.VirtualIBAN, Loans: []LoanSummary{}, Totals: []BorrowerTotal{}}
	byCcy := map[string]*BorrowerTotal{}
	for _, lid := range ids {
		l, ok := v.Loan(lid)
		if !ok {
			continue
		}
		s.Loans = append(s.Loans, l)
		t := byCcy[l.Currency]
		if t == nil {
			v.mu.RLock()
			credit := v.proj.BorrowerCredit(id, l.Currency)
			v.mu.RUnlock()
			t = &BorrowerTotal{Currency: l.Currency, Credit: credit}
			byCcy[l.Currency] = t
		}
		t.Owed, t.Paid, t.Outstanding, t.Overpaid = t.Owed.Add(l.Owed), t.Paid.Add(l.Paid), t.Outstanding.Add(l.Outstanding), t.Overpaid.Add(l.Overpaid)
	}
	for _, c := range slices.Sorted(maps.Keys(byCcy)) {
		s.Totals = append(s.Totals, *byCcy[c])
	}
	return s, true
}

func (v *View) hold(viban, holder string) {
	if viban = recon.NormalizeIBAN(viban); viban != "" && !slices.Contains(v.holders[viban], holder) {
		v.holders[viban] = append(v.holders[viban], holder)
	}
}

func (v *View) unhold(viban, holder string) {
	viban = recon.NormalizeIBAN(viban)
	if hs := slices.DeleteFunc(v.holders[viban], func(h string) bool { return h == holder }); len(hs) > 0 {
		v.holders[viban] = hs
	} else {
		delete(v.holders, viban)
	}
}

// Holder names who holds a virtual IBAN (a loan id, or "borrower/<id>";
// the first claimant when it is contested).
func (v *View) Holder(viban string) (string, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	hs := v.holders[recon.NormalizeIBAN(viban)]
	if len(hs) == 0 {
		return "", false
	}
	return hs[0], true
}

// LoanRecord is a loan as last published.
func (v *View) LoanRecord(id string) (recon.Loan, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	l, ok := v.loans[id]
	return l, ok
}

// RouteKey is the key a loan's routed records go by: its borrower's when
// it has one (as the matcher's Loans.PartitionKey names it).
func (v *View) RouteKey(loanID string) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if l, ok := v.loans[loanID]; ok && l.BorrowerID != "" {
		return schemas.BorrowerKey(l.BorrowerID)
	}
	return loanID
}

// Balances of an account at an instant (zero: now).
func (v *View) Balances(account string, at time.Time) []projection.Balance {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.proj.Balances(account, at)
}

// SuspenseItem is one row of GET /v1/suspense.
type SuspenseItem struct {
	ID string `json:"id"`
	// Kind is "money" (parked money; amount is what is parked) or
	// "conflict" (a review item: a sighting of a known identity with
	// another amount; nothing was booked for it, evidence shows it).
	Kind       string                `json:"kind"`
	Amount     decimal.Decimal       `json:"amount"`
	Currency   string                `json:"currency"`
	Direction  recon.Direction       `json:"direction"`
	Reason     string                `json:"reason"`
	LoanID     string                `json:"loan_id,omitempty"`
	Since      time.Time             `json:"since"`
	AgeSeconds int64                 `json:"age_seconds"`
	Evidence   recon.BankTransaction `json:"evidence"`
}

// ItemPartition says which journal partition holds an open suspense item.
func (v *View) ItemPartition(id string) (int32, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.proj.ItemPartition(id)
}

// Suspense lists open suspense items, oldest first.
func (v *View) Suspense(now time.Time) []SuspenseItem {
	v.mu.RLock()
	items := v.proj.Items() // oldest first, then by id
	v.mu.RUnlock()
	out := make([]SuspenseItem, 0, len(items))
	for _, it := range items {
		t := it.Transaction
		out = append(out, SuspenseItem{ID: it.ID, Kind: it.Kind, Amount: it.Amount, Currency: t.Currency, Direction: t.Direction, Reason: it.Reason,
			LoanID: it.LoanID, Since: it.Since, AgeSeconds: int64(now.Sub(it.Since).Seconds()), Evidence: t})
	}
	return out
}

// ChainError is the first broken link seen, or nil.
func (v *View) ChainError() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.broken
}
