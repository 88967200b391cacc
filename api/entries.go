package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
)

// Limits of GET /v1/loans/{loan_id}/entries.
const (
	defaultLoanEntries = 200
	maxLoanEntries     = 2000
)

// LoanEntry is one journal entry that touches a loan, as the loan page
// shows it: the entry and what it did to each of the loan's accounts.
type LoanEntry struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	TransactionID string          `json:"transaction_id,omitempty"`
	EffectiveDate recon.Date      `json:"effective_date,omitzero"`
	BookedAt      time.Time       `json:"booked_at"`
	Note          string          `json:"note,omitempty"`
	Actor         string          `json:"actor,omitempty"`
	Reverses      string          `json:"reverses,omitempty"`
	Postings      []recon.Posting `json:"postings"`
	// Allocated is, per part of the loan (principal, interest, fees,
	// credit), the credits minus the debits this entry posted there:
	// positive where a payment was allocated, negative where one was
	// reversed (or credit used).
	Allocated map[string]decimal.Decimal `json:"allocated"`
}

// loanOfAccount is the loan id and part of a "loan:<id>:<part>" account.
func loanOfAccount(account string) (id, part string, ok bool) {
	a, ok := ledger.ParseAccount(account)
	return a.ID, a.Part, ok && a.Kind == ledger.KindLoan
}

// indexByLoan remembers e under every loan it names or posts to. Called
// with v.mu held, in journal order; a redelivered entry (same id) is kept
// once.
func (v *View) indexByLoan(e recon.Entry) {
	loans := map[string]bool{}
	if e.LoanID != "" {
		loans[e.LoanID] = true
	}
	for _, p := range e.Postings {
		if id, _, ok := loanOfAccount(p.Account); ok {
			loans[id] = true
		}
	}
	e.Item = nil // the loan page shows the transaction id; the evidence stays in the suspense view
	for id := range loans {
		list := v.byLoan[id]
		dup := false
		for i := len(list) - 1; i >= 0 && !dup; i-- {
			dup = list[i].ID == e.ID
		}
		if !dup {
			v.byLoan[id] = append(list, e)
		}
	}
}

// LoanEntries is the last limit journal entries touching loan id, in
// journal order, and how many there are in all.
func (v *View) LoanEntries(id string, limit int) ([]LoanEntry, int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	list := v.byLoan[id]
	total := len(list)
	if len(list) > limit {
		list = list[len(list)-limit:]
	}
	out := make([]LoanEntry, 0, len(list))
	for _, e := range list {
		le := LoanEntry{ID: e.ID, Kind: e.Kind, TransactionID: e.TransactionID, EffectiveDate: e.EffectiveDate, BookedAt: e.BookedAt,
			Note: e.Note, Actor: e.Actor, Reverses: e.Reverses, Postings: e.Postings, Allocated: map[string]decimal.Decimal{}}
		for _, p := range e.Postings {
			loan, part, ok := loanOfAccount(p.Account)
			if !ok || loan != id {
				continue
			}
			amt := p.Amount
			if p.Side == recon.DebitSide {
				amt = amt.Neg()
			}
			le.Allocated[part] = le.Allocated[part].Add(amt)
		}
		out = append(out, le)
	}
	return out, total
}

// loanEntries serves GET /v1/loans/{loan_id}/entries?limit=N: the loan's
// payments, allocations, reversals and manual assignments.
func (a *API) loanEntries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("loan_id")
	if _, ok := a.View.Loan(id); !ok {
		reply(w, http.StatusNotFound, map[string]string{"error": "no loan " + id})
		return
	}
	limit := defaultLoanEntries
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > maxLoanEntries {
			reply(w, http.StatusBadRequest, map[string]string{"error": "limit must be 1.." + strconv.Itoa(maxLoanEntries)})
			return
		}
		limit = n
	}
	entries, total := a.View.LoanEntries(id, limit)
	reply(w, http.StatusOK, map[string]any{"loan_id": id, "entries": entries, "total": total, "truncated": total > len(entries)})
}
