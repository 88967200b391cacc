// Package projection folds the journal into the state its readers need:
// balances per account and currency (now, and at any past instant with
// history), what each loan was paid per part and lent, loan and borrower
// credit, the open suspense items of each journal partition, and what an
// entry moved on the lender's bank accounts at which accounting date. It
// is the one place these are decided from journal entries: the API's view, the alerts feed and
// the statement proofs read them here, and account names are taken apart
// by ledger.ParseAccount. It is pure: no I/O, no clock, no Kafka. A
// Projection knows the journal offsets it reflects and is checkpointed
// with them (MarshalBinary), so a reader can keep it in a store, restore
// it and replay only the tail.
package projection

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// Config says what a Projection keeps beyond what every reader needs.
type Config struct {
	// History keeps every posting's running balance, so Balances answers
	// at a past instant (the API). Without it an account costs the same
	// however many postings it had (the alerts feed).
	History bool
}

// Projection is the journal folded: Apply is its one state transition.
// It is not safe for concurrent use; a reader guards it.
type Projection struct {
	cfg     Config
	book    *Book
	entries int64
	loans   map[loanKey]*loan
	items   map[int32]map[string]*Item // open suspense items by journal partition, by item id
	offsets map[int32]int64            // per journal partition, the next offset to apply
}

type loanKey struct{ id, currency string }

// loan is what was paid to each part (credits minus debits, money lent
// left out) and what was lent.
type loan struct {
	paid [3]decimal.Decimal // fees, interest, principal
	lent decimal.Decimal
}

var parts = [3]string{ledger.PartFees, ledger.PartInterest, ledger.PartPrincipal}

// New returns an empty projection.
func New(cfg Config) *Projection {
	return &Projection{cfg: cfg, book: newBook(cfg.History), loans: map[loanKey]*loan{},
		items: map[int32]map[string]*Item{}, offsets: map[int32]int64{}}
}

// Apply folds e, read at offset of journal partition. Entries of one
// partition come in offset order; partitions interleave freely. An offset
// the projection already reflects is skipped (a replay after a restore):
// the journal position, not the entry id, makes applying idempotent, as
// in the matcher's Poster (the matcher writes some entry ids twice: a
// review item opened again after it was dismissed). An entry that does not
// balance is not applied and is reported; its offset counts as read.
func (p *Projection) Apply(partition int32, offset int64, e recon.Entry) error {
	if next, ok := p.offsets[partition]; ok && offset < next {
		return nil
	}
	p.offsets[partition] = offset + 1
	if err := e.Balanced(); err != nil {
		return fmt.Errorf("projection: journal partition %d offset %d: %w", partition, offset, err)
	}
	if len(e.Postings) == 0 {
		return fmt.Errorf("projection: journal partition %d offset %d: entry %s has no postings", partition, offset, e.ID)
	}
	p.entries++
	p.book.apply(e)
	p.applyLoans(e)
	p.applySuspense(partition, e)
	return nil
}

func (p *Projection) applyLoans(e recon.Entry) {
	for _, ps := range e.Postings {
		a, ok := ledger.ParseAccount(ps.Account)
		if !ok || a.Kind != ledger.KindLoan || a.Part == ledger.PartCredit {
			continue
		}
		k := loanKey{a.ID, ps.Currency}
		l := p.loans[k]
		if l == nil {
			l = &loan{}
			p.loans[loanKey{strings.Clone(a.ID), strings.Clone(ps.Currency)}] = l
		}
		if a.Part == ledger.PartPrincipal && recon.Lent(e.Kind) {
			l.lent = l.lent.Add(Signed(ps))
			continue
		}
		i := slices.Index(parts[:], a.Part)
		l.paid[i] = l.paid[i].Sub(Signed(ps))
	}
}

// Offsets are, per journal partition, the next offset to apply: where a
// reader restoring this projection resumes.
func (p *Projection) Offsets() map[int32]int64 { return maps.Clone(p.offsets) }

// Entries is the number of entries applied.
func (p *Projection) Entries() int64 { return p.entries }

// Book is the balances.
func (p *Projection) Book() *Book { return p.book }

// Balances of an account at an instant (zero: now); see Book.Balances.
func (p *Projection) Balances(account string, at time.Time) []Balance {
	return p.book.Balances(account, at)
}

// Loan is what the journal says of one loan in one currency.
type Loan struct {
	// Fees, Interest and Principal are what was paid to each part: its
	// credits minus its debits, money lent left out (recon.Lent). A
	// reversal or an unassignment takes back what it undoes.
	Fees, Interest, Principal decimal.Decimal
	// Lent is the principal paid out to the borrower, net of
	// disbursements that came back.
	Lent decimal.Decimal
	// Credit is what was paid beyond what the loan owes, net of what was
	// applied or refunded since (the loan's credit account, credits minus
	// debits).
	Credit decimal.Decimal
}

// Paid is what was paid to the loan's receivable, all parts.
func (l Loan) Paid() decimal.Decimal { return l.Fees.Add(l.Interest).Add(l.Principal) }

// Part is what was paid to one part of the loan (ledger.PartFees,
// PartInterest, PartPrincipal); zero for any other name.
func (l Loan) Part(part string) decimal.Decimal {
	switch part {
	case ledger.PartFees:
		return l.Fees
	case ledger.PartInterest:
		return l.Interest
	case ledger.PartPrincipal:
		return l.Principal
	}
	return decimal.Zero
}

// Loan is what the journal says of loan id in currency (zeros when it
// says nothing).
func (p *Projection) Loan(id, currency string) Loan {
	l := Loan{Credit: p.book.Balance(ledger.Credit(id), currency).Neg()}
	if s := p.loans[loanKey{id, currency}]; s != nil {
		l.Fees, l.Interest, l.Principal, l.Lent = s.paid[0], s.paid[1], s.paid[2], s.lent
	}
	return l
}

// BorrowerCredit is what borrower id paid in currency beyond what all
// their loans owe, net of what was applied since.
func (p *Projection) BorrowerCredit(id, currency string) decimal.Decimal {
	return p.book.Balance(ledger.BorrowerCredit(id), currency).Neg()
}
