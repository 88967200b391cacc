// Package matcher decides where every bank transaction ends: posted to its
// loan, parked in suspense with the reason, or recognised as a duplicate.
// It is pure and deterministic: no I/O, no clock, no Kafka. Two stages run
// over it: the Router (keyed by the transaction's identity: deduplication
// and the matching cascade) and the Poster (keyed by loan: allocation,
// reversals, suspense and the ledger entries). Package matcher/service
// drives both from Kafka inside transactions.
package matcher

import (
	"strings"

	"github.com/reconhq/recon"
)

// Loans is the global table of loans every matcher instance holds, read
// from the compacted loans topic.
type Loans struct {
	byID      map[string]recon.Loan
	byVIBAN   map[string]string
	byMandate map[string]string
}

// NewLoans returns an empty table.
func NewLoans() *Loans {
	return &Loans{byID: map[string]recon.Loan{}, byVIBAN: map[string]string{}, byMandate: map[string]string{}}
}

// Put adds or replaces a loan.
func (l *Loans) Put(loan recon.Loan) {
	if old, ok := l.byID[loan.LoanID]; ok {
		delete(l.byVIBAN, normIBAN(old.VirtualIBAN))
		delete(l.byMandate, old.MandateID)
	}
	loan.Borrower = nil // personal data is not needed to match
	l.byID[loan.LoanID] = loan
	if v := normIBAN(loan.VirtualIBAN); v != "" {
		l.byVIBAN[v] = loan.LoanID
	}
	if loan.MandateID != "" {
		l.byMandate[loan.MandateID] = loan.LoanID
	}
}

// Delete removes a loan (a tombstone on the compacted topic).
func (l *Loans) Delete(id string) {
	if old, ok := l.byID[id]; ok {
		delete(l.byVIBAN, normIBAN(old.VirtualIBAN))
		delete(l.byMandate, old.MandateID)
		delete(l.byID, id)
	}
}

// Get returns a loan by id.
func (l *Loans) Get(id string) (recon.Loan, bool) {
	loan, ok := l.byID[id]
	return loan, ok
}

// Len is the number of loans.
func (l *Loans) Len() int { return len(l.byID) }

func normIBAN(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }
